import Logging

/// GETQUOTA and GETQUOTAROOT (RFC 9208). Every account has one quota root, "", covering all its mailboxes;
/// STORAGE is counted in units of 1024 octets (RFC 9208 §5.1), MESSAGE in messages.
extension Session {
    func handleGetQuotaRoot(_ argument: MailboxArgument) async throws -> Completion {
        let account = try requireAccount
        let name = try mailboxName(argument)
        // The mailbox must exist (RFC 9208 §4.2).
        _ = try await store.status(account: account, name: name, logger: logger)
        let usage = try await store.quota(account: account, logger: logger)
        var w = responseWriter()
        w.raw("* QUOTAROOT ")
        w.mailbox(name)
        if let resources = Self.quotaResources(usage) {
            w.line(" \"\"")
            w.line("* QUOTA \"\" (\(resources))")
        } else {
            w.crlf()  // no quota root applies
        }
        try await out.send(w)
        return Completion("GETQUOTAROOT completed")
    }

    func handleGetQuota(root: String) async throws -> Completion {
        let account = try requireAccount
        guard root.isEmpty else { throw IMAPError.no(.nonexistent, "No such quota root") }
        let usage = try await store.quota(account: account, logger: logger)
        guard let resources = Self.quotaResources(usage) else {
            throw IMAPError.no(.nonexistent, "No quota limits are set")
        }
        try await out.sendLine("* QUOTA \"\" (\(resources))")
        return Completion("GETQUOTA completed")
    }

    /// `STORAGE used limit MESSAGE used limit`, only the resources that have a limit; nil when none has.
    static func quotaResources(_ usage: QuotaUsage) -> String? {
        var parts: [String] = []
        if let limit = usage.byteLimit { parts.append("STORAGE \(usage.usedBytes / 1024) \(limit / 1024)") }
        if let limit = usage.messageLimit { parts.append("MESSAGE \(usage.usedMessages) \(limit)") }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }
}
