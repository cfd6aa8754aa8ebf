import Foundation
import IMAPEngine
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// `MailStore` over PostgreSQL (DESIGN.md §3–4).
///
/// Every call is bounded by `configuration.operationTimeout` and answers `StoreError.unavailable` when the database
/// is away; the pools open new connections as needed, so the store recovers when the database returns. No transaction
/// is held while the engine waits on a client: every method is one statement or one short transaction.
public final class PostgresMailStore: MailStore {
    /// The main pools, one per event loop of a server (`LoopPools`).
    let pools: LoopPools
    /// The main pool of the loop the caller runs on (every lease guarded, `ReadCompleteGuard`).
    public var client: GuardedClient { pools.here }
    /// The pools SEARCH runs on: a few heavy searches can fill them, never the pools every other command needs.
    let searchPools: LoopPools?
    /// The SEARCH pool of the loop the caller runs on (the main one without search pools).
    var searchClient: GuardedClient { (searchPools ?? pools).here }
    let timeout: Duration
    /// The UID lists of recently selected mailboxes (SELECT reads only what changed since).
    let selectCache = SelectCache()
    /// The flags of recently fetched mailboxes (a flags-only FETCH reads only what changed since).
    let flagsCache: FlagsCache
    /// The STATUS counts of recently asked mailboxes (STATUS of an unchanged mailbox counts nothing).
    let statusCache = StatusCache()
    static let notifyChannel = "mailhost_changes"
    /// The commit's transaction time in epoch milliseconds, last in every change notification: the change feed
    /// measures its lag from it. `now()` is constant within a transaction, so PostgreSQL still folds identical
    /// notifications of one transaction into one.
    static let notifyTime = "(extract(epoch FROM now()) * 1000)::bigint::text"
    /// The most messages a change notification describes, and the longest description: larger changes are announced
    /// by their modseq alone (sessions read them), and NOTIFY takes at most 8,000 bytes.
    public static let noticeMessages = 200
    static let noticeBytes = 6000

    /// SQL for the NOTIFY of a change to `mailbox` (SQL expressions, as `account` and `modSeq`):
    /// `account:mailbox:modseq:milliseconds:details`, where `details` (SQL giving JSON; see
    /// `PostgresChangeFeed.parse`) says what changed, so that sessions take the change in without reading it. Left
    /// out when NULL or too long (bytes: a keyword of non-ASCII characters takes several). An uncorrelated `details` is
    /// computed once per statement.
    static func changeNotice(account: String, mailbox: String, modSeq: String, details: String) -> String {
        "pg_notify('\(notifyChannel)', \(account)::text || ':' || \(mailbox)::text || ':' || \(modSeq)::text || ':' || "
            + "\(notifyTime) || (SELECT CASE WHEN octet_length(d) <= \(noticeBytes) THEN ':' || d ELSE '' END "
            + "FROM (SELECT (\(details))::text AS d) z))::text"
    }

    /// `searchClient`: a separate, smaller pool for SEARCH (the query class that can run long); nil shares `client`.
    /// `flagsCacheBytes`: what the flags cache may hold.
    public convenience init(
        client: PostgresClient, searchClient: PostgresClient? = nil, operationTimeout: Duration = .seconds(15),
        flagsCacheBytes: Int = FlagsCache.defaultCapacity
    ) {
        self.init(
            pools: LoopPools(client), searchPools: searchClient.map { LoopPools($0) },
            operationTimeout: operationTimeout,
            flagsCacheBytes: flagsCacheBytes)
    }

    /// As `init(client:…)`, with the main pool split per event loop (`LoopPools`), and SEARCH's too.
    public init(
        pools: LoopPools, searchPools: LoopPools? = nil, operationTimeout: Duration = .seconds(15),
        flagsCacheBytes: Int = FlagsCache.defaultCapacity
    ) {
        self.pools = pools
        self.flagsCache = FlagsCache(capacity: flagsCacheBytes)
        self.searchPools = searchPools
        self.timeout = operationTimeout
    }

    // MARK: running statements

    struct Timeout: Error {}

    /// Runs `operation` with the timeout, retrying serialization failures and deadlocks within the same deadline, and
    /// maps every error to `StoreError` (the adapter's boundary, STYLE.md §6).
    func run<T: Sendable>(
        _ logger: Logger, name: String = #function, timeout: Duration? = nil,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws(StoreError) -> T {
        try await attempts(logger, name: name, timeout: timeout, writing: false) { _ in try await operation() }
    }

    /// `run`'s loop. A write gets a fresh `WriteProgress` per attempt: the attempt marks it when it is about to send
    /// its first statement, the caller when it gives up, whichever comes first; a failure after the first is
    /// `.outcomeUnknown`, and an attempt the caller gave up on sends nothing at all.
    private func attempts<T: Sendable>(
        _ logger: Logger, name: String, timeout: Duration?, writing: Bool,
        _ operation: @escaping @Sendable (WriteProgress?) async throws -> T
    ) async throws(StoreError) -> T {
        var attempt = 0
        let started = ContinuousClock.now
        let deadline = started + (timeout ?? self.timeout)
        while true {
            attempt += 1
            let progress = writing ? WriteProgress() : nil
            do {
                let result = try await Self.race(until: deadline) { try await operation(progress) }
                StoreLatency.record(name, ok: true, since: started)
                return result
            } catch {
                if let progress, progress.abandon(), Self.leavesOutcomeUnknown(error) {
                    StoreLatency.record(name, ok: false, since: started)
                    throw .outcomeUnknown(String(describing: Self.map(error)))
                }
                let mapped = Self.map(error)
                StoreLatency.record(name, ok: false, since: started)
                if case .internal(let detail) = mapped, Self.isRetryable(error), attempt < 4,
                    ContinuousClock.now < deadline
                {
                    logger.warning("store retry", metadata: ["error": "\(detail)", "attempt": "\(attempt)"])
                    continue
                }
                throw mapped
            }
        }
    }

    /// The operation's result, or `Timeout` at `deadline`, or `CancellationError` as soon as the caller is cancelled,
    /// whichever comes first, without waiting for the operation to notice. A query PostgresNIO has sent cannot be
    /// taken back, and one whose connection closes at the wrong moment is never answered; a session must not hang on
    /// either (it did, after a database restart). The operation is cancelled and ends on its own; PostgreSQL's
    /// `statement_timeout`, set to the same timeout, stops it on the server.
    static func race<T: Sendable>(
        until deadline: ContinuousClock.Instant, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = RaceOutcome<T>()
        // On the caller's event loop when it runs on one (a session's turn does): the operation's start, the store's
        // answer and the caller's wake-up then stay on one thread instead of each waking a thread of the pool.
        let loop = MultiThreadedEventLoopGroup.currentEventLoop
        let work = Task(executorPreference: loop.map { EventLoopTaskExecutor($0) }) {
            do {
                outcome.finish(.success(try await operation()))
            } catch {
                outcome.finish(.failure(error))
            }
        }
        // A timer on an event loop, not a task that sleeps: a cancelled `Task.sleep` leaves its timer (and a task
        // object) in the dispatch queue until the deadline, so every store call held about 600 bytes for the whole
        // store timeout. A cancelled scheduled task is gone at once.
        let remaining = deadline - .now
        let timer = (loop ?? MultiThreadedEventLoopGroup.singleton.any()).scheduleTask(
            in: .nanoseconds(Int64(remaining / .nanoseconds(1)))
        ) { outcome.finish(.failure(Timeout())) }
        defer {
            timer.cancel()
            work.cancel()
        }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            outcome.finish(.failure(CancellationError()))
        }
    }

    /// A write of statements outside BEGIN/COMMIT: `run` with a connection of its own, marked as having reached the
    /// database once leased, so that a failure after that point (lost connection, timeout) is reported as
    /// `.outcomeUnknown`, not as a NO.
    ///
    /// PostgreSQL commits such a statement at the Sync after it, once the statement's rows and CommandComplete are
    /// in its output buffer, and PostgresNIO ends the query at CommandComplete, before ReadyForQuery. A server that
    /// dies in between (immediate shutdown, or the restart after any backend crashed) flushes that buffer with its
    /// last words: the rows of a transaction that never commits. So the write is done only once PostgreSQL has sent
    /// the ReadyForQuery that follows that Sync's commit (CommitBeforeAnswerTests). The connection's guard counts
    /// them (`CommitWatch`); that one almost always came in the same read as the rows. Without a watch (a
    /// `PostgresClient`'s connections), one more statement on the same connection is answered instead, which
    /// PostgreSQL starts only after the commit.
    func write<T: Sendable>(
        _ logger: Logger, name: String = #function,
        _ operation: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        try await leased(logger, name: name) { connection, watch in
            let result = try await operation(connection)
            do {
                if let watch {
                    try await watch.allAnswered()
                } else {
                    // PostgresNIO drops a query written to a closed channel without ever answering it: when the server
                    // died with its last words, the connection is closed by now (the store timeout catches the rare
                    // case where it closes in between).
                    guard !connection.isClosed else { throw StoreError.unavailable("connection closed") }
                    _ = try await connection.prepared("SELECT true", logger: logger).collect()
                }
            } catch {
                throw CommitUnconfirmed(error: error)
            }
            return result
        }
    }

    /// A write in one transaction: as `write`, with BEGIN and COMMIT around `operation`. PostgreSQL answers COMMIT
    /// only once committed, so nothing more is needed to know it is done.
    func writeTransaction<T: Sendable>(
        _ logger: Logger, name: String = #function,
        _ operation: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        try await leased(logger, name: name) { connection, _ in
            try await connection.withTransaction(logger: logger) { try await operation($0) }
        }
    }

    private func leased<T: Sendable>(
        _ logger: Logger, name: String,
        _ operation: @escaping @Sendable (PostgresConnection, CommitWatch?) async throws -> T
    ) async throws(StoreError) -> T {
        let client = self.client
        return try await attempts(logger, name: name, timeout: nil, writing: true) { progress in
            try await client.withWatchedConnection { connection, watch in
                // The caller may have given up while the lease was granted: then nothing is sent.
                guard progress?.markReached() ?? true else { throw CancellationError() }
                return try await operation(connection, watch)
            }
        }
    }

    /// A write whose statements were answered, but whose commit was not confirmed (see `write`).
    struct CommitUnconfirmed: Error {
        var error: any Error
    }

    /// Whether a write that reached the database may have been committed although it failed: the connection was
    /// lost (or the call timed out) with no answer from the server. A server's error answer, or a failure before
    /// COMMIT in a transaction, means nothing was committed.
    static func leavesOutcomeUnknown(_ error: any Error) -> Bool {
        switch error {
        case is Timeout, is CancellationError, is CommitUnconfirmed:
            return true
        case let error as PostgresTransactionError:
            return error.commitError.map(leavesOutcomeUnknown) ?? false
        case let error as PSQLError:
            if let state = error.serverInfo?[.sqlState] {
                // A server that is going down (57P01-57P03, as with -m immediate) or a broken connection (08) may
                // say so after the commit reached the disk: only other errors mean the statement did nothing.
                return state.hasPrefix("57P") || state.hasPrefix("08")
            }
            switch error.code {
            case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .connectionError: return true
            default: return false
            }
        default:
            return false
        }
    }

    static func sqlState(_ error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        if let error = error as? PostgresTransactionError {
            for inner in [error.beginError, error.closureError, error.commitError].compactMap({ $0 }) {
                if let state = sqlState(inner) { return state }
            }
        }
        return nil
    }

    static func isRetryable(_ error: any Error) -> Bool {
        ["40001", "40P01"].contains(sqlState(error) ?? "")
    }

    static func map(_ error: any Error) -> StoreError {
        switch error {
        case let error as StoreError:
            return error
        case let error as CommitUnconfirmed:
            return map(error.error)
        case is Timeout, is CancellationError:
            return .unavailable("timed out")
        case is LoopPool.Closed:
            return .unavailable("shutting down")
        case let error as LoopPool.ConnectFailed:
            // Every way of not getting a connection is the database being away for the session (the log says why).
            return .unavailable(error.description)
        case let error as PostgresTransactionError:
            for inner in [error.closureError, error.beginError, error.commitError].compactMap({ $0 }) {
                return map(inner)
            }
            return .internal(String(reflecting: error))
        case let error as PSQLError:
            if let state = error.serverInfo?[.sqlState] {
                if state == "MH001" { return .overQuota }  // raised by the quota trigger (schema migration 2)
                // statement_timeout (the server's side of the store timeout) or an administrator's cancel.
                if state == "57014" { return .unavailable("statement timeout") }
                // Class 08 (connection), 57P (operator intervention: shutdown, restart), 53 (resources).
                if state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") {
                    return .unavailable(state)
                }
                return .internal("\(state): \(error.serverInfo?[.message] ?? "")")
            }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed,
                .queryCancelled:
                return .unavailable(String(reflecting: error.code))
            default:
                return .internal(String(reflecting: error))
            }
        default:
            return .internal(String(reflecting: error))
        }
    }

    // MARK: accounts

    public func account(login: String, create: Bool, logger: Logger) async throws(StoreError) -> AccountID {
        let client = self.client
        return try await run(logger) {
            let rows = try await client.prepared(
                "SELECT account_id, disabled FROM accounts WHERE login = \(login)", logger: logger
            ).collect()
            if let row = rows.first {
                let (id, disabled) = try row.decode((Int64, Bool).self)
                if disabled { throw StoreError.cannot("Account is disabled") }
                return AccountID(rawValue: id)
            }
            guard create else { throw StoreError.accountNotFound }
            return try await client.withTransaction(logger: logger) { connection in
                let inserted = try await connection.query(
                    "INSERT INTO accounts (login) VALUES (\(login)) ON CONFLICT (login) DO NOTHING RETURNING account_id",
                    logger: logger
                ).collect()
                guard let row = inserted.first else {
                    // Created concurrently by another session or instance.
                    let existing = try await connection.query(
                        "SELECT account_id FROM accounts WHERE login = \(login)", logger: logger
                    ).collect()
                    guard let row = existing.first else { throw StoreError.accountNotFound }
                    return AccountID(rawValue: try row.decode(Int64.self))
                }
                let id = AccountID(rawValue: try row.decode(Int64.self))
                try await Self.provisionMailboxes(connection, account: id, logger: logger)
                return id
            }
        }
    }

    /// A new account's mailboxes: INBOX, and those of `default_mailboxes` with their special uses, all subscribed.
    /// Run in the transaction that creates the account, so an account never exists without them.
    static func provisionMailboxes(_ connection: PostgresConnection, account: AccountID, logger: Logger) async throws {
        _ = try await insertMailbox(connection, account: account, name: "INBOX", logger: logger)
        try await connection.query(
            """
            WITH v AS (
                UPDATE accounts SET last_uidvalidity = greatest(last_uidvalidity + 1, extract(epoch FROM now())::bigint)
                WHERE account_id = \(account.rawValue) RETURNING last_uidvalidity)
            INSERT INTO mailboxes (account_id, name, uidvalidity, special_use)
            SELECT \(account.rawValue), d.name, v.last_uidvalidity, d.special_use FROM default_mailboxes d, v
            ON CONFLICT (account_id, name) DO NOTHING
            """, logger: logger)
        try await connection.query(
            """
            INSERT INTO subscriptions (account_id, name)
            SELECT \(account.rawValue), name FROM (SELECT 'INBOX' AS name UNION ALL SELECT name FROM default_mailboxes) n
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// Inserts one mailbox with a fresh UIDVALIDITY; nil when the name exists. UIDVALIDITY is the larger of the
    /// current time and the account's last value + 1, so a recreated name never reuses one (RFC 9051 §2.3.1.1).
    static func insertMailbox(
        _ connection: PostgresConnection, account: AccountID, name: String, logger: Logger
    ) async throws -> Int64? {
        let rows = try await connection.query(
            """
            WITH v AS (
                UPDATE accounts SET last_uidvalidity = greatest(last_uidvalidity + 1, extract(epoch FROM now())::bigint)
                WHERE account_id = \(account.rawValue) RETURNING last_uidvalidity)
            INSERT INTO mailboxes (account_id, name, uidvalidity)
            SELECT \(account.rawValue), \(name), v.last_uidvalidity FROM v
            ON CONFLICT (account_id, name) DO NOTHING
            RETURNING mailbox_id
            """, logger: logger
        ).collect()
        return try rows.first?.decode(Int64.self)
    }

    // MARK: mailboxes

    public func listMailboxes(account: AccountID, logger: Logger) async throws(StoreError) -> [MailboxListing] {
        let client = self.client
        return try await run(logger) {
            var result: [MailboxListing] = []
            let rows = try await client.prepared(
                "SELECT mailbox_id, name, special_use FROM mailboxes WHERE account_id = \(account.rawValue)",
                logger: logger)
            for try await row in rows {
                let (id, name, specialUse) = try row.decode((Int64, String, String?).self)
                result.append(
                    MailboxListing(
                        id: MailboxID(rawValue: id), name: MailboxName(normalizing: name), specialUse: specialUse))
            }
            return result
        }
    }

    /// One statement: the mailboxes and the subscriptions in one snapshot.
    public func mailboxesAndSubscriptions(account: AccountID, logger: Logger) async throws(StoreError)
        -> (listings: [MailboxListing], subscriptions: [MailboxName])
    {
        let client = self.client
        return try await run(logger) {
            var listings: [MailboxListing] = []
            var subscriptions: [MailboxName] = []
            let rows = try await client.prepared(
                """
                SELECT mailbox_id, name, special_use FROM mailboxes WHERE account_id = \(account.rawValue)
                UNION ALL SELECT NULL, name, NULL FROM subscriptions WHERE account_id = \(account.rawValue)
                """, logger: logger)
            for try await row in rows {
                let (id, name, specialUse) = try row.decode((Int64?, String, String?).self)
                if let id {
                    listings.append(
                        MailboxListing(
                            id: MailboxID(rawValue: id), name: MailboxName(normalizing: name), specialUse: specialUse))
                } else {
                    subscriptions.append(MailboxName(normalizing: name))
                }
            }
            return (listings, subscriptions)
        }
    }

    public func subscriptions(account: AccountID, logger: Logger) async throws(StoreError) -> [MailboxName] {
        let client = self.client
        return try await run(logger) {
            var result: [MailboxName] = []
            let rows = try await client.query(
                "SELECT name FROM subscriptions WHERE account_id = \(account.rawValue)", logger: logger)
            for try await name in rows.decode(String.self) { result.append(MailboxName(normalizing: name)) }
            return result
        }
    }

    public func createMailbox(account: AccountID, name: MailboxName, specialUse: String?, logger: Logger)
        async throws(StoreError)
    {
        do {
            try await createMailboxOnce(account: account, name: name, specialUse: specialUse, logger: logger)
        } catch .internal(let detail) where specialUse != nil && detail.hasPrefix("23505") {
            // Another mailbox got this special use between the session's check and this insert.
            throw .cannot("\(specialUse ?? "") is already the use of another mailbox")
        }
    }

    private func createMailboxOnce(account: AccountID, name: MailboxName, specialUse: String?, logger: Logger)
        async throws(StoreError)
    {
        try await writeTransaction(logger) { connection in
            for ancestor in name.ancestors {
                _ = try await Self.insertMailbox(connection, account: account, name: ancestor.name, logger: logger)
            }
            guard
                let id = try await Self.insertMailbox(
                    connection, account: account, name: name.name, logger: logger)
            else { throw StoreError.alreadyExists }
            if let specialUse {
                try await connection.query(
                    """
                    UPDATE mailboxes SET special_use = \(specialUse)
                    WHERE account_id = \(account.rawValue) AND mailbox_id = \(id)
                    """, logger: logger)
            }
            try await Self.notifyMailboxesChanged(connection, account: account, logger: logger)
        }
    }

    /// Tells every instance (at commit) that the account's mailbox names or subscriptions changed.
    static func notifyMailboxesChanged(_ connection: PostgresConnection, account: AccountID, logger: Logger)
        async throws
    {
        try await connection.query(
            "SELECT pg_notify(\(notifyChannel), \("\(account.rawValue):list"))::text", logger: logger)
    }

    public func deleteMailbox(account: AccountID, name: MailboxName, logger: Logger) async throws(StoreError) {
        try await write(logger) { connection in
            let rows = try await connection.query(
                """
                WITH gone AS (
                    DELETE FROM mailboxes WHERE account_id = \(account.rawValue) AND name = \(name.name)
                    RETURNING mailbox_id)
                SELECT mailbox_id, pg_notify(\(Self.notifyChannel),
                    \(account.rawValue)::text || ':' || mailbox_id::text || ':' || \(Int64.max)::text || ':' || \(unescaped: Self.notifyTime))::text,
                    pg_notify(\(Self.notifyChannel), \("\(account.rawValue):list"))::text
                FROM gone
                """, logger: logger
            ).collect()
            if rows.isEmpty { throw StoreError.mailboxNotFound }
        }
    }

    public func renameMailbox(account: AccountID, from: MailboxName, to: MailboxName, logger: Logger)
        async throws(StoreError)
    {
        if from.isInbox {
            try await renameInbox(account: account, to: to, logger: logger)
            return
        }
        try await writeTransaction(logger) { connection in
            let source = try await connection.query(
                "SELECT 1 FROM mailboxes WHERE account_id = \(account.rawValue) AND name = \(from.name) FOR UPDATE",
                logger: logger
            ).collect()
            if source.isEmpty { throw StoreError.mailboxNotFound }
            let prefix = Self.likeEscape(from.name) + "/%"
            // Renames the mailbox and its inferiors; a clash with an existing name is a unique violation.
            do {
                try await connection.query(
                    """
                    UPDATE mailboxes SET name = \(to.name) || substr(name, \(from.name.unicodeScalars.count + 1)::int)
                    WHERE account_id = \(account.rawValue) AND (name = \(from.name) OR name LIKE \(prefix))
                    """, logger: logger)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                throw StoreError.alreadyExists
            }
            for ancestor in to.ancestors {
                _ = try await Self.insertMailbox(connection, account: account, name: ancestor.name, logger: logger)
            }
            try await Self.notifyMailboxesChanged(connection, account: account, logger: logger)
        }
    }

    /// RFC 9051 §6.3.6: renaming INBOX moves all its messages to a new mailbox and leaves INBOX empty; its inferiors
    /// stay where they are.
    private func renameInbox(account: AccountID, to: MailboxName, logger: Logger) async throws(StoreError) {
        try await createMailbox(account: account, name: to, logger: logger)
        let inbox = try await select(account: account, name: .inbox, claimRecent: false, logger: logger)
        if !inbox.uids.isEmpty {
            _ = try await move(account: account, from: inbox.id, uids: inbox.uids, to: to, logger: logger)
        }
    }

    public func setSubscribed(account: AccountID, name: MailboxName, subscribed: Bool, logger: Logger)
        async throws(StoreError)
    {
        // A change (not a repeat) is announced to every instance.
        let notify = "\(account.rawValue):list"
        _ = try await write(logger) { connection in
            if subscribed {
                try await connection.query(
                    """
                    WITH added AS (
                        INSERT INTO subscriptions (account_id, name) VALUES (\(account.rawValue), \(name.name))
                        ON CONFLICT DO NOTHING RETURNING 1)
                    SELECT pg_notify(\(Self.notifyChannel), \(notify))::text FROM added
                    """, logger: logger)
            } else {
                try await connection.query(
                    """
                    WITH removed AS (
                        DELETE FROM subscriptions WHERE account_id = \(account.rawValue) AND name = \(name.name)
                        RETURNING 1)
                    SELECT pg_notify(\(Self.notifyChannel), \(notify))::text FROM removed
                    """, logger: logger)
            }
        }
    }

    public func status(account: AccountID, name: MailboxName, logger: Logger) async throws(StoreError) -> MailboxStatus
    {
        let client = self.client
        let key = StatusCache.Key(account: account, name: name.name)
        let cached = statusCache.entry(key)
        let (entry, _) = try await run(logger) {
            try await Self.statusRow(client, account: account, name: name, since: cached, logger: logger)
        }
        if entry != cached { statusCache.store(entry, at: key) }
        return entry.status
    }

    /// The mailbox's STATUS in one statement: its row, and its messages counted only when the row differs from
    /// `since` (then `counted` is true; otherwise the counts are `since`'s, see `StatusCache`).
    static func statusRow(
        _ client: GuardedClient, account: AccountID, name: MailboxName, since: StatusCache.Entry?, logger: Logger
    ) async throws -> (entry: StatusCache.Entry, counted: Bool) {
        let sinceID = since?.mailbox.rawValue ?? -1
        let sinceValidity = Int64(since?.uidValidity ?? 0)
        let sinceNext = Int64(since?.uidNext.rawValue ?? 0)
        let sinceModSeq = since?.highestModSeq.rawValue ?? -1
        let sinceRecent = since?.firstRecentUID ?? -1
        let rows = try await client.prepared(
            """
            SELECT b.mailbox_id, b.uidvalidity, b.uidnext, b.highestmodseq, b.first_recent_uid,
                CASE WHEN b.mailbox_id = \(sinceID) AND b.uidvalidity = \(sinceValidity) AND b.uidnext = \(sinceNext)
                    AND b.highestmodseq = \(sinceModSeq) AND b.first_recent_uid = \(sinceRecent) THEN NULL
                ELSE (SELECT ARRAY[count(m.uid), count(m.uid) FILTER (WHERE m.flags & 8 = 0),
                          count(m.uid) FILTER (WHERE m.flags & 4 <> 0), coalesce(sum(m.size), 0)::bigint,
                          count(m.uid) FILTER (WHERE m.uid >= b.first_recent_uid)]
                      FROM messages m WHERE m.account_id = b.account_id AND m.mailbox_id = b.mailbox_id) END
            FROM mailboxes b
            WHERE b.account_id = \(account.rawValue) AND b.name = \(name.name)
            """, logger: logger
        ).collect()
        guard let row = rows.first else { throw StoreError.mailboxNotFound }
        let (id, validity, next, modseq, firstRecent, counts) = try row.decode(
            (Int64, Int64, Int64, Int64, Int64, [Int64]?).self)
        var entry = StatusCache.Entry(
            mailbox: MailboxID(rawValue: id), uidValidity: UInt32(truncatingIfNeeded: validity),
            uidNext: UID(UInt32(truncatingIfNeeded: next)), highestModSeq: ModSeq(modseq), firstRecentUID: firstRecent,
            messages: 0, unseen: 0, deleted: 0, size: 0, recent: 0)
        guard let counts else {
            guard let since else { throw StoreError.internal("STATUS counts missing") }
            (entry.messages, entry.unseen, entry.deleted, entry.size, entry.recent) =
                (since.messages, since.unseen, since.deleted, since.size, since.recent)
            return (entry, false)
        }
        guard counts.count == 5 else { throw StoreError.internal("STATUS counts malformed") }
        (entry.messages, entry.unseen, entry.deleted, entry.size, entry.recent) =
            (Int(counts[0]), Int(counts[1]), Int(counts[2]), counts[3], Int(counts[4]))
        return (entry, true)
    }

    /// `%`, `_` and `\` escaped for a LIKE pattern.
    static func likeEscape(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out
    }
}

// MARK: METADATA (RFC 5464)

extension PostgresMailStore {
    /// The mailbox's id, or nil for the server; `mailboxNotFound` when it does not exist.
    private static func metadataOwner(
        _ connection: PostgresConnection, account: AccountID, mailbox: MailboxName?, logger: Logger
    ) async throws -> Int64? {
        guard let mailbox else { return nil }
        let rows = try await connection.query(
            "SELECT mailbox_id FROM mailboxes WHERE account_id = \(account.rawValue) AND name = \(mailbox.name)",
            logger: logger
        ).collect()
        guard let row = rows.first else { throw StoreError.mailboxNotFound }
        return try row.decode(Int64.self)
    }

    public func metadata(
        account: AccountID, mailbox: MailboxName?, entries: [String], depth: MetadataDepth, logger: Logger
    ) async throws(StoreError) -> [MetadataEntry] {
        let client = self.client
        return try await run(logger) {
            try await client.withConnection { connection in
                let owner = try await Self.metadataOwner(connection, account: account, mailbox: mailbox, logger: logger)
                // An entry itself, and below it: children only (depth 1) or all descendants.
                let prefixes = entries.map { Self.likeEscape($0) + "/%" }
                let deeper = depth != .zero
                let childrenOnly = depth == .one
                let rows = try await connection.query(
                    """
                    SELECT name, value FROM metadata
                    WHERE account_id = \(account.rawValue) AND coalesce(mailbox_id, 0) = \(owner ?? 0)
                        AND (name = ANY(\(entries)::text[])
                             OR (\(deeper) AND EXISTS (
                                 SELECT 1 FROM unnest(\(prefixes)::text[], \(entries)::text[]) p(pattern, entry)
                                 WHERE name LIKE p.pattern
                                     AND (NOT \(childrenOnly) OR position('/' IN substr(name, length(p.entry) + 2)) = 0))))
                    ORDER BY name
                    """, logger: logger)
                var result: [MetadataEntry] = []
                for try await (name, value) in rows.decode((String, ByteBuffer).self) {
                    result.append(MetadataEntry(name: name, value: Array(value.readableBytesView)))
                }
                return result
            }
        }
    }

    /// `account:meta:owner:name name …` payloads for the changed entry names, each under PostgreSQL's 8,000-byte
    /// limit (names are at most 1,024 bytes without spaces).
    static func metadataNotifications(account: AccountID, owner: Int64?, names: [String]) -> [String] {
        let prefix = "\(account.rawValue):meta:\(owner ?? 0):"
        var payloads: [String] = []
        var current = ""
        for name in names.sorted() {
            if !current.isEmpty, prefix.utf8.count + current.utf8.count + 1 + name.utf8.count > 7_000 {
                payloads.append(prefix + current)
                current = ""
            }
            current += current.isEmpty ? name : " " + name
        }
        if !current.isEmpty { payloads.append(prefix + current) }
        return payloads
    }

    public func setMetadata(
        account: AccountID, mailbox: MailboxName?, entries: [MetadataEntry], maxEntries: Int, logger: Logger
    ) async throws(StoreError) -> Bool {
        do {
            try await writeTransaction(logger) { connection in
                // The account row serialises concurrent SETMETADATA, so the count below stays true.
                try await connection.query(
                    "SELECT 1 FROM accounts WHERE account_id = \(account.rawValue) FOR UPDATE", logger: logger)
                let owner = try await Self.metadataOwner(
                    connection, account: account, mailbox: mailbox, logger: logger)
                // One statement each for the sets and the removals (a command may carry 1,000 entries); the last
                // value given for a name wins.
                var last: [String: [UInt8]?] = [:]
                for entry in entries { last[entry.name] = .some(entry.value) }
                let sets = last.compactMap { name, value in value.map { (name, ByteBuffer(bytes: $0)) } }
                let removals = last.filter { $0.value == nil }.map(\.key)
                if !sets.isEmpty {
                    try await connection.query(
                        """
                        INSERT INTO metadata (account_id, mailbox_id, name, value)
                        SELECT \(account.rawValue), \(owner), n, v
                        FROM unnest(\(sets.map(\.0))::text[], \(sets.map(\.1))::bytea[]) AS e(n, v)
                        ON CONFLICT (account_id, (coalesce(mailbox_id, 0)), name)
                        DO UPDATE SET value = excluded.value
                        """, logger: logger)
                }
                if !removals.isEmpty {
                    try await connection.query(
                        """
                        DELETE FROM metadata WHERE account_id = \(account.rawValue)
                            AND coalesce(mailbox_id, 0) = \(owner ?? 0) AND name = ANY(\(removals)::text[])
                        """, logger: logger)
                }
                let count =
                    try await connection.query(
                        "SELECT count(*) FROM metadata WHERE account_id = \(account.rawValue)", logger: logger
                    ).collect().first?.decode(Int64.self) ?? 0
                // Thrown inside the transaction: nothing of this command stays.
                if count > maxEntries { throw StoreError.overQuota }
                try await connection.query(
                    """
                    SELECT pg_notify(\(Self.notifyChannel), p)::text
                    FROM unnest(\(Self.metadataNotifications(account: account, owner: owner, names: Array(last.keys))))
                        AS p
                    """, logger: logger)
            }
            return true
        } catch {
            if case .overQuota = error { return false }
            throw error
        }
    }
}
