/// Errors of the `MailStore` port. `Dispatch` maps each to one IMAP response code (STYLE.md §6).
public enum StoreError: Error, Sendable, Equatable {
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
}
