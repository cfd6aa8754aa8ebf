import Foundation
import IMAPEngine
import Logging
import PostgresNIO
import Testing

@testable import StoragePostgres

/// What PostgreSQL's planner and locks do with the store's statements on data shaped like a real store's.
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
struct PlannerTests {
    /// Many small mailboxes and one large one, analysed: the generic plan of FETCH's per-UID lookup (the shape of
    /// `fetch`'s LATERAL probe) must find each UID through the primary key. Before migration 7 the planner took
    /// account_id and mailbox_id as independent, expected about one row per mailbox, and probed through
    /// messages_modseq, filtering all 5,000 rows for each UID (3.2 s instead of 31 ms on the benchmark store).
    @Test func aGenericPlanProbesEachUIDByThePrimaryKey() async throws {
        try await StoreFixture.with { f in
            for n in 1...100 { _ = try await f.store.account(login: "small\(n)", create: true, logger: f.logger) }
            let plan = try await f.configuration.withConnection(logger: f.logger) { connection in
                for sql in [
                    """
                    INSERT INTO contents (account_id, size, header_length, body, envelope, body_summary,
                        body_structure, parts, search_from, search_to, search_cc, search_bcc, search_subject,
                        search_headers, search_body)
                    SELECT account_id, 1, 0, '', '', '', '', '', '', '', '', '', '', '', '' FROM accounts
                    """,
                    """
                    INSERT INTO messages (account_id, mailbox_id, uid, content_id, modseq, internal_date, size)
                    SELECT b.account_id, b.mailbox_id, g, c.content_id, g, 0, 1
                    FROM mailboxes b JOIN contents c USING (account_id),
                        generate_series(1, CASE WHEN b.account_id = \(f.account.rawValue) THEN 5000 ELSE 80 END) g
                    WHERE b.name = 'INBOX'
                    """,
                    "ANALYZE messages",
                    "SET plan_cache_mode = force_generic_plan",
                    """
                    PREPARE probe(bigint, bigint, bigint, bigint, bigint[]) AS
                    SELECT x.uid, x.flags FROM unnest($5::bigint[]) AS u(uid) CROSS JOIN LATERAL (
                        SELECT * FROM messages
                        WHERE uid = u.uid AND account_id = $1 AND mailbox_id = $2 AND uid >= $3 AND uid <= $4
                        OFFSET 0) x
                    ORDER BY uid
                    """,
                ] {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: f.logger)
                }
                let mailbox = try await connection.query(
                    "SELECT mailbox_id FROM mailboxes WHERE account_id = \(f.account.rawValue) AND name = 'INBOX'",
                    logger: f.logger
                ).collect().first?.decode(Int64.self)
                let uids = (1...5000).map(String.init).joined(separator: ",")
                let rows = try await connection.query(
                    PostgresQuery(
                        unsafeSQL:
                            "EXPLAIN (FORMAT JSON) EXECUTE probe(\(f.account.rawValue), \(mailbox ?? 0), 1, 5000, "
                            + "'{\(uids)}')"),
                    logger: f.logger
                ).collect()
                return try rows.map { try $0.decode(String.self) }.joined()
            }
            #expect(
                Self.scans(in: plan).contains { $0.relation == "messages" && $0.index == "messages_pkey" }, "\(plan)")
            #expect(!plan.contains("messages_modseq"), "\(plan)")
        }
    }

    /// SEARCH TEXT in one mailbox of an account that holds far more contents elsewhere, with a word in every
    /// message: the plan must reach contents only through its key, per message of the mailbox. Left to the planner,
    /// this store got a hash join over a scan of every account's contents (707 ms instead of 90 on the benchmark
    /// store).
    @Test func searchReadsOnlyTheMailboxsOwnContents() async throws {
        try await StoreFixture.with { f in
            for n in 1...20 { _ = try await f.store.account(login: "other\(n)", create: true, logger: f.logger) }
            let inbox = try await f.snapshot()
            let plan = try await f.configuration.withConnection(logger: f.logger) { connection in
                for sql in [
                    // 4,000 contents per account, all with the word; the searched INBOX holds 2,000 of alice's.
                    """
                    INSERT INTO contents (account_id, size, header_length, body, envelope, body_summary,
                        body_structure, parts, search_from, search_to, search_cc, search_bcc, search_subject,
                        search_headers, search_body)
                    SELECT account_id, 1, 0, '', '', '', '', '', '', '', '', '', 'budget', 'subject: budget',
                        repeat('the budget for the year ', 40)
                    FROM accounts, generate_series(1, 4000)
                    """,
                    """
                    INSERT INTO messages (account_id, mailbox_id, uid, content_id, modseq, internal_date, size)
                    SELECT \(f.account.rawValue), \(inbox.id.rawValue), row_number() OVER (ORDER BY content_id),
                        content_id, 1, 0, 1
                    FROM contents WHERE account_id = \(f.account.rawValue) ORDER BY content_id LIMIT 2000
                    """,
                    "ANALYZE messages, contents",
                ] {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: f.logger)
                }
                let statement = PostgresMailStore.searchStatement(
                    account: f.account, mailbox: inbox.id, query: .text("budget"), maxUID: UID(UInt32.max - 1),
                    columns: PostgresMailStore.packedUIDs("m.uid"))
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + statement.sql, binds: statement.binds),
                    logger: f.logger
                ).collect()
                return try rows.map { try $0.decode(String.self) }.joined()
            }
            let scans = Self.scans(in: plan).filter { $0.relation == "contents" }
            #expect(!scans.isEmpty, "\(plan)")
            #expect(scans.allSatisfy { $0.index == "contents_pkey" && $0.underLoop }, "\(plan)")
        }
    }

    /// A store that one large mailbox makes most of (a new or small one): the read of changes (NOOP, IDLE, CONDSTORE)
    /// must still find them through the modseq indexes. Its values hidden, `modseq > since` is guessed to keep a third
    /// of the mailbox, which made a sequential scan of the whole table look cheaper: every NOOP read every message
    /// (0.7 ms on 5,000 messages on the benchmark store instead of 0.1).
    @Test func theReadOfChangesUsesTheModSeqIndexesWhenOneMailboxIsMostOfTheStore() async throws {
        try await StoreFixture.with { f in
            for n in 1...5 { _ = try await f.store.account(login: "few\(n)", create: true, logger: f.logger) }
            let inbox = try await f.snapshot()
            let plan = try await f.configuration.withConnection(logger: f.logger) { connection in
                for sql in [
                    """
                    INSERT INTO contents (account_id, size, header_length, body, envelope, body_summary,
                        body_structure, parts, search_from, search_to, search_cc, search_bcc, search_subject,
                        search_headers, search_body)
                    SELECT account_id, 1, 0, '', '', '', '', '', '', '', '', '', '', '', '' FROM accounts
                    """,
                    """
                    INSERT INTO messages (account_id, mailbox_id, uid, content_id, modseq, internal_date, size)
                    SELECT b.account_id, b.mailbox_id, g, c.content_id, g, 0, 1
                    FROM mailboxes b JOIN contents c USING (account_id),
                        generate_series(1, CASE WHEN b.account_id = \(f.account.rawValue) THEN 5000 ELSE 20 END) g
                    WHERE b.name = 'INBOX'
                    """,
                    """
                    INSERT INTO expunged (account_id, mailbox_id, uid, modseq, flags, keywords, internal_date,
                        internal_zone, size)
                    SELECT b.account_id, b.mailbox_id, 10000 + g, 10000 + g, 0, '{}', 0, 0, 1
                    FROM mailboxes b,
                        generate_series(1, CASE WHEN b.account_id = \(f.account.rawValue) THEN 3000 ELSE 5 END) g
                    WHERE b.name = 'INBOX'
                    """,
                    "ANALYZE messages, expunged",
                ] {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: f.logger)
                }
                let statement = PostgresMailStore.changesStatement(
                    account: f.account, mailbox: inbox.id, since: ModSeq(13000))
                let rows = try await connection.query(
                    PostgresQuery(unsafeSQL: "EXPLAIN (FORMAT JSON) " + statement.sql, binds: statement.binds),
                    logger: f.logger
                ).collect()
                return try rows.map { try $0.decode(String.self) }.joined()
            }
            let scans = Self.scans(in: plan)
            #expect(scans.contains { $0.relation == "messages" && $0.index == "messages_modseq" }, "\(plan)")
            #expect(scans.contains { $0.relation == "expunged" && $0.index == "expunged_modseq" }, "\(plan)")
            #expect(scans.allSatisfy { $0.index != nil }, "\(plan)")
        }
    }

    /// The scans of an EXPLAIN (FORMAT JSON) plan: relation, index, and whether a Nested Loop is above them.
    static func scans(in json: String) -> [(relation: String, index: String?, underLoop: Bool)] {
        var found: [(relation: String, index: String?, underLoop: Bool)] = []
        func walk(_ node: [String: Any], _ underLoop: Bool) {
            if let relation = node["Relation Name"] as? String {
                found.append((relation, node["Index Name"] as? String, underLoop))
            }
            let loop = underLoop || (node["Node Type"] as? String) == "Nested Loop"
            for child in node["Plans"] as? [[String: Any]] ?? [] { walk(child, loop) }
        }
        let top = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [[String: Any]] ?? []
        for entry in top { if let plan = entry["Plan"] as? [String: Any] { walk(plan, false) } }
        return found
    }

    /// EXPUNGE (and CLOSE) with nothing `\Deleted` answers while another transaction holds the mailbox row, as
    /// a long delivery or a large STORE does: it has nothing to remove, so it does not queue for the lock. One
    /// with a message to remove still takes the lock and removes it.
    @Test func anExpungeWithNothingToRemoveDoesNotWaitForTheMailboxLock() async throws {
        try await StoreFixture.with { f in
            for n in 0..<3 { try await f.append("m\(n)") }
            let snapshot = try await f.snapshot()
            try await f.configuration.withConnection(logger: f.logger) { holder in
                _ = try await holder.query("BEGIN", logger: f.logger)
                _ = try await holder.query(
                    """
                    SELECT mailbox_id FROM mailboxes
                    WHERE account_id = \(f.account.rawValue) AND mailbox_id = \(snapshot.id.rawValue) FOR UPDATE
                    """, logger: f.logger)
                // Held until ROLLBACK: without the check this waits for the store timeout and fails.
                let none = try await f.store.expunge(
                    account: f.account, mailbox: snapshot.id, uids: nil, logger: f.logger)
                #expect(none.uids.isEmpty && none.modSeq == nil)
                let someOfNone = try await f.store.expunge(
                    account: f.account, mailbox: snapshot.id, uids: [snapshot.uids[1]], logger: f.logger)
                #expect(someOfNone.uids.isEmpty)
                _ = try await holder.query("ROLLBACK", logger: f.logger)
            }
            _ = try await f.store.updateFlags(
                account: f.account, mailbox: snapshot.id, uids: [snapshot.uids[1]],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
            let removed = try await f.store.expunge(
                account: f.account, mailbox: snapshot.id, uids: nil, logger: f.logger)
            #expect(removed.uids == [snapshot.uids[1]] && removed.modSeq != nil)
            #expect(try await f.snapshot().uids == [snapshot.uids[0], snapshot.uids[2]])
        }
    }

    /// SELECT, the read of changes (NOOP, IDLE) and the read of content slices (BODY[…]) are each planned once per
    /// connection, not at every execution. With the values of their bounds in sight, the plans PostgreSQL makes for
    /// given values looked cheaper than its generic plan, so it never switched to it: every SELECT was planned afresh
    /// (0.4 ms of planning for 0.02 ms of execution on the benchmark store), and a NOOP's plan read the whole mailbox.
    /// The data: tombstones and messages of other accounts at low modseqs, this account's mailbox far above them.
    @Test func theHotReadsArePlannedOnce() async throws {
        try await StoreFixture.with { f in
            for n in 1...100 { _ = try await f.store.account(login: "small\(n)", create: true, logger: f.logger) }
            try await f.configuration.withConnection(logger: f.logger) { connection in
                for sql in [
                    """
                    INSERT INTO contents (account_id, size, header_length, body, envelope, body_summary,
                        body_structure, parts, search_from, search_to, search_cc, search_bcc, search_subject,
                        search_headers, search_body)
                    SELECT account_id, 1, 0, '', '', '', '', '', '', '', '', '', '', '', '' FROM accounts
                    WHERE account_id <> \(f.account.rawValue)
                    """,
                    """
                    INSERT INTO messages (account_id, mailbox_id, uid, content_id, modseq, internal_date, size)
                    SELECT b.account_id, b.mailbox_id, g, c.content_id, g, 0, 1
                    FROM mailboxes b JOIN contents c USING (account_id), generate_series(1, 80) g
                    WHERE b.name = 'INBOX' AND b.account_id <> \(f.account.rawValue)
                    """,
                    """
                    INSERT INTO expunged (account_id, mailbox_id, uid, modseq, flags, keywords, internal_date, internal_zone,
                        size)
                    SELECT b.account_id, b.mailbox_id, 100 + g, 100 + g, 0, '{}', 0, 0, 1
                    FROM mailboxes b, generate_series(1, 300) g
                    WHERE b.name = 'INBOX' AND b.account_id <> \(f.account.rawValue)
                    """,
                    """
                    UPDATE mailboxes SET highestmodseq = 100000
                    WHERE account_id = \(f.account.rawValue) AND name = 'INBOX'
                    """,
                    "ANALYZE",
                ] {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: f.logger)
                }
            }
            for n in 0..<4 { try await f.append("m\(n)") }
            let contents = try await f.configuration.withConnection(logger: f.logger) { connection in
                try await connection.query(
                    "SELECT content_id FROM contents WHERE account_id = \(f.account.rawValue)", logger: f.logger
                ).collect().map { try $0.decode(Int64.self) }
            }
            // One connection: every statement runs on the backend whose prepared statements are read at the end.
            var configuration = f.configuration.clientConfiguration
            configuration.options.maximumConnections = 1
            configuration.options.minimumConnections = 0
            let client = PostgresClient(configuration: configuration, backgroundLogger: f.logger)
            let running = Task { await client.run() }
            defer { running.cancel() }
            let store = PostgresMailStore(client: client, operationTimeout: .seconds(20))
            for round in 0..<12 {
                let snapshot = try await store.select(
                    account: f.account, name: .inbox, claimRecent: false, logger: f.logger)
                _ = try await store.changes(
                    account: f.account, mailbox: snapshot.id,
                    since: ModSeq(snapshot.highestModSeq.rawValue - Int64(round % 3)), logger: f.logger)
                let slices = contents.prefix(1 + round % 4).map { ContentSlice(contentID: $0, range: 0..<10) }
                #expect(
                    try await store.contentBytes(account: f.account, slices: slices, logger: f.logger).count
                        == slices.count)
                if round % 4 == 3 { try await f.append("r\(round)") }  // SELECT then reads what was added
            }
            let plans = try await client.query(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements", logger: f.logger
            ).collect().map { try $0.decode((String, Int64, Int64).self) }
            for fragment in ["SELECT b.mailbox_id, b.uidvalidity", "SELECT 0 AS kind", "substring(c.body FROM"] {
                let statement = plans.first { $0.0.contains(fragment) }
                #expect(statement != nil, "\(fragment) not prepared: \(plans.map(\.0))")
                if let (_, generic, custom) = statement {
                    #expect(custom <= 5 && generic >= 7, "\(fragment): \(custom) custom, \(generic) generic plans")
                }
            }
        }
    }
}
