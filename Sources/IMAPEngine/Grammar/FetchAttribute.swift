/// One FETCH data item (RFC 9051 §6.4.5 `fetch-att`); the macros ALL, FAST and FULL are expanded by the parser.
public enum FetchAttribute: Hashable, Sendable {
    case envelope
    case flags
    case internalDate
    case rfc822Size
    case uid
    /// Non-extensible BODY.
    case body
    case bodyStructure
    /// `BODY[section]<partial>` and `BODY.PEEK[…]`; RFC822, RFC822.HEADER and RFC822.TEXT map here with `legacy` set,
    /// so the response names the item the way the client asked for it (RFC 3501 §6.4.5).
    case bodySection(Section, partial: Partial?, peek: Bool, legacy: LegacyName? = nil)
    /// `BINARY[part]<partial>` and `BINARY.PEEK[…]` (RFC 3516, RFC 9051 §6.4.5).
    case binary(part: [Int], partial: Partial?, peek: Bool)
    case binarySize(part: [Int])
    /// RFC 7162 §3.1.5 (a CONDSTORE enabling command).
    case modSeq
    /// RFC 8474 §5: the message's EMAILID, and its THREADID (always NIL: MailHost keeps no thread ids).
    case emailID, threadID
    /// RFC 8514 SAVEDATE.
    case saveDate
    /// RFC 8970 `PREVIEW [(LAZY)]`: the text is computed at ingest, so LAZY changes nothing.
    case preview

    public enum LegacyName: Hashable, Sendable {
        case rfc822, rfc822Header, rfc822Text
    }

    /// True for items whose FETCH sets `\Seen` (RFC 9051 §6.4.5: BODY[…] and BINARY[…] without .PEEK, RFC822, RFC822.TEXT).
    var setsSeen: Bool {
        switch self {
        case .bodySection(_, _, let peek, _), .binary(_, _, let peek): !peek
        default: false
        }
    }
}

/// RFC 9051 `section`: a part path plus an optional text specifier.
public struct Section: Hashable, Sendable {
    public var part: [Int]
    public var text: SectionText?

    public init(part: [Int] = [], text: SectionText? = nil) {
        self.part = part
        self.text = text
    }

    /// `1.2.HEADER.FIELDS (FROM TO)` — the text between the brackets in the response.
    var wire: String {
        var out = part.map(String.init).joined(separator: ".")
        if let text {
            if !out.isEmpty { out += "." }
            switch text {
            case .header: out += "HEADER"
            case .text: out += "TEXT"
            case .mime: out += "MIME"
            case .headerFields(let names):
                out += "HEADER.FIELDS (" + names.map(Section.fieldWire).joined(separator: " ") + ")"
            case .headerFieldsNot(let names):
                out += "HEADER.FIELDS.NOT (" + names.map(Section.fieldWire).joined(separator: " ") + ")"
            }
        }
        return out
    }

    /// Header field names go back as atoms when they can, quoted otherwise.
    static func fieldWire(_ name: String) -> String {
        let isAtom = !name.isEmpty && name.utf8.allSatisfy { isAtomChar($0) }
        if isAtom { return name }
        var bytes: [UInt8] = []
        WireString.appendString(name, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// RFC 9051 `partial`: `<origin.length>`.
public struct Partial: Hashable, Sendable {
    public var origin: Int
    public var length: Int
    public init(origin: Int, length: Int) {
        self.origin = origin
        self.length = length
    }
}

/// ATOM-CHAR of RFC 9051 §9: any CHAR except atom-specials.
@inline(__always) func isAtomChar(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x00...0x20, 0x7F...0xFF: false
    case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "*"),
        UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "]"):
        false
    default: true
    }
}
