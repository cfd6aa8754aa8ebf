import IMAPEngine
import Logging
import PostgresNIO
import StoragePostgres
import Testing

/// The hot statements are prepared, and after five executions PostgreSQL may plan them generically, without the
/// values. These run each UID-set statement with generic plans forced (`plan_cache_mode`) and with the default
/// choice, with sets of every shape (contiguous, holes, sparse, expunged elsewhere), and check the exact answer.
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
struct PreparedStatementTests {
    static let rounds = 12

    @Test(arguments: [true, false])
    func fetchAnswersExactlyTheAskedUIDs(generic: Bool) async throws {
        try await StoreFixture.with { f in
            try await Self.withPlans(generic: generic, f) { try await Self.checkFetch($0) }
        }
    }

    @Test(arguments: [true, false])
    func flagUpdatesAndExpungesTouchExactlyTheAskedUIDs(generic: Bool) async throws {
        try await StoreFixture.with { f in
            try await Self.withPlans(generic: generic, f) { try await Self.checkUpdates($0) }
        }
    }

    /// `body` with a store on new connections that plan prepared statements generically when `generic`.
    static func withPlans(
        generic: Bool, _ f: StoreFixture, _ body: @Sendable (StoreFixture) async throws -> Void
    ) async throws {
        let mode = generic ? "force_generic_plan" : "auto"
        try await f.configuration.withConnection(logger: f.logger) { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "ALTER DATABASE \(f.configuration.database) SET plan_cache_mode = \(mode)"),
                logger: f.logger)
        }
        let client = PostgresClient(configuration: f.configuration.clientConfiguration, backgroundLogger: f.logger)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let store = PostgresMailStore(client: client, operationTimeout: .seconds(20))
        try await body(StoreFixture(store: store, client: client, configuration: f.configuration, account: f.account))
    }

    static func checkFetch(_ f: StoreFixture) async throws {
        for n in 0..<40 { try await f.append("m\(n)") }
        let snapshot = try await f.snapshot()
        let uids = snapshot.uids
        // Expunged through another path after this "session" read its UIDs: served from the tombstones.
        let gone = [uids[5], uids[30]]
        _ = try await f.store.updateFlags(
            account: f.account, mailbox: snapshot.id, uids: gone,
            update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
        _ = try await f.store.expunge(account: f.account, mailbox: snapshot.id, uids: gone, logger: f.logger)
        let sets: [[UID]] = [
            uids,  // all, contiguous
            [uids[0], uids[2], uids[3], uids[5], uids[6]],  // holes, mostly full: read by range, filtered
            [uids[1], uids[39]],  // sparse: joined with the list
            [uids[30]],  // one, expunged
            Array(uids[10..<20]) + [uids[38]],
        ]
        for _ in 0..<rounds {
            for set in sets {
                let records = try await f.store.fetch(
                    account: f.account, mailbox: snapshot.id, uids: set, columns: [], logger: f.logger)
                #expect(records.map(\.uid) == set)
                #expect(
                    records.filter { $0.flags.system.contains(.deleted) }.map(\.uid) == set.filter { gone.contains($0) }
                )
            }
        }
    }

    static func checkUpdates(_ f: StoreFixture) async throws {
        for n in 0..<(rounds * 4 + 10) { try await f.append("m\(n)") }
        let snapshot = try await f.snapshot()
        let uids = snapshot.uids
        var live = uids
        for round in 0..<rounds {
            // A sparse set whose range covers the \Deleted messages kept by earlier rounds: they must stay.
            let set = [uids[3 * round], uids[3 * round + 1], uids[uids.count - 1 - round]]
            let stored = try await f.store.updateFlags(
                account: f.account, mailbox: snapshot.id, uids: set,
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
            #expect(stored.map(\.uid) == set)
            #expect(stored.allSatisfy { $0.changed })
            let expunged = try await f.store.expunge(
                account: f.account, mailbox: snapshot.id, uids: [set[0], set[2]], logger: f.logger)
            #expect(expunged.uids == [set[0], set[2]], "round \(round)")
            live.removeAll { $0 == set[0] || $0 == set[2] }
        }
        // What is left: every message not expunged; the \Deleted ones among them are the rounds' middle ones.
        let after = try await f.snapshot()
        #expect(after.uids == live)
        let deleted = try await f.store.fetch(
            account: f.account, mailbox: snapshot.id, uids: after.uids, columns: [], logger: f.logger
        ).filter { $0.flags.system.contains(.deleted) }.count
        #expect(deleted == rounds)
        // EXPUNGE without UIDs takes exactly those.
        let all = try await f.store.expunge(account: f.account, mailbox: snapshot.id, uids: nil, logger: f.logger)
        #expect(all.uids.count == rounds)
    }
}
