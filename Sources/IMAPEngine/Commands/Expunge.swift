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
        // The only change since the view's HIGHESTMODSEQ (see `onlyChange`): taken in as the pull would read it.
        let own = viewIsStale ? nil : Self.onlyExpunge(expunged, after: current.highestModSeq)
        viewIsStale = true
        if let own { absorbChanges(own) }
        // RFC 7162 §3.2.10: under QRESYNC the tagged OK carries the mailbox's new HIGHESTMODSEQ.
        if qresync && !expunged.uids.isEmpty { reportHighestModSeq = true }
        return Completion(set == nil ? "EXPUNGE completed" : "UID EXPUNGE completed")
    }

    /// What a pull after this EXPUNGE would read, when it was the only change since the view's HIGHESTMODSEQ (its
    /// tombstones carry exactly one more); nil otherwise, and when nothing was expunged.
    static func onlyExpunge(_ result: ExpungeResult, after highest: ModSeq) -> MailboxDelta? {
        guard let modSeq = result.modSeq, modSeq.rawValue == highest.rawValue + 1, !result.uids.isEmpty else {
            return nil
        }
        return MailboxDelta(expunged: result.uids, highestModSeq: modSeq, lowestExpungedModSeq: modSeq)
    }
}
