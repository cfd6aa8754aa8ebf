import Logging

/// STORE and UID STORE (RFC 9051 §6.4.6), with CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3).
extension Session {
    func handleStore(_ selector: MessageSelector, action: StoreAction) async throws -> Completion {
        let account = try requireAccount
        let current = try requireView
        let flags = try storableFlags(action.flags)
        let uids = try current.resolve(selector, saved: savedSearch)
        if current.readOnly { throw IMAPError.no(.cannot, "Mailbox is read-only") }
        let conditional = action.unchangedSince != nil
        if conditional { enableCondstore() }
        guard !uids.isEmpty else { return Completion("STORE completed") }

        let kind: FlagUpdate.Kind
        switch action.kind {
        case .replace: kind = .replace
        case .add: kind = .add
        case .remove: kind = .remove
        }
        let results = try await store.updateFlags(
            account: account, mailbox: current.mailbox, uids: uids,
            update: FlagUpdate(kind: kind, flags: flags, unchangedSince: action.unchangedSince), logger: logger)
        showed(upTo: results.lazy.map(\.modSeq).max())
        let own = Self.ownChange(results)
        if own.changed { wroteSelected(own.delta) }
        var w = responseWriter()
        if !action.silent {
            for response in view?.announceKeywords(of: results.map(\.flags)) ?? [] { w.untagged(response) }
        }
        var failed: [UInt32] = []
        for result in results {
            guard let seq = current.sequenceNumber(of: result.uid) else { continue }
            if result.conditionFailed {
                failed.append(selector.isUID ? result.uid.rawValue : seq.rawValue)
                continue
            }
            reportedFlags[result.uid] = result.flags
            // RFC 7162 §3.1.3: a conditional STORE reports every message it passed, MODSEQ included, even .SILENT.
            guard !action.silent || conditional else { continue }
            w.raw("* \(seq) FETCH (")
            if selector.isUID || condstore { w.raw("UID \(result.uid) ") }
            if !action.silent {
                w.raw("FLAGS ")
                w.flags(result.flags, recent: current.recent.contains(result.uid))
            }
            if condstore { w.raw((action.silent ? "" : " ") + "MODSEQ (\(result.modSeq))") }
            w.line(")")
            if w.count >= ResponseSink.batchSize {
                try await out.send(w)
                w.removeAll()
            }
        }
        try await out.send(w)
        if !failed.isEmpty {
            return Completion("Conditional STORE failed", code: .modified(UIDRanges(failed.map { UID($0) })))
        }
        return Completion("STORE completed")
    }

    /// What this STORE changed, as the change of its modseq (`FeedBacklog`): whether it changed anything, and the
    /// delta, nil when the results do not make one modseq's change (the sync point then pulls).
    static func ownChange(_ results: [StoredFlags]) -> (changed: Bool, delta: MailboxDelta?) {
        let changed = results.filter(\.changed)
        guard let modSeq = changed.first?.modSeq else { return (false, nil) }
        guard changed.allSatisfy({ $0.modSeq == modSeq }) else { return (true, nil) }
        let delta = MailboxDelta(
            changed: changed.map { MailboxDelta.FlagChange(uid: $0.uid, flags: $0.flags, modSeq: modSeq) },
            highestModSeq: modSeq)
        return (true, delta)
    }

    /// Flags a client may set (RFC 9051 §2.3.2): system flags and keywords; `\Recent` and unknown `\` flags are
    /// refused, as Dovecot does.
    func storableFlags(_ flags: [Flag]) throws(IMAPError) -> MessageFlags {
        var result = MessageFlags()
        for flag in flags {
            switch flag {
            case .recent: throw IMAPError.bad("\\Recent can't be set")
            case .extensionFlag(let name): throw IMAPError.bad("Invalid system flag \\\(name.prefix(32))")
            case .keyword(let name):
                guard name.utf8.count <= Flag.maxKeywordLength else { throw IMAPError.bad("Keyword too long") }
                result.insert(flag)
            default: result.insert(flag)
            }
        }
        guard result.keywords.count <= 100 else { throw IMAPError.no(.limit, "Too many keywords") }
        return result
    }
}
