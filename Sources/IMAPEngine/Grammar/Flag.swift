/// A message flag as it appears on the wire (RFC 9051 §2.3.2, `flag` and `flag-fetch`).
public enum Flag: Hashable, Sendable {
    case answered, flagged, deleted, seen, draft
    /// `\Recent` (RFC 3501 §2.3.2): per session, never stored; a client cannot set it.
    case recent
    /// A keyword such as `$Forwarded` or `Junk`; an `atom`.
    case keyword(String)
    /// `\` followed by an atom that is not a known system flag (RFC 9051 `flag-extension`).
    case extensionFlag(String)

    var systemFlag: SystemFlags? {
        switch self {
        case .answered: .answered
        case .flagged: .flagged
        case .deleted: .deleted
        case .seen: .seen
        case .draft: .draft
        case .recent, .keyword, .extensionFlag: nil
        }
    }

    /// The flag for a wire token such as `\Seen` or `$Junk` (case-insensitive for system flags).
    init(token: String) {
        guard token.utf8.first == UInt8(ascii: "\\") else {
            self = .keyword(token)
            return
        }
        switch token.uppercased() {
        case "\\ANSWERED": self = .answered
        case "\\FLAGGED": self = .flagged
        case "\\DELETED": self = .deleted
        case "\\SEEN": self = .seen
        case "\\DRAFT": self = .draft
        case "\\RECENT": self = .recent
        default: self = .extensionFlag(String(token.dropFirst()))
        }
    }

    /// The wire token: `\Seen`, `$Junk`.
    public var wire: String {
        switch self {
        case .answered: "\\Answered"
        case .flagged: "\\Flagged"
        case .deleted: "\\Deleted"
        case .seen: "\\Seen"
        case .draft: "\\Draft"
        case .recent: "\\Recent"
        case .keyword(let name): name
        case .extensionFlag(let name): "\\" + name
        }
    }
}

extension Flag {
    /// Longest keyword accepted, in bytes.
    public static let maxKeywordLength = 250

    /// Whether `name` can be a keyword: an atom (RFC 9051 `flag-keyword`) of at most `maxKeywordLength` bytes. What
    /// a client cannot STORE, an import cannot either.
    public static func isValidKeyword(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maxKeywordLength && name.utf8.allSatisfy(isAtomChar)
    }
}
