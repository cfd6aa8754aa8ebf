import Logging

/// What NOTIFY SET asked for (RFC 5465), and the last STATUS each watched mailbox was reported with.
struct NotifyState {
    /// Groups for mailboxes other than the selected one, their names resolved.
    var others: [(filter: NotifyGroup.Filter, names: [MailboxName], events: Set<NotifyEvent>)]
    /// The SELECTED or SELECTED-DELAYED group's events; nil without one.
    var selected: Set<NotifyEvent>?
    var selectedDelayed: Bool
    var lastStatus: [MailboxID: MailboxStatus] = [:]
}

extension Session {
    /// NOTIFY SET / NONE (RFC 5465 §3). Only MessageNew, MessageExpunge and FlagChange are offered; anything else is
    /// `NO [BADEVENT (…)]`. Changes to other mailboxes are announced as STATUS as the change feed reports them, between
    /// commands as well as during them; the selected mailbox's at once with SELECTED (as in IDLE), its expunges kept
    /// for a command with SELECTED-DELAYED.
    func handleNotify(_ command: NotifyCommand?) async throws -> Completion {
        let account = try requireAccount
        guard let command else {
            notify = nil
            return Completion("NOTIFY completed")
        }
        if command.groups.contains(where: { $0.events.contains { !$0.isSupported } }) {
            throw IMAPError.no(.badEvent(NotifyEvent.supported), "Only message events are notified")
        }
        var state = NotifyState(others: [], selected: nil, selectedDelayed: false)
        for group in command.groups {
            switch group.filter {
            case .selected, .selectedDelayed:
                state.selected = group.events
                state.selectedDelayed = group.filter == .selectedDelayed
            case .subtree(let arguments), .mailboxes(let arguments):
                state.others.append((group.filter, try arguments.map { try mailboxName($0) }, group.events))
            case .inboxes, .personal, .subscribed:
                state.others.append((group.filter, [], group.events))
            }
        }
        notify = state
        // Every watched mailbox's current STATUS is the base later changes are compared with; with the STATUS
        // indicator it is also reported now (§3: MESSAGES UIDNEXT UIDVALIDITY for MessageNew, MESSAGES for
        // MessageExpunge, UIDVALIDITY HIGHESTMODSEQ for FlagChange).
        for (listing, events) in try await watchedMailboxes(account: account) {
            let status = try await store.status(account: account, name: listing.name, logger: logger)
            notify?.lastStatus[listing.id] = status
            guard command.status else { continue }
            var items: [StatusAttribute] = []
            if events.contains(.messageNew) || events.contains(.messageExpunge) { items.append(.messages) }
            if events.contains(.messageNew) { items += [.uidNext, .uidValidity] }
            if events.contains(.flagChange) { items += [.uidValidity, .highestModSeq] }
            try await sendStatus(listing.name, status, items)
        }
        return Completion("NOTIFY completed")
    }

    /// The mailboxes other than the selected one that a group watches, with the events watched on each.
    private func watchedMailboxes(account: AccountID) async throws -> [(MailboxListing, Set<NotifyEvent>)] {
        guard let notify, !notify.others.isEmpty else { return [] }
        let listings = try await store.listMailboxes(account: account, logger: logger)
        let subscribed =
            notify.others.contains { $0.filter == .subscribed }
            ? Set(try await store.subscriptions(account: account, logger: logger)) : []
        var result: [(MailboxListing, Set<NotifyEvent>)] = []
        for listing in listings where listing.id != view?.mailbox {
            var events = Set<NotifyEvent>()
            for group in notify.others {
                let matches: Bool
                switch group.filter {
                case .inboxes: matches = listing.name.isInbox
                case .personal: matches = true
                case .subscribed: matches = subscribed.contains(listing.name)
                case .mailboxes: matches = group.names.contains(listing.name)
                case .subtree:
                    matches = group.names.contains { listing.name == $0 || listing.name.isDescendant(of: $0) }
                case .selected, .selectedDelayed: matches = false
                }
                if matches { events.formUnion(group.events) }
            }
            if !events.isEmpty { result.append((listing, events)) }
        }
        return result
    }

    /// A change-feed hint for mailbox `changed` (nil: the feed lost hints, look at every watched mailbox): a STATUS
    /// for each watched mailbox whose counters moved in a way its events ask for (§5.2-5.4). A store failure is
    /// logged and retried at the next hint.
    func notifyOtherMailboxes(changed: MailboxID?) async {
        guard let account, notify != nil else { return }
        do {
            for (listing, events) in try await watchedMailboxes(account: account)
            where changed == nil || listing.id == changed {
                let status = try await store.status(account: account, name: listing.name, logger: logger)
                let last = notify?.lastStatus[listing.id]
                notify?.lastStatus[listing.id] = status
                guard let last, last.highestModSeq != status.highestModSeq || last.uidValidity != status.uidValidity
                else { continue }
                var items: [StatusAttribute] = []
                let messagesMoved = last.messages != status.messages || last.uidNext != status.uidNext
                if messagesMoved, events.contains(.messageNew) || events.contains(.messageExpunge) {
                    items += [.messages, .uidNext]
                }
                if !messagesMoved, events.contains(.flagChange) { items += [.uidValidity, .unseen] }
                guard !items.isEmpty else { continue }
                if condstore { items.append(.highestModSeq) }
                try await sendStatus(listing.name, status, items)
            }
        } catch {
            logger.warning("NOTIFY status not sent", metadata: ["error": "\(error)"])
        }
    }

    /// `* STATUS name (items)` (STATUS, NOTIFY).
    func sendStatus(_ name: MailboxName, _ status: MailboxStatus, _ items: [StatusAttribute]) async throws {
        var w = responseWriter()
        w.raw("* STATUS ")
        w.mailbox(name)
        w.raw(" (")
        w.raw(Self.statusItems(status, items: items))
        w.line(")")
        try await out.send(w)
    }
}
