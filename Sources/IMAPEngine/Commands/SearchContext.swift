import Logging

/// RFC 5267 §4.3: a SEARCH or SORT with RETURN (UPDATE) whose result the session keeps up to date, announcing
/// ADDTO and REMOVEFROM at sync points (with the FETCH, EXISTS and EXPUNGE responses of the same changes).
struct UpdateContext {
    var tag: String
    var isUID: Bool
    var mailbox: MailboxID
    /// The program as resolved when the command ran (sequence numbers in it are not re-read, per the RFC).
    var query: SearchQuery
    /// nil for SEARCH (results in mailbox order, position 0); the order for SORT (positions count).
    var criteria: [SortCriterion]?
    var results: [UID]
    /// The mailbox's modseq the results are current for.
    var evaluatedAt: ModSeq
}

extension Session {
    /// Updating contexts per session (RFC 5267 §4.3.1: at least one; more are `NO [NOUPDATE]`). Each costs a
    /// search at every sync point where the mailbox changed.
    static let maxUpdateContexts = 5

    /// Registers an updating context for a command that just answered; false (after `* NO [NOUPDATE]`) past the
    /// limit.
    func registerUpdate(
        tag: Tag, isUID: Bool, query: SearchQuery, criteria: [SortCriterion]?, results: [UID], view: MailboxView
    ) async throws {
        updateContexts.removeAll { $0.mailbox != view.mailbox }
        guard updateContexts.count < Self.maxUpdateContexts else {
            var w = responseWriter()
            w.raw("* NO [NOUPDATE ")
            w.string(tag)
            w.line("] Too many updating searches")
            try await out.send(w)
            return
        }
        updateContexts.append(
            UpdateContext(
                tag: tag, isUID: isUID, mailbox: view.mailbox, query: query, criteria: criteria, results: results,
                evaluatedAt: view.highestModSeq))
    }

    /// RFC 5267 §4.3: reusing the tag of a live updating context is BAD.
    func checkUpdateTag(_ tag: Tag) throws {
        if updateContexts.contains(where: { $0.tag == tag }) { throw IMAPError.bad("Tag reuse") }
    }

    /// CANCELUPDATE (RFC 5267 §4.3.5).
    func handleCancelUpdate(_ tags: [String]) -> Completion {
        updateContexts.removeAll { tags.contains($0.tag) }
        return Completion("CANCELUPDATE completed")
    }

    /// The REMOVEFROM lines (numbered as in `before`, to go before the sync point's other responses, EXPUNGEs
    /// included) and ADDTO lines (numbered as in `after`, to go after its EXISTS) of every context whose mailbox
    /// changed. A failed search leaves the context as it was, to be brought up to date at the next sync point.
    func refreshUpdateContexts(before: MailboxView, after: MailboxView) async -> (removals: [UInt8], additions: [UInt8])
    {
        var removals = responseWriter()
        var additions = responseWriter()
        guard let account else { return ([], []) }
        updateContexts.removeAll { $0.mailbox != after.mailbox }
        for i in updateContexts.indices where updateContexts[i].evaluatedAt != after.highestModSeq {
            let context = updateContexts[i]
            var current: [UID] = []
            do {
                if let criteria = context.criteria {
                    current = try await sorted(context.query, by: criteria, view: after)
                } else if let maxUID = after.lastUID {
                    current = try await store.search(
                        account: account, mailbox: context.mailbox, query: context.query, maxUID: maxUID,
                        logger: logger
                    ).filter { after.index(of: $0) != nil }
                }
            } catch {
                logger.warning("updating search not refreshed", metadata: ["error": "\(error)"])
                continue
            }
            let old = context.results
            let currentSet = Set(current)
            let oldSet = Set(old)
            updateContexts[i].results = current
            updateContexts[i].evaluatedAt = after.highestModSeq
            // The `position set` pairs of one change: SEARCH contexts use position 0 and mailbox order; SORT
            // contexts one pair per message at its position (`entries` in the order they are to be applied).
            func pairs(_ entries: [(offset: Int, element: UID)], in view: MailboxView) -> [String] {
                func number(_ uid: UID) -> UInt32? {
                    context.isUID ? uid.rawValue : view.sequenceNumber(of: uid)?.rawValue
                }
                guard context.criteria != nil else {
                    let numbers = entries.compactMap { number($0.element) }.sorted()
                    return numbers.isEmpty ? [] : ["0 " + Self.sortedSet(numbers)]
                }
                return entries.compactMap { entry in number(entry.element).map { "\(entry.offset + 1) \($0)" } }
            }
            // Removals from the last position down, so that each position is still right when it is applied, numbered
            // as before the sync point; additions at their final positions, lowest first, numbered as after it.
            let removed = pairs(old.enumerated().filter { !currentSet.contains($0.element) }.reversed(), in: before)
            if !removed.isEmpty { write(&removals, context, "REMOVEFROM", removed) }
            let added = pairs(current.enumerated().filter { !oldSet.contains($0.element) }, in: after)
            if !added.isEmpty { write(&additions, context, "ADDTO", added) }
        }
        return (removals.bytes, additions.bytes)
    }

    private func write(_ w: inout ResponseWriter, _ context: UpdateContext, _ item: String, _ pairs: [String]) {
        w.raw("* ESEARCH (TAG ")
        w.string(context.tag)
        w.raw(")")
        if context.isUID { w.raw(" UID") }
        w.line(" \(item) (" + pairs.joined(separator: " ") + ")")
    }
}
