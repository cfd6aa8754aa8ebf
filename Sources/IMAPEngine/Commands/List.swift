import Logging

/// LIST and LSUB (RFC 9051 §6.3.9 with the RFC 5258 extensions it includes, RFC 5819 LIST-STATUS, RFC 6154
/// SPECIAL-USE, RFC 3501 §6.3.9 LSUB).
extension Session {
    func handleList(_ list: ListCommand) async throws -> Completion {
        let account = try requireAccount
        // RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter.
        if list.patterns.count == 1, list.patterns[0].wire.isEmpty, list.selectOptions.isEmpty {
            try await out.sendLine("* LIST (\\Noselect) \"/\" \"\"")
            return Completion("LIST completed")
        }
        let patterns = list.patterns.map { ListPattern(patternText(reference: list.reference, pattern: $0)) }
        let (listings, subscriptions) = try await store.mailboxesAndSubscriptions(account: account, logger: logger)
        let tree = MailboxTree(listings: listings, subscriptions: subscriptions)

        let subscribedOnly = list.selectOptions.contains(.subscribed)
        let specialUseOnly = list.selectOptions.contains(.specialUse)
        let recursive = list.selectOptions.contains(.recursiveMatch)
        let showSubscribed = subscribedOnly || list.returnOptions.subscribed

        var w = responseWriter()
        for entry in tree.entries where patterns.contains(where: { $0.matches(entry.name) }) {
            var attributes: [String] = []
            var childInfo = false
            if subscribedOnly && !entry.isSubscribed {
                // RFC 5258 §3.5: CHILDINFO when a subscribed descendant does not match the patterns itself.
                guard recursive,
                    tree.subscribedDescendants(of: entry.name).contains(where: { name in
                        !patterns.contains { $0.matches(name) }
                    })
                else { continue }
                childInfo = true
            }
            if specialUseOnly && entry.specialUse == nil {
                continue
            }
            if !entry.exists {
                // A name with inferiors but no mailbox of its own, or a subscription to a missing mailbox.
                if entry.hasChildren || childInfo {
                    attributes.append("\\Noselect")
                } else if subscribedOnly {
                    attributes.append("\\NonExistent")
                } else {
                    continue
                }
            }
            attributes.append(entry.hasChildren ? "\\HasChildren" : "\\HasNoChildren")
            if showSubscribed && entry.isSubscribed { attributes.append("\\Subscribed") }
            if let specialUse = entry.specialUse { attributes.append(specialUse) }
            w.raw("* LIST (" + attributes.joined(separator: " ") + ") \"/\" ")
            w.mailbox(entry.name)
            if childInfo { w.raw(" (\"CHILDINFO\" (\"SUBSCRIBED\"))") }
            w.crlf()
            if let items = list.returnOptions.status, entry.exists {
                if let status = try? await store.status(account: account, name: entry.name, logger: logger) {
                    w.raw("* STATUS ")
                    w.mailbox(entry.name)
                    w.line(" (" + Self.statusItems(status, items: items) + ")")
                }
            }
            if w.count >= ResponseSink.batchSize {
                try await out.send(w)
                w.removeAll()
            }
        }
        try await out.send(w)
        return Completion("LIST completed")
    }

    /// RFC 3501 §6.3.9: subscribed names matching the pattern, with their special use (RFC 6154). With `%`, an
    /// unsubscribed superior of a subscribed name is returned with `\Noselect`.
    func handleLsub(reference: MailboxArgument, pattern: MailboxArgument) async throws -> Completion {
        let account = try requireAccount
        let matcher = ListPattern(patternText(reference: reference, pattern: pattern))
        let (listings, subscriptions) = try await store.mailboxesAndSubscriptions(account: account, logger: logger)
        let tree = MailboxTree(listings: listings, subscriptions: subscriptions)
        var w = responseWriter()
        for entry in tree.entries where matcher.matches(entry.name) {
            if entry.isSubscribed {
                // Special uses are reported on LSUB too (what clients that still sync by LSUB find their Sent by).
                let attributes = entry.exists ? (entry.specialUse ?? "") : "\\Noselect"
                w.raw("* LSUB (\(attributes)) \"/\" ")
            } else if entry.hasSubscribedDescendant && matcher.endsWithPercent {
                w.raw("* LSUB (\\Noselect) \"/\" ")
            } else {
                continue
            }
            w.mailbox(entry.name)
            w.crlf()
        }
        try await out.send(w)
        return Completion("LSUB completed")
    }

    /// The reference and pattern joined and decoded like a mailbox name (RFC 9051 §6.3.9). A pattern that is not
    /// valid modified UTF-7 cannot match a stored name: it is kept as it is and simply matches nothing.
    private func patternText(reference: MailboxArgument, pattern: MailboxArgument) -> String {
        var joined = reference.wire
        if !joined.isEmpty, !joined.hasSuffix("/"), !pattern.wire.hasPrefix("/") { joined += "/" }
        joined += pattern.wire
        return (try? mailboxName(MailboxArgument(joined)).name) ?? joined
    }
}

/// Every name LIST can show: existing mailboxes, their missing superiors, and subscriptions. Sorted with INBOX first.
struct MailboxTree {
    struct Entry {
        var name: MailboxName
        var exists = false
        var isSubscribed = false
        var hasChildren = false
        var hasSubscribedDescendant = false
        var specialUse: String?
    }

    private(set) var entries: [Entry]
    private let subscriptions: [MailboxName]

    func subscribedDescendants(of name: MailboxName) -> [MailboxName] {
        subscriptions.filter { $0.isDescendant(of: name) }
    }

    init(listings: [MailboxListing], subscriptions: [MailboxName]) {
        self.subscriptions = subscriptions
        var byName: [MailboxName: Entry] = [:]
        for listing in listings {
            byName[listing.name, default: Entry(name: listing.name)].exists = true
            byName[listing.name]?.specialUse = listing.specialUse
            for ancestor in listing.name.ancestors {
                byName[ancestor, default: Entry(name: ancestor)].hasChildren = true
            }
        }
        for name in subscriptions {
            byName[name, default: Entry(name: name)].isSubscribed = true
            for ancestor in name.ancestors {
                if byName[ancestor] == nil { byName[ancestor] = Entry(name: ancestor) }
                byName[ancestor]?.hasSubscribedDescendant = true
            }
        }
        entries = byName.values.sorted { a, b in
            if a.name.isInbox != b.name.isInbox { return a.name.isInbox }
            return a.name < b.name
        }
    }
}

/// A LIST pattern (RFC 9051 §6.3.9): `*` matches anything, `%` anything but the separator. INBOX matches
/// case-insensitively.
struct ListPattern {
    let bytes: [UInt8]

    init(_ pattern: String) {
        var bytes = Array(pattern.utf8)
        // "inbox", "Inbox/%" … name INBOX, which is case-insensitive (RFC 9051 §5.1).
        if bytes.count >= 5, String(decoding: bytes[0..<5], as: UTF8.self).uppercased() == "INBOX",
            bytes.count == 5 || bytes[5] == MailboxName.separatorByte
        {
            bytes.replaceSubrange(0..<5, with: Array("INBOX".utf8))
        }
        self.bytes = bytes
    }

    var endsWithPercent: Bool { bytes.last == UInt8(ascii: "%") }

    func matches(_ name: MailboxName) -> Bool {
        ListPattern.match(bytes[...], Array(name.name.utf8)[...])
    }

    /// Wildcard matching by dynamic programming over the name: O(pattern × name), no exponential backtracking.
    static func match(_ pattern: ArraySlice<UInt8>, _ name: ArraySlice<UInt8>) -> Bool {
        let p = Array(pattern)
        let n = Array(name)
        // reachable[j]: the pattern prefix consumed so far can match n[0..<j].
        var reachable = [Bool](repeating: false, count: n.count + 1)
        reachable[0] = true
        for token in p {
            var next = [Bool](repeating: false, count: n.count + 1)
            switch token {
            case UInt8(ascii: "*"):
                var any = false
                for j in 0...n.count {
                    any = any || reachable[j]
                    next[j] = any
                }
            case UInt8(ascii: "%"):
                var any = false
                for j in 0...n.count {
                    if reachable[j] { any = true }
                    next[j] = any
                    if j < n.count, n[j] == MailboxName.separatorByte { any = false }
                }
            default:
                for j in 0..<n.count where reachable[j] && n[j] == token { next[j + 1] = true }
            }
            reachable = next
            if !reachable.contains(true) { return false }
        }
        return reachable[n.count]
    }
}
