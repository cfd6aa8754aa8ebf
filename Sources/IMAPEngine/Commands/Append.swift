import Foundation
import Logging

/// APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID, RFC 3516 literal8, RFC 3502 MULTIAPPEND).
extension Session {
    func handleAppend(_ original: AppendCommand) async throws -> Completion {
        var append = original
        var held: MessageBudget.Reservation?
        defer { held?.release() }
        if append.catenate != nil || append.more.contains(where: { $0.catenate != nil }) {
            // RFC 4469 §5: a missing destination is TRYCREATE, whatever the URLs say.
            let account = try requireAccount
            let name = try mailboxName(append.mailbox)
            _ = try await withTryCreate(name) { () async throws(StoreError) in
                try await store.status(account: account, name: name, logger: logger)
            }
            (append, held) = try await catenated(append)
        }
        if !append.more.isEmpty { return try await handleMultiAppend(append) }
        let account = try requireAccount
        let name = try mailboxName(append.mailbox)
        let flags = try storableFlags(append.flags)
        guard !append.message.isEmpty else { throw IMAPError.no(.cannot, "Can't save a zero byte message") }
        let date =
            append.date
            ?? InternalDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), zoneMinutes: 0)
        let parsed = ParsedMessage(parsing: append.message, binary: append.isBinary)
        // An IMAP4rev1 session appending to its read-write selected mailbox takes the message's \Recent in the same
        // write: the other sessions then need not try (each try waits for the mailbox row lock).
        let claim = view.map { $0.name == name && !$0.readOnly } == true && !rev2
        let result = try await withTryCreate(name) { () async throws(StoreError) in
            try await store.append(
                account: account, mailbox: name, message: parsed, flags: flags, date: date, claimRecent: claim,
                logger: logger)
        }
        if let view, view.name == name {
            wroteSelected(Self.ownAppend(result, flags: flags))
            messagesAddedHere([result.uid])
            if let recent = result.recent {
                // The claimed UIDs must be in the view to be marked: what the sync point would do, done now.
                do {
                    try await pullChanges()
                    self.view?.markRecent(recent)
                } catch let error as StoreError where !Task.isCancelled {
                    // The message is stored: a NO now would say it was not. Its \Recent is lost with the view.
                    markStale()
                    logger.warning("changes not read after APPEND", metadata: ["error": "\(error)"])
                }
            }
        }
        return Completion("APPEND completed", code: .appendUID(result.uidValidity, result.uid))
    }

    /// What this APPEND to the selected mailbox changed, as the change of its modseq (`FeedBacklog`); nil from a store
    /// that gives no modseq.
    static func ownAppend(_ result: AppendResult, flags: MessageFlags) -> MailboxDelta? {
        guard let modSeq = result.modSeq else { return nil }
        var delta = MailboxDelta(
            changed: [MailboxDelta.FlagChange(uid: result.uid, flags: flags, modSeq: modSeq)], highestModSeq: modSeq)
        // Claimed with the write: nothing left to claim up to the message.
        if result.recent != nil { delta.firstUnclaimedUID = UID(result.uid.rawValue &+ 1) }
        return delta
    }

    /// RFC 3502: every message is checked first, then all are stored in one transaction or none is.
    func handleMultiAppend(_ append: AppendCommand) async throws -> Completion {
        let account = try requireAccount
        let name = try mailboxName(append.mailbox)
        let now = InternalDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), zoneMinutes: 0)
        var messages: [(ParsedMessage, MessageFlags, InternalDate)] = []
        for message in [append] + append.more {
            let flags = try storableFlags(message.flags)
            guard !message.message.isEmpty else { throw IMAPError.no(.cannot, "Can't save a zero byte message") }
            messages.append(
                (ParsedMessage(parsing: message.message, binary: message.isBinary), flags, message.date ?? now))
        }
        let prepared = messages
        let results = try await withTryCreate(name) { () async throws(StoreError) in
            try await store.appendAll(account: account, mailbox: name, messages: prepared, logger: logger)
        }
        if let view, view.name == name {
            markStale()
            messagesAddedHere(results.map(\.uid))
        }
        guard let validity = results.first?.uidValidity else { return Completion("APPEND completed") }
        return Completion("APPEND completed", code: .appendUIDs(validity, UIDRanges(results.map(\.uid))))
    }
}
