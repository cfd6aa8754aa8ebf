/// What SORT orders messages by (RFC 5256 §3, RFC 5957 §4), computed once at ingest so that sorting a mailbox reads
/// stored keys and parses nothing.
///
/// The text keys are mapped with the `i;ascii-casemap` collation (RFC 4790 §9.2: a–z to A–Z, every other byte as it
/// is), so ordering their UTF-8 bytes is ordering them by the collation, and equal keys are equal strings.
public struct SortKeys: Sendable, Equatable {
    /// The base subject (RFC 5256 §2.1).
    public var subject: String
    /// The addr-mailbox of the first From, To and Cc address (RFC 5256 §3 FROM, TO, CC).
    public var from: String
    public var to: String
    public var cc: String
    /// The display sort value of the first From and To address (RFC 5957 §3).
    public var displayFrom: String
    public var displayTo: String
    /// The Date: field as seconds since 1970 in UTC (RFC 5256 §2.2); nil when it is missing or cannot be parsed (SORT
    /// then uses the internal date).
    public var sentTime: Int64?
    /// For THREAD=REFERENCES (RFC 5256 §4): the normalised Message-ID, the references (References, or else the first
    /// In-Reply-To), and whether the subject marks a reply or forward.
    public var messageID: String?
    public var references: [String] = []
    public var isReplyOrForward = false

    public init(
        subject: String = "", from: String = "", to: String = "", cc: String = "", displayFrom: String = "",
        displayTo: String = "", sentTime: Int64? = nil
    ) {
        self.subject = subject
        self.from = from
        self.to = to
        self.cc = cc
        self.displayFrom = displayFrom
        self.displayTo = displayTo
        self.sentTime = sentTime
    }

    /// Subjects are cut to this many bytes before their base is extracted: sorting needs no more, and a hostile
    /// megabyte of `re:re:…` costs nothing.
    static let subjectLimit = 1024
    /// References kept per message, and the longest msg-id kept (RFC 5322 lines are at most 998 bytes).
    static let referenceLimit = 10
    static let messageIDLimit = 250

    init(_ envelope: MessageEnvelope, header: HeaderBlock) {
        let decoded = envelope.subject.map { HeaderText.decode($0.prefix(Self.subjectLimit * 4)) } ?? ""
        let (base, reply) = Self.baseSubjectAndReply(Self.prefix(decoded, bytes: Self.subjectLimit))
        subject = Self.casemap(base)
        isReplyOrForward = reply
        messageID = envelope.messageID.flatMap { Self.messageIDs($0).first }
        references = header.unfoldedValue(of: "references").map(Self.messageIDs) ?? []
        if references.isEmpty, let first = envelope.inReplyTo.flatMap({ Self.messageIDs($0).first }) {
            references = [first]
        }
        // Bounded: a hostile References line of thousands of ids would otherwise cost that much per THREAD.
        if references.count > Self.referenceLimit { references = Array(references.suffix(Self.referenceLimit)) }
        from = Self.casemap(Self.mailbox(envelope.from.first))
        to = Self.casemap(Self.mailbox(envelope.to.first))
        cc = Self.casemap(Self.mailbox(envelope.cc.first))
        displayFrom = Self.casemap(Self.display(envelope.from.first))
        displayTo = Self.casemap(Self.display(envelope.to.first))
        sentTime = envelope.date.flatMap(Self.sentTime)
    }

    /// At most `bytes` bytes of `text`, cut before a character that would not fit.
    static func prefix(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var result = ""
        var used = 0
        for character in text {
            used += character.utf8.count
            if used > bytes { break }
            result.append(character)
        }
        return result
    }

    /// `i;ascii-casemap`: ASCII letters upper-cased, everything else unchanged.
    static func casemap(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 >= 0x61 && $0 <= 0x7A }) else { return text }
        return String(decoding: text.utf8.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }, as: UTF8.self)
    }

    /// The addr-mailbox of an address (a group's name for a group start), as ENVELOPE would show it.
    static func mailbox(_ item: AddressItem?) -> String {
        switch item {
        case .mailbox(_, _, let local, _): local.map { String(decoding: $0, as: UTF8.self) } ?? ""
        case .groupStart(let name): String(decoding: name, as: UTF8.self)
        case .groupEnd, nil: ""
        }
    }

    /// RFC 5957 §3: the decoded display name; else mailbox@host; else the mailbox; else empty.
    static func display(_ item: AddressItem?) -> String {
        guard case .mailbox(let name, _, let local, let domain) = item else { return mailbox(item) }
        if let name {
            let decoded = HeaderText.decode(name)
            if !decoded.isEmpty { return decoded }
        }
        guard let local else { return "" }
        let mailbox = String(decoding: local, as: UTF8.self)
        return domain.map { mailbox + "@" + String(decoding: $0, as: UTF8.self) } ?? mailbox
    }

    // MARK: base subject (RFC 5256 §2.1)

    private static let space = UInt8(ascii: " ")

    /// The msg-ids of a Message-ID, In-Reply-To or References value, normalised (RFC 5256 §4: quoting removed, so
    /// `<"a"@b>` is `<a@b>`): each `<…>` holding an `@`, comments and white space dropped. Case is kept (ids
    /// compare case-sensitively).
    static func messageIDs(_ value: [UInt8]) -> [String] {
        var ids: [String] = []
        var i = 0
        while i < value.count {
            guard value[i] == UInt8(ascii: "<") else {
                i += 1
                continue
            }
            var id: [UInt8] = []
            var j = i + 1
            var inQuote = false
            while j < value.count, value[j] != UInt8(ascii: ">") || inQuote {
                let b = value[j]
                if b == UInt8(ascii: "\""), !inQuote || value[j - 1] != UInt8(ascii: "\\") {
                    inQuote.toggle()
                } else if b == UInt8(ascii: "<") && !inQuote {
                    break
                } else if inQuote || (b > 0x20 && b != 0x7F) {
                    id.append(b)
                }
                j += 1
            }
            if j < value.count, value[j] == UInt8(ascii: ">"), id.contains(UInt8(ascii: "@")),
                id.count <= Self.messageIDLimit
            {
                ids.append("<" + String(decoding: id, as: UTF8.self) + ">")
                i = j + 1
            } else {
                i = max(j, i + 1)
            }
        }
        return ids
    }

    /// RFC 5256 §2.1 steps 1–7, on the decoded subject.
    static func baseSubject(_ decoded: String) -> String { baseSubjectAndReply(decoded).0 }

    /// The base subject, and whether extracting it removed a subj-refwd, a "(fwd)" trailer or a "[fwd: …]" wrapper
    /// (RFC 5256 §4: the message is a reply or forward).
    static func baseSubjectAndReply(_ decoded: String) -> (String, Bool) {
        var reply = false
        // (1) Tabs and line breaks become spaces, runs of spaces one space.
        var s: [UInt8] = []
        for byte in decoded.utf8 {
            let b = byte == 0x09 || byte == 0x0D || byte == 0x0A ? space : byte
            if b == space, s.last == space { continue }
            s.append(b)
        }
        while true {
            // (2) Trailers: "(fwd)" and white space, repeatedly.
            while let last = s.last {
                if last == space {
                    s.removeLast()
                } else if s.count >= 5, lower(s[(s.count - 5)...]) == Array("(fwd)".utf8) {
                    s.removeLast(5)
                    reply = true
                } else {
                    break
                }
            }
            // (3)–(5) Leaders and blobs, until neither matches.
            var changed = true
            while changed {
                changed = false
                if let n = leaderLength(s) {
                    if s[0] != space { reply = true }
                    s.removeFirst(n)
                    changed = true
                }
                if let n = blobLength(s, from: 0), s[n...].contains(where: { $0 != space }) {
                    s.removeFirst(n)
                    changed = true
                }
            }
            // (6) "[fwd: … ]" around everything: unwrap and start again.
            if s.count >= 6, lower(s[..<5]) == Array("[fwd:".utf8), s.last == UInt8(ascii: "]") {
                s = Array(s[5..<(s.count - 1)])
                reply = true
                continue
            }
            break
        }
        return (String(decoding: s, as: UTF8.self), reply)
    }

    private static func lower(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
    }

    /// `subj-blob = "[" *BLOBCHAR "]" *WSP` at `start`: its length, or nil.
    private static func blobLength(_ s: [UInt8], from start: Int) -> Int? {
        guard start < s.count, s[start] == UInt8(ascii: "[") else { return nil }
        var i = start + 1
        while i < s.count, s[i] != UInt8(ascii: "]") {
            if s[i] == UInt8(ascii: "[") { return nil }
            i += 1
        }
        guard i < s.count else { return nil }
        i += 1
        while i < s.count, s[i] == space { i += 1 }
        return i - start
    }

    /// `subj-leader = (*subj-blob subj-refwd) / WSP` at the start: its length, or nil.
    private static func leaderLength(_ s: [UInt8]) -> Int? {
        guard let first = s.first else { return nil }
        if first == space { return 1 }
        var i = 0
        while let n = blobLength(s, from: i) { i += n }
        // subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
        for word in ["re", "fwd", "fw"] {
            let w = Array(word.utf8)
            guard i + w.count <= s.count, lower(s[i..<(i + w.count)]) == w else { continue }
            var j = i + w.count
            while j < s.count, s[j] == space { j += 1 }
            if let n = blobLength(s, from: j) { j += n }
            if j < s.count, s[j] == UInt8(ascii: ":") { return j + 1 }
        }
        return nil
    }

    // MARK: sent date (RFC 5256 §2.2)

    /// An RFC 5322 date-time (with the obsolete zones of §4.3) as seconds since 1970 in UTC, or nil. The date part is
    /// read as SENTBEFORE reads it; a missing time is midnight, a missing or unknown zone is UTC.
    static func sentTime(_ value: [UInt8]) -> Int64? {
        guard let date = IMAPDate(parsing: value) else { return nil }
        var seconds = Int64(date.dayNumber) * 86_400
        let words = value.split(whereSeparator: { $0 == space || $0 == 0x09 || $0 == UInt8(ascii: ",") })
        guard let timeIndex = words.firstIndex(where: { $0.contains(UInt8(ascii: ":")) }) else { return seconds }
        // Each part one or two digits and in range: no arithmetic on what a header says beyond that.
        let parts = words[timeIndex].split(separator: UInt8(ascii: ":")).map { part -> Int? in
            guard (1...2).contains(part.count), part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard parts.count >= 2, parts.count <= 3, let hour = parts[0], let minute = parts[1], hour < 24, minute < 60
        else { return seconds }
        let second = parts.count == 3 ? min(parts[2] ?? 0, 60) : 0
        seconds += Int64(hour * 3600 + minute * 60 + second)
        if timeIndex + 1 < words.count { seconds -= Int64(zoneMinutes(Array(words[timeIndex + 1])) * 60) }
        return seconds
    }

    /// `+hhmm` / `-hhmm`, or an obsolete zone name (RFC 5322 §4.3); 0 for anything else.
    static func zoneMinutes(_ word: [UInt8]) -> Int {
        if word.count == 5, word[0] == UInt8(ascii: "+") || word[0] == UInt8(ascii: "-"),
            word[1...].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let digits = Int(String(decoding: word[1...], as: UTF8.self))
        {
            guard digits / 100 < 24, digits % 100 < 60 else { return 0 }
            let minutes = (digits / 100) * 60 + digits % 100
            return word[0] == UInt8(ascii: "-") ? -minutes : minutes
        }
        switch String(decoding: word, as: UTF8.self).uppercased() {
        case "EDT": return -4 * 60
        case "EST", "CDT": return -5 * 60
        case "CST", "MDT": return -6 * 60
        case "MST", "PDT": return -7 * 60
        case "PST": return -8 * 60
        default: return 0
        }
    }
}
