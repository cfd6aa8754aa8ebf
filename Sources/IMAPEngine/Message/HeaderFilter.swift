/// BODY[HEADER.FIELDS (…)] and BODY[HEADER.FIELDS.NOT (…)] (RFC 9051 §6.4.5).
public enum HeaderFilter {
    /// The header lines (with folded continuation lines) whose field name is / is not in `names` (case-insensitive),
    /// followed by the empty line CRLF (RFC 9051 §6.4.5: the subset includes the blank line). `header` is a header
    /// block as returned by range(…, .header).
    ///
    /// A line without a colon counts as a field whose name is the whole line, so it only survives `.NOT`. A field
    /// whose last line has no line break (a header that runs to the end of the message) gets a CRLF.
    public static func filter(_ header: some Collection<UInt8>, names: [String], not: Bool) -> [UInt8] {
        filter(header, names: Names(names), not: not)
    }

    /// As above, with the names prepared once (a FETCH filters every message's header with the same names).
    static func filter(_ header: some Collection<UInt8>, names: Names, not: Bool) -> [UInt8] {
        var stream = Stream(names: names, not: not)
        var out: [UInt8] = []
        out.reserveCapacity(256)
        stream.feed(Array(header), into: &out)
        stream.finish(into: &out)
        return out
    }

    /// The fields message lists ask for, lowercased: every one of neomutt's and imaptest's header FETCH (read in their
    /// binary and source), and from memory, not checked against the clients, Thunderbird's, Apple Mail's and K-9's.
    /// Stores keep these lines of each message's header (`summary`) next to the message, so a header download reads
    /// them instead of the whole header from the compressed content.
    ///
    /// Summaries already stored hold the lines of this list as it was: a name added here must come with a schema
    /// migration that clears them (`summary_header = NULL`, which `mailadmin db backfill` recomputes), or FETCH would
    /// miss that field's lines in older messages.
    public static let summaryNames: [String] = [
        "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id", "in-reply-to", "references",
        "content-type", "content-description", "mime-version", "lines", "priority", "x-priority", "importance",
        "x-msmail-priority", "newsgroups", "list-id", "list-post", "list-subscribe", "list-unsubscribe", "x-label",
        "x-original-to", "x-mailer", "user-agent", "disposition-notification-to", "return-receipt-to",
        "x-k9mail-identity", "chat-version", "x-universally-unique-identifier",
    ]
    static let summaryFilter = Names(summaryNames)

    /// The lines of `header` whose field is one of `summaryNames`, with the blank line: for every list of names that
    /// `coveredBySummary`, filtering this gives what filtering `header` does (kept lines are copied whole, in order,
    /// with their continuation lines; a header without its last line break gets the same CRLF).
    public static func summary(_ header: some Collection<UInt8>) -> [UInt8] {
        filter(header, names: summaryFilter, not: false)
    }

    /// Whether HEADER.FIELDS of `names` can be served from a `summary`: every name is one of `summaryNames` (compared as
    /// `filter` compares them: trimmed, without case).
    public static func coveredBySummary(_ names: [String]) -> Bool {
        names.allSatisfy { summaryFilter.contains(MessageBytes.trimmed(Array($0.utf8))[...]) }
    }

    /// Field names to match, lowercased and trimmed, with their lengths: most fields of a header are told apart by
    /// their length alone (one bit test), and the others are compared in place, without a copy or a hash. A FETCH of
    /// 5,000 headers spent 8 % of its time hashing and lowercasing names into sets.
    struct Names: Sendable {
        /// Distinct, lowercased.
        let wanted: [[UInt8]]
        /// Bit n set: a wanted name has n bytes (for n < 64).
        let lengths: UInt64
        /// A wanted name has 64 bytes or more.
        let long: Bool

        init(_ names: [String]) {
            var wanted: [[UInt8]] = []
            for name in names {
                let lowered = MessageBytes.lowercased(MessageBytes.trimmed(Array(name.utf8)))
                if !wanted.contains(lowered) { wanted.append(lowered) }
            }
            self.wanted = wanted
            lengths = wanted.reduce(0) { $1.count < 64 ? $0 | (1 << UInt64($1.count)) : $0 }
            long = wanted.contains { $0.count >= 64 }
        }

        func contains(_ name: ArraySlice<UInt8>) -> Bool {
            let count = name.count
            guard count < 64 ? lengths & (1 << UInt64(count)) != 0 : long else { return false }
            return wanted.contains { candidate in
                candidate.count == count
                    && zip(candidate, name).allSatisfy { wanted, byte in wanted == MessageBytes.lowercased(byte) }
            }
        }
    }

    /// The same filter over a header that arrives in pieces (a large header is read from the store in chunks): only
    /// the current line is kept between pieces.
    struct Stream {
        private let names: Names
        private let not: Bool
        /// The start of a line not yet ended by LF.
        private var partial: [UInt8] = []
        /// Whether the current field is kept.
        private var include = false
        private var inField = false
        /// The empty line was seen: the header is over.
        private var ended = false

        init(names: [String], not: Bool) {
            self.init(names: Names(names), not: not)
        }

        init(names: Names, not: Bool) {
            self.names = names
            self.not = not
        }

        mutating func feed(_ bytes: [UInt8], into out: inout [UInt8]) {
            var position = bytes.startIndex
            while !ended, position < bytes.endIndex {
                guard let lf = MessageBytes.firstIndex(of: MessageBytes.lf, in: bytes, range: position..<bytes.endIndex)
                else {
                    partial.append(contentsOf: bytes[position...])
                    return
                }
                if partial.isEmpty {
                    line(bytes[position...lf], into: &out)
                } else {
                    partial.append(contentsOf: bytes[position...lf])
                    let whole = partial
                    partial = []
                    line(whole[...], into: &out)
                }
                position = lf + 1
            }
        }

        mutating func finish(into out: inout [UInt8]) {
            if !ended, !partial.isEmpty {
                let last = partial
                partial = []
                line(last[...], into: &out)
                if include { out += [MessageBytes.cr, MessageBytes.lf] }  // the field's last line had no break
            }
            out += [MessageBytes.cr, MessageBytes.lf]
        }

        /// One line, with its LF when it has one.
        private mutating func line(_ line: ArraySlice<UInt8>, into out: inout [UInt8]) {
            var end = line.endIndex
            if end > line.startIndex, line[end - 1] == MessageBytes.lf { end -= 1 }
            if end > line.startIndex, line[end - 1] == MessageBytes.cr, end < line.endIndex { end -= 1 }
            if end == line.startIndex, end < line.endIndex {
                ended = true  // the empty line
                return
            }
            if !MessageBytes.isWhitespace(line[line.startIndex]) || !inField {
                inField = true
                let nameEnd = line[..<end].firstIndex(of: UInt8(ascii: ":")) ?? end
                include = names.contains(line[MessageBytes.trimmed(line, line.startIndex..<nameEnd)]) != not
            }
            if include { out.append(contentsOf: line) }
        }
    }
}
