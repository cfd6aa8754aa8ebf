import ArgumentParser
import Foundation
import IMAPEngine
import Logging
import Storage

/// `mailadmin migrate --from SETTING --to SETTING`: copies every account from one store to another exactly (issue #12:
/// outgrowing one box, SQLite to PostgreSQL), so that clients keep their caches.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy every account from one store to another (e.g. SQLite to PostgreSQL), exactly.",
        discussion: """
            Every mailbox, message, flag, UID, UIDVALIDITY, modseq, tombstone, subscription, METADATA entry, \
            password and quota is copied with its ids, so IMAP clients (QRESYNC, OBJECTID) keep their caches. \
            Each account is copied in its own transaction and compared with the source afterwards. Interrupted, \
            run it again: accounts already copied are verified and skipped. A SQLite source must not be served \
            while it runs (stop mailhost; the command refuses otherwise, and keeps a server from starting on it). \
            The target's schema is created when it is empty.
            """)

    @Option(help: "The store to copy from (sqlite:PATH, postgres://…).") var from: String
    @Option(help: "The store to copy to.") var to: String
    @ArgumentParser.Flag(help: "Only compare the accounts of both stores; copy nothing.") var verifyOnly = false

    func run() async throws {
        let logger = adminLogger
        let source: any StoreBackend
        let target: any StoreBackend
        do {
            // Serving: nothing may change the source meanwhile (a SQLite file refuses a second serving process).
            source = try Storage.open(
                from, options: Storage.Options(operationTimeout: .seconds(120), urlTimeoutWins: true, serving: true),
                logger: logger)
            try Storage.createDirectory(of: to)
            target = try Storage.open(
                to, options: Storage.Options(operationTimeout: .seconds(120), urlTimeoutWins: true), logger: logger)
        } catch {
            throw AdminFailure(String(describing: error))
        }
        do {
            try await requireSchema(source.schema)
            let (found, applied) = try await target.schema.prepare(logger: logger)
            if found == .empty { printError("created the schema of the target (versions \(applied))") }
            try await requireSchema(target.schema)
        } catch let error as AdminFailure {
            throw error
        } catch {
            throw AdminFailure(String(describing: error))
        }
        let verifyOnly = self.verifyOnly
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await source.run(feed: nil) }
            group.addTask { await target.run(feed: nil) }
            defer { group.cancelAll() }
            do {
                try await Self.copy(from: source, to: target, verifyOnly: verifyOnly, logger: logger)
            } catch let error as StoreError {
                throw AdminFailure(error.description)
            } catch let error as AdministrationError {
                throw AdminFailure(error.description)
            }
        }
    }

    static func copy(from source: any StoreBackend, to target: any StoreBackend, verifyOnly: Bool, logger: Logger)
        async throws
    {
        let logins = try await source.transfer.transferLogins(logger: logger)
        if !verifyOnly {
            // The mailboxes new accounts get are the store's setting: the target takes the source's.
            let defaults = try await source.administration.defaultMailboxes(logger: logger)
            try await target.administration.setDefaultMailboxes(defaults, logger: logger)
        }
        var copied = 0
        var skipped = 0
        let started = ContinuousClock.now
        for (index, login) in logins.enumerated() {
            let progress = "[\(index + 1)/\(logins.count)] \(login):"
            guard let account = try await source.transfer.exportAccount(login: login, logger: logger) else {
                continue  // deleted meanwhile
            }
            if let existing = try await target.transfer.exportAccount(login: login, logger: logger) {
                guard existing == account else {
                    throw AdminFailure(
                        "\(progress) the target has this account already, and it differs from the source "
                            + "(\(Self.difference(account, existing))); delete it there first")
                }
                skipped += 1
                print("\(progress) already copied, verified")
                continue
            }
            if verifyOnly { throw AdminFailure("\(progress) missing at the target") }
            let bytes = account.contents.reduce(0) { $0 + $1.size }
            let failure: StoreError?
            do {
                try await target.transfer.importAccount(
                    account,
                    bodies: { ids in try await source.transfer.contentBodies(login: login, ids: ids, logger: logger) },
                    logger: logger)
                failure = nil
            } catch {
                failure = error
            }
            if let failure {
                guard failure == .alreadyExists else { throw failure }
                throw AdminFailure(
                    "\(progress) its mailbox or message ids are taken at the target by another account: "
                        + "migrate into an empty store")
            }
            guard let written = try await target.transfer.exportAccount(login: login, logger: logger),
                written == account
            else {
                let written = try await target.transfer.exportAccount(login: login, logger: logger)
                throw AdminFailure(
                    "\(progress) the copy differs from the source after writing it"
                        + (written.map { " (\(Self.difference(account, $0)))" } ?? ""))
            }
            copied += 1
            print(
                "\(progress) \(account.messages.count) messages, \(account.mailboxes.count) mailboxes, "
                    + "\(QuotaSize.format(bytes)) copied and verified")
        }
        let seconds = Double((ContinuousClock.now - started).components.seconds)
        print(
            "\(copied) accounts copied, \(skipped) already there; \(logins.count) verified "
                + "(\(String(format: "%.1f", seconds)) s)")
    }

    /// What differs between two exports, in words (the first difference of each kind).
    static func difference(_ a: AccountExport, _ b: AccountExport) -> String {
        var parts: [String] = []
        if a.mailboxes != b.mailboxes { parts.append("mailboxes") }
        if a.messages != b.messages { parts.append("messages (\(a.messages.count) vs \(b.messages.count))") }
        if a.tombstones != b.tombstones { parts.append("tombstones") }
        if a.contents != b.contents { parts.append("contents (\(a.contents.count) vs \(b.contents.count))") }
        if a.subscriptions != b.subscriptions { parts.append("subscriptions") }
        if a.metadata != b.metadata { parts.append("metadata") }
        if a.passwordHash != b.passwordHash || a.disabled != b.disabled || a.quotaBytes != b.quotaBytes
            || a.quotaMessages != b.quotaMessages || a.createdAt != b.createdAt
            || a.lastUIDValidity != b.lastUIDValidity
        {
            parts.append("account settings")
        }
        return parts.isEmpty ? "nothing visible" : parts.joined(separator: ", ")
    }
}
