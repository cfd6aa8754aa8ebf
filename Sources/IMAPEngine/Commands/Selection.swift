import Logging

/// SELECT, EXAMINE, CLOSE and UNSELECT (RFC 9051 §6.3.2, §6.3.3, §6.4.1, §6.4.2), with CONDSTORE and QRESYNC
/// (RFC 7162 §3.1.8, §3.2.5).
extension Session {
    func handleSelect(_ argument: MailboxArgument, readOnly: Bool, parameters: SelectParameters = SelectParameters())
        async throws -> Completion
    {
        let account = try requireAccount
        let name = try mailboxName(argument)
        if parameters.qresync != nil && !qresync {
            throw IMAPError.bad("QRESYNC parameter without ENABLE QRESYNC")
        }
        // Selecting deselects first; a failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2).
        updateContexts = []
        if view != nil {
            view = nil
            state = .authenticated
            if rev2 || qresync { try await out.sendLine("* OK [CLOSED] Previous mailbox is now closed") }
        }
        pendingHighestModSeq = false
        if parameters.condstore { condstore = true }
        var snapshot = try await store.select(
            account: account, name: name, claimRecent: !readOnly && !rev2, logger: logger)
        if rev2 { snapshot.recent = [] }  // RFC 9051 has no \Recent
        var newView = MailboxView(snapshot: snapshot, readOnly: readOnly)
        view = newView
        markCurrent()
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
        w.line("* OK [MAILBOXID (\(ObjectID.mailbox(snapshot.id)))] Ok")
        w.line("* OK [UIDNEXT \(snapshot.uidNext)] Predicted next UID")
        if condstore { w.line("* OK [HIGHESTMODSEQ \(snapshot.highestModSeq)] Highest") }
        if rev2 {
            w.raw("* LIST () \"/\" ")
            w.mailbox(name)
            w.crlf()
        }
        if let known = parameters.qresync, known.uidValidity == snapshot.uidValidity {
            // RFC 7162 §3.2.5.1: what changed since the client's modseq. Expunges of messages this view does not
            // hold are VANISHED (EARLIER) (within the UIDs the client says it knows); everything else is folded into
            // the view and announced as any change is, so the view and the client agree.
            var delta = try await store.changes(
                account: account, mailbox: snapshot.id, since: known.modSeq, logger: logger)
            if let knownUIDs = known.knownUIDs {
                // Flag changes only for the UIDs the client says it knows (messages that arrived after the snapshot
                // are still announced, as EXISTS).
                delta.changed = delta.changed.filter { knownUIDs.contains($0.uid) || newView.index(of: $0.uid) == nil }
            }
            let earlier: UIDRanges
            if delta.expungedIncomplete {
                // Older expunges are no longer recorded: every UID the client may know that is not here.
                earlier = newView.absentUIDs(in: known.knownUIDs ?? UIDRanges(ranges: [1...UInt32.max]))
            } else {
                earlier = UIDRanges(
                    delta.expunged.filter { uid in
                        newView.index(of: uid) == nil && (known.knownUIDs?.contains(uid) ?? true)
                    })
            }
            if !earlier.isEmpty { w.untagged(.vanished(earlier, earlier: true)) }
            newView.absorb(delta)
            for response in newView.flush(.full, reportRecent: !rev2, modSeqs: true, vanished: true) {
                w.untagged(response)
            }
            view = newView
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
        updateContexts = []
        state = .authenticated
        return Completion(expunge ? "CLOSE completed" : "UNSELECT completed")
    }
}
