import Logging

/// COPY, MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8; RFC 4315 COPYUID; RFC 6851).
extension Session {
    func handleCopy(_ selector: MessageSelector, to argument: MailboxArgument, move: Bool) async throws -> Completion {
        let account = try requireAccount
        let current = try requireView
        let destination = try mailboxName(argument)
        let uids = try current.resolve(selector, saved: savedSearch)
        if move && current.readOnly { throw IMAPError.no(.cannot, "Mailbox is read-only") }
        let verb = move ? "MOVE" : "COPY"
        guard !uids.isEmpty else { return Completion("\(verb) completed") }

        let store = self.store
        let logger = self.logger
        let result = try await withTryCreate(destination) { () async throws(StoreError) in
            move
                ? try await store.move(
                    account: account, from: current.mailbox, uids: uids, to: destination, logger: logger)
                : try await store.copy(
                    account: account, from: current.mailbox, uids: uids, to: destination, logger: logger)
        }
        if move || destination == current.name { markStale() }
        if destination == current.name { messagesAddedHere(result.destinationUIDs) }
        guard !result.sourceUIDs.isEmpty else { return Completion("\(verb) completed") }
        let code = ResponseCode.copyUID(
            result.uidValidity, UIDRanges(result.sourceUIDs), UIDRanges(result.destinationUIDs))
        if move {
            // RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
            try await out.sendLine("* OK [\(code.wire)] Moved UIDs.")
            return Completion("MOVE completed")
        }
        return Completion("COPY completed", code: code)
    }

    /// A missing destination mailbox answers `NO [TRYCREATE]` (RFC 9051 §6.3.12, §6.4.7): the client may create
    /// it and retry.
    func withTryCreate<T>(_ name: MailboxName, _ operation: () async throws(StoreError) -> T) async throws -> T {
        do {
            return try await operation()
        } catch {
            if error == .mailboxNotFound {
                throw IMAPError.no(.tryCreate, "Mailbox doesn't exist: \(name.name.prefix(200))")
            }
            throw error
        }
    }
}
