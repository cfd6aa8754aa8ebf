import Logging

/// SELECT, EXAMINE, CLOSE and UNSELECT (RFC 9051 §6.3.2, §6.3.3, §6.4.1, §6.4.2).
extension Session {
    func handleSelect(_ argument: MailboxArgument, readOnly: Bool) async throws -> Completion {
        let account = try requireAccount
        let name = try mailboxName(argument)
        // Selecting deselects first; a failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2).
        if view != nil {
            view = nil
            state = .authenticated
            if rev2 { try await out.sendLine("* OK [CLOSED] Previous mailbox is now closed") }
        }
        let snapshot = try await store.select(account: account, name: name, claimRecent: !readOnly, logger: logger)
        let newView = MailboxView(snapshot: snapshot, readOnly: readOnly)
        view = newView
        viewIsStale = false
        savedSearch = []
        state = .selected

        var w = responseWriter()
        w.untagged(.flags(keywords: newView.keywords))
        if readOnly {
            w.line("* OK [PERMANENTFLAGS ()] Read-only mailbox")
        } else {
            w.untagged(.permanentFlags(keywords: newView.keywords))
        }
        w.untagged(.exists(newView.count))
        if !rev2 {
            w.untagged(.recent(newView.recent.count))
            if let unseen = snapshot.firstUnseen, let seq = newView.sequenceNumber(of: unseen) {
                w.line("* OK [UNSEEN \(seq)] Message \(seq) is the first unseen message")
            }
        }
        w.line("* OK [UIDVALIDITY \(snapshot.uidValidity)] UIDs valid")
        w.line("* OK [UIDNEXT \(snapshot.uidNext)] Predicted next UID")
        if rev2 {
            w.raw("* LIST () \"/\" ")
            w.mailbox(name)
            w.crlf()
        }
        try await out.send(w)
        return Completion(
            readOnly ? "EXAMINE completed" : "SELECT completed", code: readOnly ? .readOnly : .readWrite)
    }

    /// CLOSE expunges silently when the mailbox is read-write (RFC 9051 §6.4.1); UNSELECT does not (§6.4.2).
    func handleClose(expunge: Bool) async throws -> Completion {
        let account = try requireAccount
        let current = try requireView
        if expunge && !current.readOnly {
            _ = try await store.expunge(account: account, mailbox: current.mailbox, uids: nil, logger: logger)
        }
        view = nil
        savedSearch = []
        state = .authenticated
        return Completion(expunge ? "CLOSE completed" : "UNSELECT completed")
    }
}
