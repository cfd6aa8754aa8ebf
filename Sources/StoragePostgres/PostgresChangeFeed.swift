import Foundation
import IMAPEngine
import Metrics
import Logging
import PostgresNIO

/// The PostgreSQL side of the change feed (DESIGN.md §3): one LISTEN connection per instance, fanned out to this
/// process's sessions through `ChangeFeed`. Every commit's NOTIFY (from this instance or another) arrives here, and
/// PostgreSQL delivers it only at commit, so a hint never precedes its data.
public struct PostgresChangeFeed: Sendable {
    let client: GuardedClient
    let feed: ChangeFeed
    let logger: Logger

    public init(client: GuardedClient, feed: ChangeFeed, logger: Logger) {
        self.client = client
        self.feed = feed
        self.logger = logger
    }

    /// Listens until cancelled, reconnecting after failures; after a reconnect every session re-reads its mailbox,
    /// since notifications sent meanwhile were lost.
    public func run() async {
        var connectedBefore = false
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: PostgresMailStore.notifyChannel) { notifications in
                        if connectedBefore {
                            logger.notice("change feed reconnected; sessions resynchronise")
                            // Accounts disabled or deleted while the feed was away: their notices were lost.
                            for account in try await Self.disabledAccounts(
                                among: feed.registeredAccounts, connection: connection, logger: logger)
                            {
                                feed.publish(account: account, event: .accountDisabled)
                            }
                            feed.publishResyncToAll()
                        }
                        connectedBefore = true
                        for try await notification in notifications {
                            guard let (account, event) = Self.parse(notification.payload) else {
                                logger.warning("malformed change notification")
                                continue
                            }
                            feed.publish(account: account, event: event)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("change feed lost its connection", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The accounts of `accounts` that are disabled or no longer exist.
    static func disabledAccounts(among accounts: [AccountID], connection: PostgresConnection, logger: Logger)
        async throws -> [AccountID]
    {
        guard !accounts.isEmpty else { return [] }
        let ids = accounts.map(\.rawValue)
        let rows = try await connection.query(
            """
            SELECT id FROM unnest(\(ids)::bigint[]) AS r(id)
            WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = r.id AND NOT a.disabled)
            """, logger: logger)
        var result: [AccountID] = []
        for try await id in rows.decode(Int64.self) { result.append(AccountID(rawValue: id)) }
        return result
    }

    /// `account:mailbox:modseq:milliseconds[:details]` for a change, `account:disabled` for an account disabled or
    /// deleted, `account:list` for mailboxes or subscriptions changed, `account:meta:mailbox:entry entry …` for METADATA
    /// entries set or removed (mailbox 0: the server's).
    ///
    /// The details (`PostgresMailStore.changeNotice`) are JSON: `{"r": first UID not claimed as \Recent, "c": [[uid,
    /// flags, [keyword, …]], …] added or changed, "x": [uid, …] expunged}`, ascending by UID, all at the
    /// notification's modseq.
    static func parse(_ payload: String) -> (AccountID, ChangeEvent)? {
        let parts = payload.split(separator: ":", maxSplits: 4)
        guard let account = parts.first.flatMap({ Int64($0) }) else { return nil }
        if parts.count == 2, parts[1] == "disabled" { return (AccountID(rawValue: account), .accountDisabled) }
        if parts.count == 2, parts[1] == "list" { return (AccountID(rawValue: account), .mailboxesChanged) }
        if parts.count == 4, parts[1] == "meta", let owner = Int64(parts[2]) {
            let entries = parts[3].split(separator: " ").map(String.init)
            return (
                AccountID(rawValue: account),
                .metadataChanged(owner == 0 ? nil : MailboxID(rawValue: owner), entries)
            )
        }
        guard parts.count >= 3, let mailbox = Int64(parts[1]), let modSeq = Int64(parts[2]) else { return nil }
        if parts.count >= 4, let sent = Int64(parts[3]) {
            // Change-feed lag: from the writing transaction to this instance (clocks of one host or NTP-synced).
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            lag.recordMilliseconds(max(0, now - sent))
        }
        // Details that do not parse are left out: the sessions read the change instead.
        let delta = parts.count == 5 ? try? Self.delta(parts[4], modSeq: ModSeq(modSeq)) : nil
        return (
            AccountID(rawValue: account),
            .mailboxChanged(MailboxID(rawValue: mailbox), ModSeq(modSeq), deltas: delta.map { [$0] } ?? [])
        )
    }

    /// The change a notification's details describe, as `changes(since: modSeq - 1)` would read it.
    static func delta(_ details: Substring, modSeq: ModSeq) throws -> MailboxDelta {
        let decoded = try NoticeDetails.decode(details)
        func uid(_ value: Int64) throws -> UID {
            guard let uid = UInt32(exactly: value), uid > 0 else {
                throw DecodingError.valueNotFound(UID.self, .init(codingPath: [], debugDescription: "UID \(value)"))
            }
            return UID(uid)
        }
        var delta = MailboxDelta(highestModSeq: modSeq)
        for change in decoded.c ?? [] {
            delta.changed.append(
                .init(
                    uid: try uid(change.uid),
                    flags: MessageFlags(system: SystemFlags(rawValue: change.flags), keywords: change.keywords),
                    modSeq: modSeq))
        }
        delta.expunged = try (decoded.x ?? []).map(uid)
        if !delta.expunged.isEmpty { delta.lowestExpungedModSeq = modSeq }
        delta.firstUnclaimedUID = UID(UInt32(clamping: decoded.r))
        return delta
    }

    static let lag = Metrics.Timer(label: "mailhost_change_feed_lag_seconds")
}

extension PostgresMailStore {
    /// How long garbage collection may take.
    static let maintenanceTimeout: Duration = .seconds(3600)

    /// Deletes content no message references any more, once tombstones older than `retention` let go of it
    /// (sessions that still show an expunged message can fetch it until then), and tombstones themselves once older
    /// than `tombstoneRetention` (raising their mailbox's `vanished_floor`). Runs under an advisory lock so one
    /// instance at a time does the work. Returns the number of contents removed.
    public func collectGarbage(retention: Duration, tombstoneRetention: Duration, logger: Logger)
        async throws(StoreError) -> Int
    {
        let client = self.client
        let seconds = Int64(retention.components.seconds)
        let tombstoneSeconds = max(seconds, Int64(tombstoneRetention.components.seconds))
        // Maintenance is the one query class allowed to run long: no statement timeout on this connection while it
        // works (RESET gives the pool's setting back before the connection returns to the pool).
        return try await run(logger, timeout: Self.maintenanceTimeout) {
            try await client.withConnection { connection in
                let lock = try await connection.query(
                    "SELECT pg_try_advisory_lock(\(PostgresSchema.advisoryLock + 1))", logger: logger
                ).collect()
                guard try lock.first?.decode(Bool.self) == true else { return 0 }
                try await connection.query("SET statement_timeout = 0", logger: logger)
                do {
                    try await connection.query(
                        """
                        UPDATE expunged SET content_id = NULL
                        WHERE content_id IS NOT NULL AND expunged_at < now() - make_interval(secs => \(seconds))
                        """, logger: logger)
                    // The floor is raised in the same statement as the tombstones go, so a resync never sees
                    // neither. In batches (the first run after an upgrade may have millions to remove), and the
                    // mailbox rows are locked in (account, mailbox) order, as MOVE locks them: no deadlock.
                    while true {
                        let rows = try await connection.query(
                            """
                            WITH gone AS (
                                DELETE FROM expunged WHERE ctid IN (
                                    SELECT ctid FROM expunged
                                    WHERE expunged_at < now() - make_interval(secs => \(tombstoneSeconds))
                                    LIMIT 10000)
                                RETURNING account_id, mailbox_id, modseq),
                            f AS (SELECT account_id, mailbox_id, max(modseq) AS floor, count(*) AS n
                                  FROM gone GROUP BY 1, 2),
                            l AS (SELECT b.account_id, b.mailbox_id, f.floor FROM mailboxes b
                                  JOIN f ON b.account_id = f.account_id AND b.mailbox_id = f.mailbox_id
                                  ORDER BY b.account_id, b.mailbox_id FOR UPDATE OF b),
                            u AS (UPDATE mailboxes b SET vanished_floor = greatest(b.vanished_floor, l.floor)
                                  FROM l WHERE b.account_id = l.account_id AND b.mailbox_id = l.mailbox_id)
                            SELECT coalesce(sum(n), 0)::bigint FROM f
                            """, logger: logger
                        ).collect()
                        guard try rows.first?.decode(Int64.self) ?? 0 >= 10000 else { break }
                    }
                    let deleted = try await connection.query(
                        """
                        DELETE FROM contents c
                        WHERE c.created_at < now() - interval '10 minutes'
                            AND NOT EXISTS (SELECT 1 FROM messages m
                                            WHERE m.account_id = c.account_id AND m.content_id = c.content_id)
                            AND NOT EXISTS (SELECT 1 FROM expunged e
                                            WHERE e.account_id = c.account_id AND e.content_id = c.content_id)
                        RETURNING content_id
                        """, logger: logger
                    ).collect()
                    _ = try await connection.query(
                        "SELECT pg_advisory_unlock(\(PostgresSchema.advisoryLock + 1))", logger: logger)
                    try await connection.query("RESET statement_timeout", logger: logger)
                    return deleted.count
                } catch {
                    _ = try? await connection.query(
                        "SELECT pg_advisory_unlock(\(PostgresSchema.advisoryLock + 1))", logger: logger)
                    _ = try? await connection.query("RESET statement_timeout", logger: logger)
                    throw error
                }
            }
        }
    }
}
