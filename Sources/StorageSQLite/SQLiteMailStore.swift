import Foundation
import GRDB
import GRDBSQLite
import IMAPEngine
import Logging
import Synchronization

/// `MailStore` in one SQLite file (issue #12, docs/storage.md): WAL, one writer connection and a few readers
/// (GRDB's `DatabasePool`), every statement on GRDB's own threads, never on an event loop. A write is one
/// transaction; its change-feed rows commit with it, and the feed reader is woken after the commit.
public final class SQLiteMailStore: Sendable {
    let pool: DatabasePool
    /// Woken after every commit of this process, so that its feed reader publishes at once.
    let wake: FeedWake
    /// When this process last wrote (the indexer waits for a quiet moment).
    let lastWrite = Mutex(ContinuousClock.now)
    /// The UIDs of mailboxes selected lately (`select`).
    let selected = LRUCache<SelectedUIDs.Key, SelectedUIDs>(capacity: SelectedUIDs.capacity) { _, entry in
        entry.uids.count + 16
    }

    /// Opens (creating) the file. `busyTimeout`: how long a write waits for another process's write (mailadmin
    /// beside the server) before failing with `StoreError.unavailable`.
    public init(path: String, busyTimeout: Duration = .seconds(15)) throws {
        var configuration = Configuration()
        let seconds = Double(busyTimeout.components.seconds) + Double(busyTimeout.components.attoseconds) / 1e18
        configuration.busyMode = .timeout(seconds)
        configuration.maximumReaderCount = 4
        configuration.prepareDatabase { db in
            // NORMAL is durable in WAL mode across process crashes; a power loss may take the last transactions
            // back, never corrupt. FULL makes every commit wait for the disk, as PostgreSQL does by default.
            try db.cached("PRAGMA synchronous = FULL").execute()
            try db.cached("PRAGMA journal_size_limit = 67108864").execute()
            db.add(function: SQLiteMailStore.headerMatch)
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        wake = FeedWake()
    }

    // MARK: running statements

    /// A read in one snapshot (WAL: readers never wait for the writer).
    func read<T: Sendable>(
        _ logger: Logger, name: String = #function, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await pool.read(body)
            StoreLatency.record(name, ok: true, since: started)
            return result
        } catch {
            StoreLatency.record(name, ok: false, since: started)
            throw Self.map(error)
        }
    }

    /// A write in one transaction (IMMEDIATE: it takes the file's write lock first, so it never fails half-way on a
    /// lock another process holds). Committed when this returns; the feed reader is woken then.
    func write<T: Sendable>(
        _ logger: Logger, name: String = #function, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(StoreError) -> T {
        let started = ContinuousClock.now
        do {
            let result = try await pool.write(body)
            lastWrite.withLock { $0 = .now }
            wake.signal()
            StoreLatency.record(name, ok: true, since: started)
            return result
        } catch {
            StoreLatency.record(name, ok: false, since: started)
            throw Self.map(error)
        }
    }

    /// The first column of every row of `sql` as integers, stepped with SQLite's own calls: GRDB's generic
    /// `fetchAll` resolves type metadata per row, a quarter of the time of a 5,000-message SELECT. `cached`: the
    /// statement is kept for the next call (fixed SQL only: the cache has no bound).
    static func integers(_ db: Database, _ sql: String, _ arguments: StatementArguments, cached: Bool = true) throws
        -> [Int64]
    {
        let statement = try cached ? db.cachedStatement(sql: sql) : db.makeStatement(sql: sql)
        try statement.setArguments(arguments)
        let raw = statement.sqliteStatement
        defer { sqlite3_reset(raw) }
        var values: [Int64] = []
        while true {
            let code = sqlite3_step(raw)
            if code == SQLITE_DONE { return values }
            guard code == SQLITE_ROW else {
                throw DatabaseError(
                    resultCode: ResultCode(rawValue: code),
                    message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                    sql: sql)
            }
            values.append(sqlite3_column_int64(raw, 0))
        }
    }

    static func map(_ error: any Error) -> StoreError {
        switch error {
        case let error as StoreError:
            return error
        case is CancellationError:
            return .unavailable("cancelled")
        case let error as DatabaseError:
            switch error.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED: return .unavailable("the database is busy")
            case .SQLITE_FULL: return .unavailable("the disk is full")
            case .SQLITE_IOERR, .SQLITE_CANTOPEN: return .unavailable(error.message ?? "I/O error")
            case .SQLITE_INTERRUPT: return .unavailable("interrupted")
            default: return .internal("\(error.resultCode): \(error.message ?? "")")
            }
        default:
            return .internal(String(reflecting: error))
        }
    }

    /// Appends a change-feed row in the writing transaction (see `SQLiteChangeFeed` for the forms).
    static func announce(_ db: Database, account: AccountID, _ event: String) throws {
        try db.cached("INSERT INTO feed (account_id, event, created_at) VALUES (?, ?, strftime('%s', 'now'))").execute(
            arguments: [account.rawValue, event])
    }

    static func announceChange(_ db: Database, account: AccountID, mailbox: Int64, modSeq: Int64) throws {
        try announce(db, account: account, "\(mailbox):\(modSeq)")
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    // MARK: keywords as JSON arrays

    static func encode(_ keywords: [String]) -> String {
        guard !keywords.isEmpty, let data = try? JSONEncoder().encode(keywords) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String) -> [String] {
        guard text != "[]" else { return [] }
        return (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    static func flags(_ system: Int64, _ keywords: String) -> MessageFlags {
        MessageFlags(system: SystemFlags(rawValue: Int16(truncatingIfNeeded: system)), keywords: decode(keywords))
    }

    // MARK: accounts

    static func accountRow(_ db: Database, login: String) throws -> (id: Int64, disabled: Bool)? {
        guard
            let row = try Row.fetchOne(
                db.cached("SELECT account_id, disabled FROM accounts WHERE login = ?"), arguments: [login])
        else { return nil }
        return (row[0], row[1])
    }

    /// Creates an account with its mailboxes (nil when the login exists).
    static func insertAccount(
        _ db: Database, login: String, passwordHash: String?, quotaBytes: Int64?, quotaMessages: Int64?
    ) throws -> AccountID? {
        try db.cached(
            """
            INSERT INTO accounts (login, password_hash, quota_bytes, quota_messages, created_at)
            VALUES (?, ?, ?, ?, ?) ON CONFLICT (login) DO NOTHING
            """
        ).execute(arguments: [login, passwordHash, quotaBytes, quotaMessages, now])
        guard db.changesCount > 0 else { return nil }
        let id = AccountID(rawValue: db.lastInsertedRowID)
        try provisionMailboxes(db, account: id)
        return id
    }

    /// A new account's mailboxes: INBOX, and the default ones with their special uses, all subscribed.
    static func provisionMailboxes(_ db: Database, account: AccountID) throws {
        _ = try insertMailbox(db, account: account, name: "INBOX")
        let defaults = try Row.fetchAll(db.cached("SELECT name, special_use FROM default_mailboxes ORDER BY position"))
        for row in defaults {
            let name: String = row[0]
            if let id = try insertMailbox(db, account: account, name: name) {
                try db.cached("UPDATE mailboxes SET special_use = ? WHERE mailbox_id = ?").execute(arguments: [
                    row[1] as String?, id,
                ])
            }
        }
        for name in ["INBOX"] + defaults.map({ $0[0] as String }) {
            try db.cached("INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING").execute(
                arguments: [account.rawValue, name])
        }
    }

    /// Inserts one mailbox with a fresh UIDVALIDITY; nil when the name exists. UIDVALIDITY is the larger of the
    /// current time and the account's last value + 1, so a recreated name never reuses one (RFC 9051 §2.3.1.1).
    static func insertMailbox(_ db: Database, account: AccountID, name: String) throws -> Int64? {
        guard
            try Int64.fetchOne(
                db.cached("SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?"),
                arguments: [account.rawValue, name]) == nil
        else { return nil }
        try db.cached("UPDATE accounts SET last_uidvalidity = max(last_uidvalidity + 1, ?) WHERE account_id = ?")
            .execute(arguments: [now, account.rawValue])
        guard
            let validity = try Int64.fetchOne(
                db.cached("SELECT last_uidvalidity FROM accounts WHERE account_id = ?"), arguments: [account.rawValue])
        else { throw StoreError.accountNotFound }
        try db.cached("INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES (?, ?, ?)").execute(arguments: [
            account.rawValue, name, validity % 4_294_967_296,
        ])
        return db.lastInsertedRowID
    }

    /// `%`, `_` and `\` escaped for a LIKE pattern with `ESCAPE '\'`.
    static func likeEscape(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out
    }
}

extension SQLiteMailStore: MailStore {
    public func account(login: String, create: Bool, logger: Logger) async throws(StoreError) -> AccountID {
        let found = try await read(logger) { db in try Self.accountRow(db, login: login) }
        if let found {
            if found.disabled { throw .cannot("Account is disabled") }
            return AccountID(rawValue: found.id)
        }
        guard create else { throw .accountNotFound }
        return try await write(logger) { db in
            if let id = try Self.insertAccount(
                db, login: login, passwordHash: nil, quotaBytes: nil, quotaMessages: nil)
            {
                return id
            }
            // Created meanwhile by another process.
            guard let existing = try Self.accountRow(db, login: login) else { throw StoreError.accountNotFound }
            return AccountID(rawValue: existing.id)
        }
    }

    public func listMailboxes(account: AccountID, logger: Logger) async throws(StoreError) -> [MailboxListing] {
        try await read(logger) { db in try Self.listings(db, account: account) }
    }

    static func listings(_ db: Database, account: AccountID) throws -> [MailboxListing] {
        try Row.fetchAll(
            db.cached("SELECT mailbox_id, name, special_use FROM mailboxes WHERE account_id = ?"),
            arguments: [account.rawValue]
        ).map { row in
            MailboxListing(
                id: MailboxID(rawValue: row[0]), name: MailboxName(normalizing: row[1]), specialUse: row[2])
        }
    }

    static func subscriptions(_ db: Database, account: AccountID) throws -> [MailboxName] {
        try String.fetchAll(
            db.cached("SELECT name FROM subscriptions WHERE account_id = ?"), arguments: [account.rawValue]
        ).map { MailboxName(normalizing: $0) }
    }

    public func subscriptions(account: AccountID, logger: Logger) async throws(StoreError) -> [MailboxName] {
        try await read(logger) { db in try Self.subscriptions(db, account: account) }
    }

    public func mailboxesAndSubscriptions(account: AccountID, logger: Logger) async throws(StoreError)
        -> (listings: [MailboxListing], subscriptions: [MailboxName])
    {
        try await read(logger) { db in
            (try Self.listings(db, account: account), try Self.subscriptions(db, account: account))
        }
    }

    public func createMailbox(account: AccountID, name: MailboxName, specialUse: String?, logger: Logger)
        async throws(StoreError)
    {
        try await write(logger) { db in
            for ancestor in name.ancestors {
                _ = try Self.insertMailbox(db, account: account, name: ancestor.name)
            }
            guard let id = try Self.insertMailbox(db, account: account, name: name.name) else {
                throw StoreError.alreadyExists
            }
            if let specialUse {
                if try Int64.fetchOne(
                    db.cached("SELECT 1 FROM mailboxes WHERE account_id = ? AND special_use = ?"),
                    arguments: [account.rawValue, specialUse]) != nil
                {
                    throw StoreError.cannot("\(specialUse) is already the use of another mailbox")
                }
                try db.cached("UPDATE mailboxes SET special_use = ? WHERE mailbox_id = ?").execute(arguments: [
                    specialUse, id,
                ])
            }
            try Self.announce(db, account: account, "list")
        }
    }

    public func deleteMailbox(account: AccountID, name: MailboxName, logger: Logger) async throws(StoreError) {
        try await write(logger) { db in
            guard
                let id = try Int64.fetchOne(
                    db.cached("SELECT mailbox_id FROM mailboxes WHERE account_id = ? AND name = ?"),
                    arguments: [account.rawValue, name.name])
            else { throw StoreError.mailboxNotFound }
            // Messages and tombstones go with the mailbox (ON DELETE CASCADE); their contents stay until garbage
            // collection, for sessions that still show them. The mailbox's METADATA entries go too.
            try db.cached("DELETE FROM mailboxes WHERE mailbox_id = ?").execute(arguments: [id])
            try db.cached("DELETE FROM metadata WHERE account_id = ? AND mailbox_id = ?").execute(arguments: [
                account.rawValue, id,
            ])
            try Self.announceChange(db, account: account, mailbox: id, modSeq: Int64.max)
            try Self.announce(db, account: account, "list")
        }
    }

    public func renameMailbox(account: AccountID, from: MailboxName, to: MailboxName, logger: Logger)
        async throws(StoreError)
    {
        if from.isInbox {
            // RFC 9051 §6.3.6: INBOX's messages move to a new mailbox; INBOX stays, empty, with its inferiors.
            try await createMailbox(account: account, name: to, specialUse: nil, logger: logger)
            let inbox = try await select(account: account, name: .inbox, claimRecent: false, logger: logger)
            if !inbox.uids.isEmpty {
                _ = try await move(account: account, from: inbox.id, uids: inbox.uids, to: to, logger: logger)
            }
            return
        }
        try await write(logger) { db in
            guard
                try Int64.fetchOne(
                    db.cached("SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?"),
                    arguments: [account.rawValue, from.name]) != nil
            else { throw StoreError.mailboxNotFound }
            let prefix = Self.likeEscape(from.name) + "/%"
            let moving = try Row.fetchAll(
                db.cached(
                    """
                    SELECT mailbox_id, name FROM mailboxes
                    WHERE account_id = ? AND (name = ? OR name LIKE ? ESCAPE '\\')
                    """), arguments: [account.rawValue, from.name, prefix])
            let fromLength = from.name.unicodeScalars.count
            var renamed: [(Int64, String)] = []
            for row in moving {
                let name: String = row[1]
                let rest = String(String.UnicodeScalarView(name.unicodeScalars.dropFirst(fromLength)))
                renamed.append((row[0], to.name + rest))
            }
            let moved = Set(renamed.map(\.0))
            for (_, newName) in renamed {
                if let clash = try Int64.fetchOne(
                    db.cached("SELECT mailbox_id FROM mailboxes WHERE account_id = ? AND name = ?"),
                    arguments: [account.rawValue, newName]), !moved.contains(clash)
                {
                    throw StoreError.alreadyExists
                }
            }
            // Two steps, so that renaming `a` to `a/b` never collides with itself half-way.
            for (id, _) in renamed {
                try db.cached("UPDATE mailboxes SET name = '\u{1}renaming ' || mailbox_id WHERE mailbox_id = ?")
                    .execute(arguments: [id])
            }
            for (id, newName) in renamed {
                try db.cached("UPDATE mailboxes SET name = ? WHERE mailbox_id = ?").execute(arguments: [newName, id])
            }
            for ancestor in to.ancestors {
                _ = try Self.insertMailbox(db, account: account, name: ancestor.name)
            }
            try Self.announce(db, account: account, "list")
        }
    }

    public func setSubscribed(account: AccountID, name: MailboxName, subscribed: Bool, logger: Logger)
        async throws(StoreError)
    {
        try await write(logger) { db in
            if subscribed {
                try db.cached("INSERT INTO subscriptions (account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING")
                    .execute(arguments: [account.rawValue, name.name])
            } else {
                try db.cached("DELETE FROM subscriptions WHERE account_id = ? AND name = ?").execute(arguments: [
                    account.rawValue, name.name,
                ])
            }
            // A change (not a repeat) is announced.
            if db.changesCount > 0 { try Self.announce(db, account: account, "list") }
        }
    }

    public func status(account: AccountID, name: MailboxName, logger: Logger) async throws(StoreError) -> MailboxStatus
    {
        try await read(logger) { db in
            guard
                let row = try Row.fetchOne(
                    db.cached(
                        """
                        SELECT b.mailbox_id, b.uidvalidity, b.uidnext, b.highestmodseq,
                            count(m.uid), coalesce(sum(m.flags & 8 = 0), 0), coalesce(sum(m.flags & 4 <> 0), 0),
                            coalesce(sum(m.size), 0), coalesce(sum(m.uid >= b.first_recent_uid), 0)
                        FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.mailbox_id
                        WHERE b.account_id = ? AND b.name = ?
                        GROUP BY b.mailbox_id
                        """), arguments: [account.rawValue, name.name])
            else { throw StoreError.mailboxNotFound }
            return MailboxStatus(
                messages: row[4], unseen: row[5], deleted: row[6], size: row[7], recent: row[8],
                uidNext: UID(UInt32(truncatingIfNeeded: row[2] as Int64)),
                uidValidity: UInt32(truncatingIfNeeded: row[1] as Int64),
                highestModSeq: ModSeq(row[3] as Int64), id: MailboxID(rawValue: row[0]))
        }
    }

    public func quota(account: AccountID, logger: Logger) async throws(StoreError) -> QuotaUsage {
        try await read(logger) { db in
            guard
                let row = try Row.fetchOne(
                    db.cached(
                        """
                        SELECT used_bytes, used_messages, quota_bytes, quota_messages FROM accounts
                        WHERE account_id = ?
                        """), arguments: [account.rawValue])
            else { throw StoreError.accountNotFound }
            return QuotaUsage(usedBytes: row[0], usedMessages: row[1], byteLimit: row[2], messageLimit: row[3])
        }
    }

    // MARK: METADATA (RFC 5464)

    /// The mailbox's id, or 0 for the server; `mailboxNotFound` when it does not exist.
    static func metadataOwner(_ db: Database, account: AccountID, mailbox: MailboxName?) throws -> Int64 {
        guard let mailbox else { return 0 }
        guard
            let id = try Int64.fetchOne(
                db.cached("SELECT mailbox_id FROM mailboxes WHERE account_id = ? AND name = ?"),
                arguments: [account.rawValue, mailbox.name])
        else { throw StoreError.mailboxNotFound }
        return id
    }

    public func metadata(
        account: AccountID, mailbox: MailboxName?, entries: [String], depth: MetadataDepth, logger: Logger
    ) async throws(StoreError) -> [MetadataEntry] {
        try await read(logger) { db in
            let owner = try Self.metadataOwner(db, account: account, mailbox: mailbox)
            let rows = try Row.fetchAll(
                db.cached("SELECT name, value FROM metadata WHERE account_id = ? AND mailbox_id = ? ORDER BY name"),
                arguments: [account.rawValue, owner])
            let wanted = Set(entries)
            var result: [MetadataEntry] = []
            for row in rows {
                let name: String = row[0]
                let value: Data = row[1]
                var matches = wanted.contains(name)
                if !matches, depth != .zero {
                    for entry in entries where name.hasPrefix(entry + "/") {
                        let below = name.dropFirst(entry.count + 1)
                        if depth == .infinity || !below.contains("/") {
                            matches = true
                            break
                        }
                    }
                }
                if matches { result.append(MetadataEntry(name: name, value: Array(value))) }
            }
            return result
        }
    }

    public func setMetadata(
        account: AccountID, mailbox: MailboxName?, entries: [MetadataEntry], maxEntries: Int, logger: Logger
    ) async throws(StoreError) -> Bool {
        do {
            try await write(logger) { db in
                let owner = try Self.metadataOwner(db, account: account, mailbox: mailbox)
                var last: [String: [UInt8]?] = [:]
                for entry in entries { last[entry.name] = .some(entry.value) }
                for (name, value) in last {
                    if let value {
                        try db.cached(
                            """
                            INSERT INTO metadata (account_id, mailbox_id, name, value) VALUES (?, ?, ?, ?)
                            ON CONFLICT (account_id, mailbox_id, name) DO UPDATE SET value = excluded.value
                            """
                        ).execute(arguments: [account.rawValue, owner, name, Data(value)])
                    } else {
                        try db.cached("DELETE FROM metadata WHERE account_id = ? AND mailbox_id = ? AND name = ?")
                            .execute(arguments: [account.rawValue, owner, name])
                    }
                }
                let count =
                    try Int.fetchOne(
                        db.cached("SELECT count(*) FROM metadata WHERE account_id = ?"), arguments: [account.rawValue])
                    ?? 0
                // Thrown inside the transaction: nothing of this command stays.
                if count > maxEntries { throw StoreError.overQuota }
                try Self.announce(db, account: account, "meta:\(owner):" + last.keys.sorted().joined(separator: " "))
            }
            return true
        } catch {
            if case .overQuota = error { return false }
            throw error
        }
    }
}

/// Wakes the change-feed reader after a commit of this process: one waiter, and a signal that arrives while nobody
/// waits is kept for the next wait.
final class FeedWake: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    init() {}

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Parks `continuation` until the next signal; false (not parked) when a signal is pending.
    func park(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
        state.withLock { state in
            if state.pending {
                state.pending = false
                return false
            }
            state.waiter = continuation
            return true
        }
    }
}

extension Database {
    /// The statement of fixed SQL, prepared once per connection: preparing it again on every call was a quarter of
    /// the server's time with ten clients on one INBOX. Never for SQL that varies with the input (the cache keeps
    /// every statement it is given).
    func cached(_ sql: String) throws -> Statement { try cachedStatement(sql: sql) }
}
