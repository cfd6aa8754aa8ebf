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
    /// A write reached the database and then the connection was lost or the call timed out: it may or may not have
    /// been committed. A NO would promise that it was not, so the session ends instead (`* BYE`), as if the server
    /// had crashed; the client reconnects and resynchronises.
    case outcomeUnknown(String)
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
        case .outcomeUnknown(let reason): "the database went away during a write (\(reason)); its outcome is unknown"
        case .internal(let reason): "internal error: \(reason)"
        }
    }
}
