import Logging

/// CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS (RFC 9051 §6.3.4–§6.3.8, §6.3.11).
extension Session {
    /// RFC 9051 §6.3.4: creating INBOX is an error; a trailing separator only declares the intent to create
    /// inferiors; missing superiors are created.
    /// Special uses a mailbox here can have (RFC 6154 §2): \\All and \\Flagged would be virtual mailboxes, which
    /// MailHost does not have.
    static let creatableSpecialUses = ["\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"]

    func handleCreate(_ argument: MailboxArgument, use: [String] = []) async throws -> Completion {
        let account = try requireAccount
        var name = try mailboxName(argument)
        if name.name.utf8.count > 1, name.name.hasSuffix("/") {
            name = MailboxName(normalizing: String(name.name.dropLast()))
        }
        if name.isInbox { throw IMAPError.no(.alreadyExists, "INBOX always exists") }
        if let problem = name.creationProblem { throw IMAPError.no(.cannot, problem) }
        // RFC 6154 §3: one special use per mailbox, one mailbox per special use, and only real ones.
        var specialUse: String? = nil
        if !use.isEmpty {
            guard use.count == 1,
                let attribute = Self.creatableSpecialUses.first(where: {
                    $0.lowercased() == use[0].lowercased()
                })
            else {
                throw IMAPError.no(
                    .useAttr, "Only one of \(Self.creatableSpecialUses.joined(separator: " ")) may be used")
            }
            let existing = try await store.listMailboxes(account: account, logger: logger)
            if let holder = existing.first(where: { $0.specialUse == attribute }) {
                throw IMAPError.no(.useAttr, "\(attribute) is already the use of \(holder.name.name.prefix(100))")
            }
            specialUse = attribute
        }
        do {
            try await store.createMailbox(account: account, name: name, specialUse: specialUse, logger: logger)
        } catch {
            // The store settles a race for the same use: still USEATTR.
            if case .cannot(let reason) = error, specialUse != nil { throw IMAPError.no(.useAttr, reason) }
            throw error
        }
        await mailboxesChangedHere(.created(name))
        // RFC 8474 §4.1: the new mailbox's MAILBOXID on the tagged OK.
        let created = try? await store.listMailboxes(account: account, logger: logger).first { $0.name == name }
        if let created { return Completion("CREATE completed", code: .mailboxID(ObjectID.mailbox(created.id))) }
        return Completion("CREATE completed")
    }

    /// RFC 9051 §6.3.5: INBOX cannot be deleted. Deleting the selected mailbox closes it first (as Dovecot does).
    func handleDelete(_ argument: MailboxArgument) async throws -> Completion {
        let account = try requireAccount
        let name = try mailboxName(argument)
        if name.isInbox { throw IMAPError.no(.cannot, "INBOX can't be deleted") }
        if let view, view.name == name {
            self.view = nil
            state = .authenticated
            if rev2 { try await out.sendLine("* OK [CLOSED] Mailbox closed") }
        }
        try await store.deleteMailbox(account: account, name: name, logger: logger)
        await mailboxesChangedHere(.deleted(name))
        return Completion("DELETE completed")
    }

    /// RFC 9051 §6.3.6: renaming onto an existing name fails; renaming INBOX moves its messages.
    func handleRename(from: MailboxArgument, to: MailboxArgument) async throws -> Completion {
        let account = try requireAccount
        let source = try mailboxName(from)
        let target = try mailboxName(to)
        if target.isInbox { throw IMAPError.no(.alreadyExists, "INBOX already exists") }
        if let problem = target.creationProblem { throw IMAPError.no(.cannot, problem) }
        if source == target { throw IMAPError.no(.alreadyExists, "Mailbox already exists") }
        if target.isDescendant(of: source) { throw IMAPError.no(.cannot, "Can't rename a mailbox under itself") }
        try await store.renameMailbox(account: account, from: source, to: target, logger: logger)
        await mailboxesChangedHere(.renamed(source, target))
        return Completion("RENAME completed")
    }

    /// RFC 9051 §6.3.7–§6.3.8: subscriptions are names; a name need not exist (Dovecot allows it too).
    func handleSubscribe(_ argument: MailboxArgument, subscribe: Bool) async throws -> Completion {
        let account = try requireAccount
        let name = try mailboxName(argument)
        if subscribe, let problem = name.creationProblem { throw IMAPError.no(.cannot, problem) }
        try await store.setSubscribed(account: account, name: name, subscribed: subscribe, logger: logger)
        await mailboxesChangedHere(.subscription(name))
        return Completion(subscribe ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed")
    }

    /// RFC 9051 §6.3.11.
    func handleStatus(_ argument: MailboxArgument, items: [StatusAttribute]) async throws -> Completion {
        let account = try requireAccount
        let name = try mailboxName(argument)
        if items.contains(.highestModSeq) { enableCondstore() }
        let status = try await store.status(account: account, name: name, logger: logger)
        try await sendStatus(name, status, items)
        return Completion("STATUS completed")
    }

    static func statusItems(_ status: MailboxStatus, items: [StatusAttribute]) -> String {
        var seen = Set<StatusAttribute>()
        var parts: [String] = []
        for item in items where seen.insert(item).inserted {
            switch item {
            case .messages: parts.append("MESSAGES \(status.messages)")
            case .uidNext: parts.append("UIDNEXT \(status.uidNext)")
            case .uidValidity: parts.append("UIDVALIDITY \(status.uidValidity)")
            case .unseen: parts.append("UNSEEN \(status.unseen)")
            case .deleted: parts.append("DELETED \(status.deleted)")
            case .size: parts.append("SIZE \(status.size)")
            case .recent: parts.append("RECENT \(status.recent)")
            case .highestModSeq: parts.append("HIGHESTMODSEQ \(status.highestModSeq)")
            case .mailboxID: if let id = status.id { parts.append("MAILBOXID (\(ObjectID.mailbox(id)))") }
            }
        }
        return parts.joined(separator: " ")
    }
}
