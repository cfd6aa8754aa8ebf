import Foundation
import GRDB
import Glibc
import IMAPEngine
import Logging
import Synchronization

/// The SQLite backend (`StoreBackend`): one database file for one serving process (docs/storage.md). Tools
/// (`mailadmin`, `mailhost deliver`) may open the file beside the server; their writes reach the server's sessions
/// through the `feed` table, which the server reads.
public struct SQLiteBackend: StoreBackend {
    public let path: String
    let store: SQLiteMailStore
    let logger: Logger
    /// The serving lock's file descriptor, held for the life of the process (never closed: closing drops the lock).
    let lock: Int32?

    public enum OpenError: Error, CustomStringConvertible {
        case inUse(path: String, holder: String)
        case cannotOpen(path: String, reason: String)
        public var description: String {
            switch self {
            case .inUse(let path, let holder):
                "\(path) is already served by another mailhost (\(holder)): one SQLite file serves one process; "
                    + "use PostgreSQL (postgres://…) for several instances"
            case .cannotOpen(let path, let reason): "cannot open the SQLite store \(path): \(reason)"
            }
        }
    }

    /// Opens (creating) the database file. `serving`: this process serves IMAP from it, and no other may at the same
    /// time (an exclusive lock on `PATH.serving`, released when the process ends, however it ends).
    public init(path: String, serving: Bool, operationTimeout: Duration, logger: Logger) throws {
        self.path = path
        self.logger = logger
        var lock: Int32?
        if serving { lock = try Self.takeServingLock(path) }
        self.lock = lock
        do {
            store = try SQLiteMailStore(path: path, busyTimeout: operationTimeout)
        } catch {
            if let lock { close(lock) }
            throw OpenError.cannotOpen(path: path, reason: Self.describe(error))
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return String(describing: error)
    }

    /// `flock` on `PATH.serving`; the file says which process holds it.
    static func takeServingLock(_ path: String) throws -> Int32 {
        let lockPath = path + ".serving"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw OpenError.cannotOpen(path: path, reason: "\(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = read(fd, &buffer, buffer.count)
            close(fd)
            let pid = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw OpenError.inUse(path: path, holder: pid.isEmpty ? "another process" : "pid \(pid)")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        return fd
    }

    public var mail: any DeliveryStore { store }
    public var credentials: any CredentialStore { store }
    public var administration: any StoreAdministration { SQLiteAdministration(store: store) }
    public var schema: any StoreSchema { SQLiteSchemaStore(store: store) }
    public var maintenance: any StoreMaintenance { store }
    public var transfer: any StoreTransfer { store }

    /// With a `feed`: reads the `feed` table after every commit of this process and every quarter second (other
    /// processes' writes), and publishes what it finds, until cancelled. Without one there is nothing to run.
    public func run(feed: ChangeFeed?) async {
        guard let feed else {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
            return
        }
        let (store, logger) = (self.store, self.logger)
        await withDiscardingTaskGroup { group in
            group.addTask { await SQLiteChangeFeed(store: store, feed: feed, logger: logger).run() }
            group.addTask { await SQLiteIndexer(store: store, logger: logger).run() }
        }
    }
}

/// Moves search text from `contents_text` into the trigram index (`contents_search`) in the serving process, in
/// small write transactions when writes pause, so that an APPEND never pays for indexing (2.5-3.5 ms for a 4 KB
/// body) and never waits long behind it. SEARCH reads both tables, so results never depend on the indexer's
/// progress; only their speed does. A backlog past `forcedBacklog` is indexed even while writes go on.
struct SQLiteIndexer: Sendable {
    let store: SQLiteMailStore
    let logger: Logger
    static let batch = 16
    static let quiet: Duration = .milliseconds(100)
    static let forcedBacklog = 5000

    func run() async {
        var backlog = 0
        while !Task.isCancelled {
            let sinceWrite = ContinuousClock.now - store.lastWrite.withLock { $0 }
            if backlog == 0 || (sinceWrite < Self.quiet && backlog < Self.forcedBacklog) {
                try? await Task.sleep(for: backlog == 0 ? .milliseconds(250) : Self.quiet)
                if backlog == 0 { backlog = (try? await pending()) ?? 0 }
                continue
            }
            do {
                backlog = try await indexBatch()
            } catch {
                logger.warning("search indexing failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(5))
            }
        }
    }

    func pending() async throws -> Int {
        try await store.pool.read { db in try Int.fetchOne(db.cached("SELECT count(*) FROM contents_text")) ?? 0 }
    }

    /// Indexes up to `batch` contents; returns how many are left.
    func indexBatch() async throws -> Int {
        try await store.pool.write { db in
            let ids = try Int64.fetchAll(
                db.cached("SELECT content_id FROM contents_text ORDER BY content_id LIMIT ?"), arguments: [Self.batch])
            if !ids.isEmpty {
                // Integers only: the list is SQL text of numbers.
                let list = ids.map(String.init).joined(separator: ",")
                try db.execute(
                    sql: """
                        INSERT INTO contents_search (rowid, search_from, search_to, search_cc, search_bcc,
                            search_subject, search_headers, search_body)
                        SELECT content_id, search_from, search_to, search_cc, search_bcc, search_subject,
                            search_headers, search_body
                        FROM contents_text WHERE content_id IN (\(list))
                        """)
                try db.execute(sql: "DELETE FROM contents_text WHERE content_id IN (\(list))")
            }
            return try Int.fetchOne(db.cached("SELECT count(*) FROM contents_text")) ?? 0
        }
    }
}

/// Publishes the `feed` table's rows to this process's sessions (the SQLite side of DESIGN.md §3's change feed).
/// Rows are written in the transaction of their change, so a session never hears of a change before it can read it.
///
/// Row forms (`event`): `MAILBOX:MODSEQ` (a change; modseq `Int64.max` for a deleted mailbox), `list` (mailboxes or
/// subscriptions), `meta:OWNER:NAME NAME…` (METADATA of a mailbox, owner 0: the server's), `disabled`.
struct SQLiteChangeFeed: Sendable {
    let store: SQLiteMailStore
    let feed: ChangeFeed
    let logger: Logger
    static let pollInterval: Duration = .milliseconds(250)

    func run() async {
        let wake = store.wake
        await withDiscardingTaskGroup { group in
            // Other processes' commits do not wake this one: poll.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.pollInterval)
                    wake.signal()
                }
            }
            group.addTask {
                var last: Int64? = nil
                var failing = false
                while !Task.isCancelled {
                    do {
                        last = try await publish(after: last)
                        if failing {
                            // Rows may have been missed meanwhile.
                            feed.publishResyncToAll()
                            failing = false
                        }
                    } catch {
                        if !failing { logger.warning("change feed read failed", metadata: ["error": "\(error)"]) }
                        failing = true
                    }
                    await wake.wait()
                }
            }
        }
    }

    /// Publishes the rows after `last` (nil: none, only find where the table ends); returns the last row read.
    func publish(after last: Int64?) async throws -> Int64 {
        guard let last else {
            return try await store.pool.read { db in try Int64.fetchOne(db.cached("SELECT max(seq) FROM feed")) ?? 0 }
        }
        let rows = try await store.pool.read { db in
            try Row.fetchAll(
                db.cached("SELECT seq, account_id, event FROM feed WHERE seq > ? ORDER BY seq LIMIT 10000"),
                arguments: [last]
            ).map { (seq: $0[0] as Int64, account: $0[1] as Int64, event: $0[2] as String) }
        }
        for row in rows {
            guard let event = Self.parse(row.event) else {
                logger.warning("malformed change row", metadata: ["seq": "\(row.seq)"])
                continue
            }
            feed.publish(account: AccountID(rawValue: row.account), event: event)
        }
        return rows.last?.seq ?? last
    }

    static func parse(_ event: String) -> ChangeEvent? {
        if event == "list" { return .mailboxesChanged }
        if event == "disabled" { return .accountDisabled }
        let parts = event.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "meta", let owner = Int64(parts[1]) {
            return .metadataChanged(
                owner == 0 ? nil : MailboxID(rawValue: owner), parts[2].split(separator: " ").map(String.init))
        }
        guard parts.count == 2, let mailbox = Int64(parts[0]), let modSeq = Int64(parts[1]) else { return nil }
        return .mailboxChanged(MailboxID(rawValue: mailbox), ModSeq(modSeq))
    }
}

extension FeedWake {
    /// Waits for the next `signal` (or returns at once when one came since the last wait, or when cancelled).
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if !park(continuation) { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }
}

/// The schema of a SQLite store file.
struct SQLiteSchemaStore: StoreSchema {
    let store: SQLiteMailStore

    var latestVersion: Int { SQLiteSchema.latestVersion }

    func currentVersion(logger: Logger) async throws -> Int? {
        try await store.pool.read { db in try SQLiteSchema.currentVersion(db) }
    }

    func migrate(logger: Logger) async throws -> [Int] {
        try await store.pool.writeWithoutTransaction { db in try SQLiteSchema.migrate(db) }
    }

    /// Also applies pending migrations to a file of an older version: one process serves a SQLite file, so no
    /// instance of the older version can still be running on it (a newer file is left alone).
    func prepare(logger: Logger) async throws -> (found: SchemaState, applied: [Int]) {
        try await store.pool.writeWithoutTransaction { db in
            let found = try SQLiteSchema.state(db)
            switch found {
            case .empty, .behind: return (found, try SQLiteSchema.migrate(db))
            case .current, .ahead: return (found, [])
            }
        }
    }
}

extension SQLiteMailStore: StoreMaintenance {
    /// As PostgreSQL's: content of tombstones older than `retention` is let go, tombstones older than
    /// `tombstoneRetention` go (raising their mailbox's floor), then content no message or tombstone references and
    /// older than ten minutes; feed rows older than an hour (every process has read them by then).
    public func collectGarbage(retention: Duration, tombstoneRetention: Duration, logger: Logger)
        async throws(StoreError) -> Int
    {
        let seconds = Int64(retention.components.seconds)
        let tombstoneSeconds = max(seconds, Int64(tombstoneRetention.components.seconds))
        return try await write(logger) { db in
            let now = Self.now
            try db.cached("UPDATE expunged SET content_id = NULL WHERE content_id IS NOT NULL AND expunged_at < ?")
                .execute(arguments: [now - seconds])
            try db.cached(
                """
                UPDATE mailboxes SET vanished_floor = max(vanished_floor, (
                    SELECT max(modseq) FROM expunged e
                    WHERE e.mailbox_id = mailboxes.mailbox_id AND e.expunged_at < ?))
                WHERE mailbox_id IN (SELECT mailbox_id FROM expunged WHERE expunged_at < ?)
                """
            ).execute(arguments: [now - tombstoneSeconds, now - tombstoneSeconds])
            try db.cached("DELETE FROM expunged WHERE expunged_at < ?").execute(arguments: [now - tombstoneSeconds])
            try db.cached(
                """
                DELETE FROM contents WHERE created_at < ?
                    AND NOT EXISTS (SELECT 1 FROM messages m
                                    WHERE m.account_id = contents.account_id AND m.content_id = contents.content_id)
                    AND NOT EXISTS (SELECT 1 FROM expunged e
                                    WHERE e.account_id = contents.account_id AND e.content_id = contents.content_id)
                """
            ).execute(arguments: [now - 600])
            let removed = db.changesCount
            try db.cached("DELETE FROM feed WHERE created_at < ?").execute(arguments: [now - 3600])
            return removed
        }
    }
}

/// `StoreAdministration` over a SQLite store.
struct SQLiteAdministration: StoreAdministration {
    let store: SQLiteMailStore

    private func read<T: Sendable>(_ logger: Logger, _ body: @escaping @Sendable (Database) throws -> T)
        async throws(AdministrationError) -> T
    {
        do {
            return try await store.read(logger, body)
        } catch {
            throw .store(error)
        }
    }

    private func write<T: Sendable>(_ logger: Logger, _ body: @escaping @Sendable (Database) throws -> T)
        async throws(AdministrationError) -> T
    {
        do {
            return try await store.write(logger, body)
        } catch {
            throw .store(error)
        }
    }

    func accounts(login: String?, logger: Logger) async throws(AdministrationError) -> [AccountSummary] {
        let result = try await read(logger) { db in
            try Row.fetchAll(
                db.cached(
                    """
                    SELECT a.login, a.disabled, strftime('%Y-%m-%dT%H:%M:%SZ', a.created_at, 'unixepoch'),
                        (SELECT count(*) FROM mailboxes b WHERE b.account_id = a.account_id),
                        a.used_messages, a.used_bytes, a.quota_bytes, a.quota_messages, a.password_hash IS NOT NULL
                    FROM accounts a WHERE ? IS NULL OR a.login = ? ORDER BY a.login
                    """), arguments: [login, login]
            ).map { row in
                AccountSummary(
                    login: row[0], disabled: row[1], created: row[2], mailboxes: row[3], messages: row[4],
                    bytes: row[5], quotaBytes: row[6], quotaMessages: row[7], hasPassword: row[8])
            }
        }
        if let login, result.isEmpty { throw .noSuchUser(login) }
        return result
    }

    func defaultMailboxes(logger: Logger) async throws(AdministrationError) -> [DefaultMailbox] {
        try await read(logger) { db in
            try Row.fetchAll(db.cached("SELECT name, special_use FROM default_mailboxes ORDER BY position")).map {
                DefaultMailbox(name: $0[0], specialUse: $0[1])
            }
        }
    }

    func setDefaultMailboxes(_ mailboxes: [DefaultMailbox], logger: Logger) async throws(AdministrationError) {
        try await write(logger) { db in
            try db.cached("DELETE FROM default_mailboxes").execute()
            for (position, mailbox) in mailboxes.enumerated() {
                try db.cached("INSERT INTO default_mailboxes (position, name, special_use) VALUES (?, ?, ?)").execute(
                    arguments: [position + 1, mailbox.name, mailbox.specialUse])
            }
        }
    }

    func addAccount(login: String, passwordHash: String?, quotaBytes: Int64?, quotaMessages: Int64?, logger: Logger)
        async throws(AdministrationError)
    {
        let created = try await write(logger) { db in
            try SQLiteMailStore.insertAccount(
                db, login: login, passwordHash: passwordHash, quotaBytes: quotaBytes, quotaMessages: quotaMessages)
                != nil
        }
        if !created { throw .userExists(login) }
    }

    func accountID(_ login: String, logger: Logger) async throws(AdministrationError) -> AccountID {
        guard let found = try await read(logger, { db in try SQLiteMailStore.accountRow(db, login: login) }) else {
            throw .noSuchUser(login)
        }
        return AccountID(rawValue: found.id)
    }

    /// Runs `update` (which changes at most the account's row) and fails with `.noSuchUser` when nothing changed.
    private func updateOne(
        _ login: String, _ logger: Logger, _ update: @escaping @Sendable (Database) throws -> Void
    ) async throws(AdministrationError) {
        let changed = try await write(logger) { db in
            try update(db)
            return db.changesCount > 0
        }
        if !changed { throw .noSuchUser(login) }
    }

    func setPassword(login: String, hash: String, logger: Logger) async throws(AdministrationError) {
        try await updateOne(login, logger) { db in
            try db.cached("UPDATE accounts SET password_hash = ? WHERE login = ?").execute(arguments: [hash, login])
        }
    }

    func setDisabled(login: String, disabled: Bool, logger: Logger) async throws(AdministrationError) {
        let found = try await write(logger) { db -> Bool in
            guard let account = try SQLiteMailStore.accountRow(db, login: login) else { return false }
            try db.cached("UPDATE accounts SET disabled = ? WHERE account_id = ?").execute(arguments: [
                disabled, account.id,
            ])
            // Disabling closes the account's open sessions: the serving process says BYE.
            if disabled { try SQLiteMailStore.announce(db, account: AccountID(rawValue: account.id), "disabled") }
            return true
        }
        if !found { throw .noSuchUser(login) }
    }

    func rename(login: String, to newLogin: String, logger: Logger) async throws(AdministrationError) {
        let outcome = try await write(logger) { db -> Int in
            guard try SQLiteMailStore.accountRow(db, login: login) != nil else { return 0 }
            guard try SQLiteMailStore.accountRow(db, login: newLogin) == nil else { return -1 }
            try db.cached("UPDATE accounts SET login = ? WHERE login = ?").execute(arguments: [newLogin, login])
            return 1
        }
        if outcome == 0 { throw .noSuchUser(login) }
        if outcome < 0 { throw .userExists(newLogin) }
    }

    func delete(login: String, logger: Logger) async throws(AdministrationError) {
        let found = try await write(logger) { db -> Bool in
            guard let account = try SQLiteMailStore.accountRow(db, login: login) else { return false }
            try SQLiteMailStore.deleteAccount(db, id: account.id)
            try SQLiteMailStore.announce(db, account: AccountID(rawValue: account.id), "disabled")
            return true
        }
        if !found { throw .noSuchUser(login) }
    }

    func setQuota(login: String, bytes: Int64?, messages: Int64?, logger: Logger) async throws(AdministrationError) {
        try await updateOne(login, logger) { db in
            try db.cached("UPDATE accounts SET quota_bytes = ?, quota_messages = ? WHERE login = ?").execute(
                arguments: [bytes, messages, login])
        }
    }

    func statistics(logger: Logger) async throws(AdministrationError) -> StoreStatistics {
        try await read(logger) { db in
            guard
                let row = try Row.fetchOne(
                    db.cached(
                        """
                        SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM mailboxes),
                            (SELECT coalesce(sum(used_messages), 0) FROM accounts),
                            (SELECT coalesce(sum(used_bytes), 0) FROM accounts),
                            (SELECT count(*) FROM contents), (SELECT coalesce(sum(size), 0) FROM contents)
                        """))
            else { throw StoreError.internal("no statistics row") }
            return StoreStatistics(
                accounts: row[0], mailboxes: row[1], messages: row[2], bytes: row[3], storedContents: row[4],
                storedBytes: row[5])
        }
    }

    func backfillKeys(batch: Int, logger: Logger) async throws(AdministrationError) -> (done: Int, left: Int) {
        try await write(logger) { db in
            let pending = try Row.fetchAll(
                db.cached("SELECT content_id, body FROM contents WHERE keys_version IS NULL LIMIT ?"),
                arguments: [batch])
            for row in pending {
                let body: Data = row[1]
                let message = ParsedMessage(parsing: Array(body))
                let sort = message.sortKeys
                try db.cached(
                    """
                    UPDATE contents SET sort_subject = ?, sort_from = ?, sort_to = ?, sort_cc = ?,
                        sort_display_from = ?, sort_display_to = ?, sent_time = ?, thread_id = ?,
                        thread_refs = ?, thread_reply = ?, preview = ?, keys_version = ?
                    WHERE content_id = ?
                    """
                ).execute(arguments: [
                    sort.subject, sort.from, sort.to, sort.cc, sort.displayFrom, sort.displayTo, sort.sentTime,
                    sort.messageID, sort.references.joined(separator: " "), sort.isReplyOrForward,
                    message.preview, ContentColumns.keysVersion, row[0] as Int64,
                ])
            }
            let left = try Int.fetchOne(db.cached("SELECT count(*) FROM contents WHERE keys_version IS NULL")) ?? 0
            return (pending.count, left)
        }
    }
}
