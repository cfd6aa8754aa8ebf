/// GETMETADATA and SETMETADATA (RFC 5464): entries on mailboxes and on the server. MailHost has no shared mailboxes,
/// so "/shared" entries are the account's as "/private" ones are (both are kept; neither is seen by other users).
extension Session {
    /// The largest value one entry may have: room for any comment or client setting, and 1,000 of them per account
    /// stay under 16 MiB.
    var maxMetadataValue: Int { 16 * 1024 }
    /// Entries per account, all mailboxes and the server together.
    static let maxMetadataEntries = 1000

    private func metadataOwner(_ argument: MailboxArgument) throws -> MailboxName? {
        argument.wire.isEmpty ? nil : try mailboxName(argument)
    }

    func handleGetMetadata(_ argument: MailboxArgument, maxSize: UInt32?, depth: MetadataDepth, entries: [String])
        async throws -> Completion
    {
        let account = try requireAccount
        let owner = try metadataOwner(argument)
        let found: [MetadataEntry]
        do {
            found = try await store.metadata(
                account: account, mailbox: owner, entries: entries, depth: depth, logger: logger)
        } catch {
            if error == .mailboxNotFound { throw IMAPError.no(.nonexistent, "Mailbox doesn't exist") }
            throw error
        }
        var shown: [MetadataEntry] = []
        var longest = 0
        for entry in found {
            let size = entry.value?.count ?? 0
            if let maxSize, size > Int(maxSize) {
                longest = max(longest, size)
            } else {
                shown.append(entry)
            }
        }
        // Asked-for entries that do not exist are NIL (the response is required, RFC 5464 §4.2).
        let present = Set(found.map(\.name))
        var seen = Set<String>()
        for name in entries where !present.contains(name) && seen.insert(name).inserted {
            shown.append(MetadataEntry(name: name, value: nil))
        }
        var w = responseWriter()
        w.raw("* METADATA ")
        if let owner { w.mailbox(owner) } else { w.raw("\"\"") }
        w.raw(" (")
        for (i, entry) in shown.enumerated() {
            if i > 0 { w.raw(" ") }
            w.raw(entry.name + " ")
            if let value = entry.value {
                if value.contains(0) {
                    w.raw("~{\(value.count)}\r\n")
                    w.raw(value)
                } else {
                    w.string(value)
                }
            } else {
                w.raw("NIL")
            }
            if w.count >= ResponseSink.batchSize {
                try await out.send(w)
                w.removeAll()
            }
        }
        w.line(")")
        try await out.send(w)
        if longest > 0 { return Completion("GETMETADATA completed", code: .metadata("LONGENTRIES \(longest)")) }
        return Completion("GETMETADATA completed")
    }

    func handleSetMetadata(_ argument: MailboxArgument, _ entries: [MetadataEntry]) async throws -> Completion {
        let account = try requireAccount
        let owner = try metadataOwner(argument)
        if entries.contains(where: { ($0.value?.count ?? 0) > maxMetadataValue }) {
            throw IMAPError.no(.metadata("MAXSIZE \(maxMetadataValue)"), "Value too large")
        }
        let stored: Bool
        do {
            stored = try await store.setMetadata(
                account: account, mailbox: owner, entries: entries, maxEntries: Self.maxMetadataEntries,
                logger: logger)
        } catch {
            if error == .mailboxNotFound { throw IMAPError.no(.nonexistent, "Mailbox doesn't exist") }
            throw error
        }
        guard stored else { throw IMAPError.no(.metadata("TOOMANY"), "Too many entries") }
        metadataChangedHere(mailbox: owner, entries: entries)
        return Completion("SETMETADATA completed")
    }
}
