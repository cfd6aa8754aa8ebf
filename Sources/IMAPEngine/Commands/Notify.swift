import Logging

/// What NOTIFY SET asked for (RFC 5465), and what was last reported under it.
struct NotifyState {
    struct Group {
        var filter: NotifyGroup.Filter
        /// SUBTREE and MAILBOXES: the names given.
        var names: [MailboxName]
        var events: Set<NotifyEvent>
    }

    /// Groups for mailboxes other than the selected one (for message events), or for every mailbox (for the others).
    var others: [Group]
    /// The SELECTED or SELECTED-DELAYED group's events; nil without one.
    var selected: Set<NotifyEvent>?
    var selectedDelayed: Bool
    /// `MessageNew (fetch-att …)` of that group: fetched for each new message another client added (§5.2).
    var newMessageAttributes: [FetchAttribute]?
    /// Messages this session itself added to the selected mailbox (APPEND, COPY) that the view has not taken in
    /// yet, and that mailbox: no FETCH for them (§5.2). Kept only while `newMessageAttributes` is set.
    var ownNewUIDs: Set<UID> = []
    var ownNewUIDsMailbox: MailboxID?
    var lastStatus: [MailboxID: MailboxStatus] = [:]
    /// For MailboxName and SubscriptionChange (nil when neither is asked for): the names by mailbox id, and the
    /// subscriptions, as last reported; changes are found by comparing the store's list with them.
    var namesSeen: [MailboxID: MailboxName]?
    var subscriptionsSeen: Set<MailboxName> = []
    /// METADATA entries this session changed itself (mailbox name, nil for the server; entry name): their change-feed
    /// hints are not reported back to it (RFC 5465 §5). Cleared when it would grow past 1,000 (one SETMETADATA's
    /// most).
    var ownMetadata: Set<OwnMetadata> = []

    struct OwnMetadata: Hashable {
        var mailbox: MailboxName?
        var entry: String
    }

    func asks(_ event: NotifyEvent) -> Bool { others.contains { $0.events.contains(event) } }

    /// Whether a group asking for `event` covers `name`; `subscribed`: the name is subscribed (before or after).
    func watches(_ event: NotifyEvent, _ name: MailboxName, subscribed: Bool) -> Bool {
        others.contains { group in
            guard group.events.contains(event) else { return false }
            switch group.filter {
            case .inboxes: return name.isInbox
            case .personal: return true
            case .subscribed: return subscribed
            case .mailboxes: return group.names.contains(name)
            case .subtree: return group.names.contains { name == $0 || name.isDescendant(of: $0) }
            case .selected, .selectedDelayed: return false
            }
        }
    }

    /// Whether answering `watches` for `event` needs the subscriptions.
    func needsSubscriptions(_ event: NotifyEvent) -> Bool {
        others.contains { $0.filter == .subscribed && $0.events.contains(event) }
    }
}

/// A change this session made to its own mailbox list: not reported back to it (RFC 5465 §5).
enum OwnMailboxChange {
    case created(MailboxName), deleted(MailboxName), renamed(MailboxName, MailboxName), subscription(MailboxName)

    /// CREATE makes the name and its missing superiors; RENAME makes the target's missing superiors (and, for
    /// INBOX, the target itself: INBOX keeps its id and its messages move).
    func explainsCreation(of name: MailboxName) -> Bool {
        switch self {
        case .created(let created): name == created || created.isDescendant(of: name)
        case .renamed(let from, let to): to.isDescendant(of: name) || (from.isInbox && name == to)
        case .deleted, .subscription: false
        }
    }

    func explainsDeletion(of name: MailboxName) -> Bool {
        if case .deleted(let deleted) = self { deleted == name } else { false }
    }

    func explainsRename(of old: MailboxName) -> Bool {
        if case .renamed(let from, _) = self { old == from || old.isDescendant(of: from) } else { false }
    }

    func explainsSubscription(of name: MailboxName) -> Bool {
        if case .subscription(let changed) = self { changed == name } else { false }
    }
}

extension Session {
    /// NOTIFY SET / NONE (RFC 5465 §3). Every event but AnnotationChange (MailHost has no ANNOTATE) is offered;
    /// that one is `NO [BADEVENT (…)]`. Changes to other mailboxes are announced as
    /// STATUS as the change feed reports them, between commands as well as during them; the selected mailbox's at
    /// once with SELECTED (as in IDLE), its expunges kept for a command with SELECTED-DELAYED. Mailbox names and
    /// subscriptions are announced as LIST, METADATA changes as METADATA.
    func handleNotify(_ command: NotifyCommand?) async throws -> Completion {
        let account = try requireAccount
        guard let command else {
            notify = nil
            return Completion("NOTIFY completed")
        }
        if command.groups.contains(where: { $0.events.contains { !$0.isSupported } }) {
            throw IMAPError.no(
                .badEvent(NotifyEvent.supported), "AnnotationChange isn't offered (no ANNOTATE)")
        }
        let selectedGroups = command.groups.filter { $0.filter == .selected || $0.filter == .selectedDelayed }
        if selectedGroups.count > 1 { throw IMAPError.bad("Only one of SELECTED and SELECTED-DELAYED may be given") }
        if selectedGroups.contains(where: { $0.events.contains { !$0.isMessageEvent } }) {
            throw IMAPError.bad("SELECTED and SELECTED-DELAYED take message events only")
        }
        // §8: `MessageNew (fetch-att …)` belongs to the selected mailbox's group only.
        if command.groups.contains(where: {
            $0.newMessageAttributes != nil && $0.filter != .selected && $0.filter != .selectedDelayed
        }) {
            throw IMAPError.bad("MessageNew FETCH attributes are for SELECTED and SELECTED-DELAYED only")
        }
        var state = NotifyState(others: [], selected: nil, selectedDelayed: false)
        for group in command.groups {
            switch group.filter {
            case .selected, .selectedDelayed:
                state.selected = group.events
                state.selectedDelayed = group.filter == .selectedDelayed
                state.newMessageAttributes = group.newMessageAttributes
            case .subtree(let arguments), .mailboxes(let arguments):
                state.others.append(
                    NotifyState.Group(
                        filter: group.filter, names: try arguments.map { try mailboxName($0) }, events: group.events))
            case .inboxes, .personal, .subscribed:
                state.others.append(NotifyState.Group(filter: group.filter, names: [], events: group.events))
            }
        }
        if state.asks(.mailboxName) || state.asks(.subscriptionChange) {
            // The base later changes are compared with.
            var names: [MailboxID: MailboxName] = [:]
            for listing in try await store.listMailboxes(account: account, logger: logger) {
                names[listing.id] = listing.name
            }
            state.namesSeen = names
            state.subscriptionsSeen = Set(try await store.subscriptions(account: account, logger: logger))
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

    /// The mailboxes other than the selected one that a group watches for message events, with those events.
    private func watchedMailboxes(account: AccountID) async throws -> [(MailboxListing, Set<NotifyEvent>)] {
        guard let notify else { return [] }
        let messageEvents: [NotifyEvent] = [.messageNew, .messageExpunge, .flagChange]
        guard messageEvents.contains(where: { notify.asks($0) }) else { return [] }
        let listings = try await store.listMailboxes(account: account, logger: logger)
        let subscribed =
            messageEvents.contains { notify.needsSubscriptions($0) }
            ? Set(try await store.subscriptions(account: account, logger: logger)) : []
        var result: [(MailboxListing, Set<NotifyEvent>)] = []
        for listing in listings where listing.id != view?.mailbox {
            let events = Set(
                messageEvents.filter {
                    notify.watches($0, listing.name, subscribed: subscribed.contains(listing.name))
                })
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

extension Session {
    /// MailboxName and SubscriptionChange (RFC 5465 §5.4, §5.5): compares the store's mailboxes and subscriptions
    /// with those last reported and sends a LIST for each watched name that was created, deleted, renamed (with
    /// OLDNAME; not for the inferiors that moved with it) or (un)subscribed, with its attributes as they are now; a
    /// created or deleted mailbox's existing parent too. Changes `own` explains were made by this session and are not
    /// reported. A store failure is logged; the next hint compares again.
    func announceMailboxChanges(own: OwnMailboxChange? = nil) async {
        guard let account, let seen = notify?.namesSeen else { return }
        do {
            let listings = try await store.listMailboxes(account: account, logger: logger)
            let subscriptions = try await store.subscriptions(account: account, logger: logger)
            guard let state = notify else { return }
            let subscribed = Set(subscriptions)
            let seenSubscribed = state.subscriptionsSeen
            var names: [MailboxID: MailboxName] = [:]
            for listing in listings { names[listing.id] = listing.name }
            notify?.namesSeen = names
            notify?.subscriptionsSeen = subscribed

            var entries: [MailboxName: MailboxTree.Entry] = [:]
            for entry in MailboxTree(listings: listings, subscriptions: subscriptions).entries {
                entries[entry.name] = entry
            }
            func watched(_ event: NotifyEvent, _ name: MailboxName) -> Bool {
                state.watches(event, name, subscribed: subscribed.contains(name) || seenSubscribed.contains(name))
            }
            var announced = Set<MailboxName>()
            var w = responseWriter()
            func announce(_ name: MailboxName, oldName: MailboxName? = nil) {
                guard announced.insert(name).inserted else { return }
                let entry = entries[name]
                var attributes: [String] = []
                if entry?.exists == true {
                    attributes.append(entry?.hasChildren == true ? "\\HasChildren" : "\\HasNoChildren")
                } else {
                    attributes.append("\\NonExistent")
                    if entry?.hasChildren == true { attributes.append("\\HasChildren") }
                }
                if subscribed.contains(name) { attributes.append("\\Subscribed") }
                if entry?.exists == true, let use = entry?.specialUse { attributes.append(use) }
                w.raw("* LIST (" + attributes.joined(separator: " ") + ") \"/\" ")
                w.mailbox(name)
                if let oldName {
                    w.raw(" (\"OLDNAME\" (")
                    w.mailbox(oldName)
                    w.raw("))")
                }
                w.crlf()
            }
            /// §5.4: a created or deleted mailbox's direct parent is affected too, whether it exists or not (its
            /// children changed; one that does not exist is announced `\NonExistent`).
            func announceWithParent(_ name: MailboxName) {
                announce(name)
                if let parent = name.ancestors.last, watched(.mailboxName, parent) { announce(parent) }
            }

            var renames: [(old: MailboxName, new: MailboxName)] = []
            for (id, old) in seen.sorted(by: { $0.value < $1.value }) {
                if let new = names[id] {
                    if new != old, own?.explainsRename(of: old) != true { renames.append((old, new)) }
                } else if own?.explainsDeletion(of: old) != true, watched(.mailboxName, old) {
                    announceWithParent(old)
                }
            }
            for (old, new) in renames
            where !renames.contains(where: { old.isDescendant(of: $0.old) && new.isDescendant(of: $0.new) }) {
                if watched(.mailboxName, old) || watched(.mailboxName, new) { announce(new, oldName: old) }
            }
            for (id, name) in names.sorted(by: { $0.value < $1.value })
            where seen[id] == nil && own?.explainsCreation(of: name) != true && watched(.mailboxName, name) {
                announceWithParent(name)
            }
            for name in subscribed.symmetricDifference(seenSubscribed).sorted()
            where own?.explainsSubscription(of: name) != true && watched(.subscriptionChange, name) {
                announce(name)
            }
            try await out.send(w)
        } catch {
            logger.warning("NOTIFY mailbox names not sent", metadata: ["error": "\(error)"])
        }
    }

    /// After this session's own CREATE, DELETE, RENAME, SUBSCRIBE or UNSUBSCRIBE: takes the change into the names
    /// last reported without reporting it, and reports whatever else changed meanwhile.
    func mailboxesChangedHere(_ own: OwnMailboxChange) async {
        guard notify?.namesSeen != nil else { return }
        await announceMailboxChanges(own: own)
    }

    /// MailboxMetadataChange and ServerMetadataChange (RFC 5465 §5.6, §5.7): `* METADATA mailbox entry …` with the
    /// names of the entries set or removed, unless this session changed them itself.
    func announceMetadata(owner: MailboxID?, entries: [String]) async {
        guard let account, let state = notify else { return }
        let event: NotifyEvent = owner == nil ? .serverMetadataChange : .mailboxMetadataChange
        guard state.asks(event) else { return }
        do {
            var name: MailboxName? = nil
            if let owner {
                // Gone meanwhile: its MailboxName event says so.
                guard
                    let listing = try await store.listMailboxes(account: account, logger: logger).first(where: {
                        $0.id == owner
                    })
                else { return }
                name = listing.name
            }
            let reported = entries.filter {
                notify?.ownMetadata.remove(NotifyState.OwnMetadata(mailbox: name, entry: $0)) == nil
            }
            guard !reported.isEmpty else { return }
            if let name {
                var subscribed = false
                if state.needsSubscriptions(event) {
                    subscribed = try await store.subscriptions(account: account, logger: logger).contains(name)
                }
                guard state.watches(event, name, subscribed: subscribed) else { return }
            }
            var w = responseWriter()
            w.raw("* METADATA ")
            if let name { w.mailbox(name) } else { w.raw("\"\"") }
            for entry in reported {
                w.raw(" ")
                w.astring(entry)
            }
            w.crlf()
            try await out.send(w)
        } catch {
            logger.warning("NOTIFY metadata change not sent", metadata: ["error": "\(error)"])
        }
    }

    /// After this session's own SETMETADATA: its entries' hints are not reported back.
    func metadataChangedHere(mailbox: MailboxName?, entries: [MetadataEntry]) {
        guard let state = notify, state.asks(mailbox == nil ? .serverMetadataChange : .mailboxMetadataChange) else {
            return
        }
        if state.ownMetadata.count + entries.count > 1_000 { notify?.ownMetadata = [] }
        for entry in entries {
            notify?.ownMetadata.insert(NotifyState.OwnMetadata(mailbox: mailbox, entry: entry.name))
        }
    }

    /// `MessageNew (fetch-att …)` (RFC 5465 §5.2): after the EXISTS (and any ESEARCH ADDTO) for new messages in the
    /// selected mailbox, a FETCH of the asked attributes for each one another client added. A store failure or a
    /// message expunged meanwhile is logged, not an error of the command that happened to synchronise.
    func fetchNewMessages(after previous: UID?, in view: MailboxView, _ attributes: [FetchAttribute]) async throws {
        let own = notify?.ownNewUIDsMailbox == view.mailbox ? notify?.ownNewUIDs ?? [] : []
        let start = view.lowerBound(UID((previous?.rawValue ?? 0) + 1))
        let fresh = view.uids[start...].filter { !own.contains($0) }
        if !own.isEmpty, let last = view.lastUID { notify?.ownNewUIDs = own.filter { $0 > last } }
        guard !fresh.isEmpty else { return }
        do {
            let set = NumberSet(
                ranges: UIDRanges(fresh).ranges.map { NumberSet.Range(.number($0.lowerBound), .number($0.upperBound)) })
            _ = try await handleFetch(.uid(set), items: attributes)
        } catch let error as IMAPError {
            logger.notice("NOTIFY MessageNew FETCH not sent", metadata: ["error": "\(error)"])
        } catch let error as StoreError {
            logger.warning("NOTIFY MessageNew FETCH not sent", metadata: ["error": "\(error)"])
        }
    }

    /// After this session's own APPEND or COPY into the selected mailbox: no MessageNew FETCH for those messages.
    func messagesAddedHere(_ uids: some Sequence<UID>) {
        guard notify?.newMessageAttributes != nil, let mailbox = view?.mailbox else { return }
        if notify?.ownNewUIDsMailbox != mailbox {
            notify?.ownNewUIDs = []
            notify?.ownNewUIDsMailbox = mailbox
        }
        notify?.ownNewUIDs.formUnion(uids)
    }

    /// RFC 5465 §5.8: the session fell too far behind; NOTIFY is off as after NOTIFY NONE.
    func notificationOverflow() async throws {
        guard notify != nil else { return }
        notify = nil
        var w = responseWriter()
        w.tagged("*", "OK", code: .notificationOverflow, "Too many changes to report; NOTIFY is off")
        try await out.send(w)
    }
}
