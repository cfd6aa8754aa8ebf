/// Errors of the `MailStore` port. `Dispatch` maps each to one IMAP response code (STYLE.md §6).
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case mailboxNotFound
    case alreadyExists
    /// The operation is not possible on this mailbox, with a reason for the client (`NO [CANNOT]`).
    case cannot(String)
    case overQuota
    case accountNotFound
    /// The database is unreachable or timed out: the client may retry (`NO [UNAVAILABLE]`).
    case unavailable(String)
    /// A bug or an unexpected database error (`NO [SERVERBUG]`, logged at error).
    case `internal`(String)

    public var description: String {
        switch self {
        case .mailboxNotFound: "no such mailbox"
        case .alreadyExists: "the mailbox already exists"
        case .cannot(let reason): reason
        case .overQuota: "over quota"
        case .accountNotFound: "no such account"
        case .unavailable(let reason): "the database is unavailable (\(reason))"
        case .internal(let reason): "internal error: \(reason)"
        }
    }
}
