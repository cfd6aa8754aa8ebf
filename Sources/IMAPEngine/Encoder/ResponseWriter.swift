/// Builds response text (RFC 9051 §7) into a byte buffer. One instance per response batch.
struct ResponseWriter {
    private(set) var bytes: [UInt8] = []
    /// IMAP4rev2 enabled: no `\Recent`, UTF-8 mailbox names.
    var utf8Names = false

    init(utf8Names: Bool = false) { self.utf8Names = utf8Names }

    var isEmpty: Bool { bytes.isEmpty }
    var count: Int { bytes.count }

    mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }
    mutating func raw(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }
    mutating func crlf() { bytes.append(contentsOf: [0x0D, 0x0A]) }

    /// A complete line: `text` + CRLF. `text` must not contain CR or LF.
    mutating func line(_ text: String) {
        raw(text)
        crlf()
    }

    mutating func string(_ value: String) { WireString.appendString(value, to: &bytes) }
    mutating func string(_ value: some Collection<UInt8>) { WireString.appendString(value, to: &bytes) }
    mutating func nstring(_ value: String?) { WireString.appendNString(value, to: &bytes) }
    mutating func literal(_ value: some Collection<UInt8>) { WireString.appendLiteral(value, to: &bytes) }

    /// An `astring` (RFC 9051 §9): an atom when every byte allows, otherwise a string.
    mutating func astring(_ value: String) {
        if !value.isEmpty, value.utf8.allSatisfy({ isAtomChar($0) || $0 == UInt8(ascii: "]") }) {
            raw(value)
        } else {
            string(value)
        }
    }

    /// A mailbox name: modified UTF-7 for IMAP4rev1 clients, UTF-8 after ENABLE IMAP4rev2 (RFC 9051 §5.1, App. A.1).
    mutating func mailbox(_ name: MailboxName) {
        if name.isInbox {
            raw("INBOX")
            return
        }
        if utf8Names {
            // IMAP4rev2 `quoted` may carry UTF-8 (QUOTED-CHAR includes UTF8-2/3/4).
            let value = name.name
            if value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) && value.utf8.count <= WireString.maxQuotedLength {
                bytes.append(UInt8(ascii: "\""))
                for byte in value.utf8 {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                    bytes.append(byte)
                }
                bytes.append(UInt8(ascii: "\""))
            } else {
                string(value)
            }
        } else {
            astring(ModifiedUTF7.encode(name.name))
        }
    }

    /// A number in decimal, without going through a String.
    mutating func number(_ value: UInt64) {
        var width = 1
        var bound: UInt64 = 10
        while width < 20 && value >= bound {
            width += 1
            bound = bound &* 10
        }
        let end = bytes.count + width
        bytes.append(contentsOf: repeatElement(0x30, count: width))
        var rest = value
        var i = end - 1
        while rest > 0 {
            bytes[i] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
            rest /= 10
            i -= 1
        }
    }

    /// A flag list: the system flags in the order `MessageFlags.flags` gives, then the keywords, then `\Recent`
    /// (IMAP4rev1 only). Written without building an array of `Flag`s: a flags-only FETCH writes one per message.
    mutating func flags(_ flags: MessageFlags, recent: Bool) {
        bytes.append(0x28)  // (
        var first = true
        func add(_ atom: StaticString) {
            if !first { bytes.append(0x20) }
            first = false
            bytes.append(contentsOf: UnsafeBufferPointer(start: atom.utf8Start, count: atom.utf8CodeUnitCount))
        }
        let system = flags.system
        if system.contains(.answered) { add("\\Answered") }
        if system.contains(.flagged) { add("\\Flagged") }
        if system.contains(.deleted) { add("\\Deleted") }
        if system.contains(.seen) { add("\\Seen") }
        if system.contains(.draft) { add("\\Draft") }
        for keyword in flags.keywords {
            if !first { bytes.append(0x20) }
            first = false
            bytes.append(contentsOf: keyword.utf8)  // a keyword is its own atom
        }
        if recent && !utf8Names { add("\\Recent") }
        bytes.append(0x29)  // )
    }

    mutating func untagged(_ response: Untagged) {
        switch response {
        case .exists(let n): line("* \(n) EXISTS")
        case .recent(let n): line("* \(n) RECENT")
        case .expunge(let seq): line("* \(seq) EXPUNGE")
        case .fetchFlags(let seq, let uid, let flags, let recent, let modSeq):
            raw("* \(seq) FETCH (UID \(uid) FLAGS ")
            self.flags(flags, recent: recent)
            if let modSeq { raw(" MODSEQ (\(modSeq))") }
            line(")")
        case .vanished(let uids, let earlier):
            line(earlier ? "* VANISHED (EARLIER) \(uids)" : "* VANISHED \(uids)")
        case .highestModSeq(let modSeq):
            line("* OK [HIGHESTMODSEQ \(modSeq)] Highest")
        case .flags(let keywords):
            line("* FLAGS (" + (Self.systemFlagNames + keywords).joined(separator: " ") + ")")
        case .permanentFlags(let keywords):
            line(
                "* OK [PERMANENTFLAGS (" + (Self.systemFlagNames + keywords + ["\\*"]).joined(separator: " ")
                    + ")] Flags permitted")
        }
    }

    static let systemFlagNames = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]

    /// `tag OK|NO|BAD [code] text`.
    mutating func tagged(_ tag: Tag, _ status: String, code: ResponseCode? = nil, _ text: String) {
        raw(tag)
        raw(" ")
        raw(status)
        raw(" ")
        if let code { raw("[\(code.wire)] ") }
        line(Self.sanitize(text))
    }

    /// Response text may not contain CR or LF (RFC 9051 `text`); keep it printable.
    static func sanitize(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 }) else { return text }
        return String(decoding: text.utf8.map { $0 < 0x20 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }
}
