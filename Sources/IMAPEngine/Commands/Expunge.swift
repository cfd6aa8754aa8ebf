import Logging

/// EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1). The EXPUNGE responses come from the sync point, the
/// same path as expunges made by other sessions (STYLE.md §4.4).
extension Session {
    func handleExpunge(uids set: NumberSet?) async throws -> Completion {
        let account = try requireAccount
        let current = try requireView
        if current.readOnly { throw IMAPError.no(.cannot, "Mailbox is read-only") }
        var only: [UID]? = nil
        if let set {
            only = try current.resolve(.uid(set), saved: savedSearch)
            if only?.isEmpty == true { return Completion("UID EXPUNGE completed") }
        }
        let expunged = try await store.expunge(account: account, mailbox: current.mailbox, uids: only, logger: logger)
        if !expunged.uids.isEmpty { wroteSelected(Self.ownExpunge(expunged)) }
        // RFC 7162 §3.2.10: under QRESYNC the tagged OK carries the mailbox's new HIGHESTMODSEQ.
        if qresync && !expunged.uids.isEmpty { reportHighestModSeq = true }
        return Completion(set == nil ? "EXPUNGE completed" : "UID EXPUNGE completed")
    }

    /// What this EXPUNGE changed, as the change of its modseq (`FeedBacklog`); nil when nothing was expunged or the
    /// store gave no modseq.
    static func ownExpunge(_ result: ExpungeResult) -> MailboxDelta? {
        guard let modSeq = result.modSeq, !result.uids.isEmpty else { return nil }
        return MailboxDelta(expunged: result.uids, highestModSeq: modSeq, lowestExpungedModSeq: modSeq)
    }
}
