import NIOCore
import NIOPosix
import PostgresNIO
@testable import StoragePostgres
import Synchronization
import Testing

/// `LoopPools`: a store call made on an event loop leases a connection that lives on that loop (no thread hop), and
/// the pools never outnumber the connections they share. `LoopPool`: connections reopened after they close, waiting
/// leases served in turn or cancelled, a database that cannot be reached refused at once, and shutdown. Serialized:
/// `terminateConnections` ends every pool connection of the test application, other tests' too (a connection another
/// test holds, or one it waits for).
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason), .serialized)
struct LoopPoolsTests {
    @Test func eachLoopLeasesConnectionsOnItself() async throws {
        try await Self.withPools(loops: 3, connections: 5) { group, pools, _ in
            #expect(pools.pools.count == 3)
            var loops: [any EventLoop] = []
            for loop in group.makeIterator() {
                loops.append(loop)
                let client = try await loop.submit { pools.here }.get()
                let leasedOn = try await client.withConnection { $0.eventLoop }
                #expect(leasedOn === loop)
            }
            // Off the loops (a tool, the change feed): the first pool.
            let offLoop = try await pools.here.withConnection { $0.eventLoop }
            #expect(offLoop === loops[0])
        }
    }

    @Test func fewerConnectionsThanLoopsMakeFewerPools() async throws {
        try await Self.withPools(loops: 3, connections: 2) { group, pools, _ in
            #expect(pools.pools.count == 2)
            for loop in group.makeIterator() {
                let client = try await loop.submit { pools.here }.get()
                // Every loop's pool answers, the third loop's on a connection of another loop.
                let answer = try await client.query("SELECT 7", logger: StoreEnvironment.logger).rows.first?.decode(
                    Int.self)
                #expect(answer == 7)
            }
            #expect(pools.pools.map(\.openCount).reduce(0, +) <= 2)
        }
    }

    /// `pool_size=2` on two loops: one connection is the change feed's for good, and the other must still serve both
    /// loops (split in two pools of one, the first loop's sessions waited forever).
    @Test func aReservedConnectionLeavesEveryLoopOne() async throws {
        try await Self.withPools(loops: 2, connections: 2, reserved: 1) { group, pools, _ in
            #expect(pools.pools.count == 1)
            let feed = try await Self.hold(pools.first)
            for loop in group.makeIterator() {
                let client = try await loop.submit { pools.here }.get()
                let answer = try await Self.within(.seconds(30)) {
                    try await client.query("SELECT 7", logger: StoreEnvironment.logger).rows.first?.decode(Int.self)
                }
                #expect(answer == 7)
            }
            try await feed.release()
        }
    }

    /// Connections the server closed (a restart, an administrator) are dropped and replaced by the next lease.
    @Test func closedConnectionsAreReplaced() async throws {
        try await Self.withPools(loops: 1, connections: 3) { _, pools, f in
            let client = pools.first
            let pool = pools.pools[0]
            // Three connections open at once, then idle in the pool.
            let connections = try await withThrowingTaskGroup(of: Void.self) { group in
                let (release, releaser) = AsyncStream<Void>.makeStream()
                let (leased, leaser) = AsyncStream<PostgresConnection>.makeStream()
                for _ in 0..<3 {
                    group.addTask {
                        try await client.withConnection { connection in
                            leaser.yield(connection)
                            for await _ in release {}
                        }
                    }
                }
                var connections: [PostgresConnection] = []
                for await connection in leased {
                    connections.append(connection)
                    if connections.count == 3 { break }
                }
                releaser.finish()
                try await group.waitForAll()
                return connections
            }
            #expect(pool.openCount == 3)
            try await Self.terminateConnections(f)
            // Each slot goes back when its channel closes.
            try await Self.waitUntil { connections.allSatisfy(\.isClosed) && pool.openCount == 0 }
            let answer = try await client.query("SELECT 7", logger: StoreEnvironment.logger).rows.first?.decode(
                Int.self)
            #expect(answer == 7)
            #expect(pool.openCount == 1)
        }
    }

    /// The pools' TCP connections carry the read-completion guard, keepalives and a bound on unacknowledged data (a
    /// database host gone without a word is found within about a minute and a half, not at TCP's 15-minute
    /// retransmission limit).
    @Test func connectionsWatchTheirSocket() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, _ in
            for (option, value) in LoopPool.socketOptions {
                let set = try await pools.first.withConnection { try await LoopPool.socketOption(option, of: $0) }
                // SO_KEEPALIVE reads back as any non-zero value.
                #expect(set.map { value == 1 ? $0 != 0 : $0 == value } == true, "\(option): \(String(describing: set))")
            }
            // And the read-completion guard, added in the same turn of the connection's loop.
            #expect(try await pools.first.withConnection { try await ReadCompleteGuard.isInstalled(on: $0) })
        }
    }

    /// The guard follows the protocol's framing both ways: one Sync per statement sent, one ReadyForQuery per Sync
    /// answered, whether the answer is thousands of rows over many reads, an error, or a transaction's three
    /// statements. A write waits for exactly that (`PostgresMailStore.write`).
    @Test func theGuardCountsEveryStatementAndItsAnswer() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, _ in
            try await Self.checkCommitWatch(pools.pools[0])
        }
    }

    static func checkCommitWatch(_ pool: LoopPool) async throws {
        let logger = StoreEnvironment.logger
        try await pool.withConnection { connection, watch in
            let watch = try #require(watch)
            let before = watch.counts
            #expect(before.sent == before.received)
            let rows = try await connection.query(
                "SELECT repeat('x', 100) FROM generate_series(1, 20000)", logger: logger
            ).collect()
            #expect(rows.count == 20000)
            try await watch.allAnswered()
            await #expect(throws: PSQLError.self) {
                try await connection.query("SELECT 1 / 0", logger: logger).collect()
            }
            try await watch.allAnswered()
            try await connection.withTransaction(logger: logger) { connection in
                _ = try await connection.query("SELECT 1", logger: logger).collect()
            }
            try await watch.allAnswered()
            let after = watch.counts
            // 1 + 1 + BEGIN, SELECT, COMMIT.
            #expect(after.sent == before.sent + 5, "\(before) → \(after)")
            #expect(after.received == after.sent, "\(before) → \(after)")
        }
    }

    /// A statement sent inside a transaction block is not committed at its Sync: the ReadyForQuery says 'T', the wait
    /// for the commit fails, and the connection is closed rather than given to the next lease (whose statements would
    /// otherwise run in that transaction and vanish with it).
    @Test func aConnectionInsideATransactionConfirmsNoCommitAndIsNotPooledAgain() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, _ in
            let pool = pools.pools[0]
            let logger = StoreEnvironment.logger
            let first = try await pool.withConnection { connection, watch in
                let watch = try #require(watch)
                _ = try await connection.query("BEGIN", logger: logger).collect()
                let pid = try await Self.backendPID(connection)
                await #expect(throws: CommitWatch.Unusable.self) { try await watch.allAnswered() }
                #expect(!watch.reusable)
                return pid
            }
            #expect(try await Self.nextLeasePID(pool) != first)
        }
    }

    /// A connection given back inside a transaction block (a read does not wait for its last answer) is not given to
    /// the next lease: it is closed when given back if that answer is in by then, or else when next leased, and the
    /// lease gets a fresh one.
    @Test func aConnectionGivenBackInsideATransactionIsReplacedAtTheNextLease() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, _ in
            let pool = pools.pools[0]
            let logger = StoreEnvironment.logger
            let (first, watch) = try await pool.withConnection { connection, watch in
                _ = try await connection.query("BEGIN", logger: logger).collect()
                return (try await Self.backendPID(connection), try #require(watch))
            }
            try await Self.waitUntil { watch.counts.received == watch.counts.sent }
            #expect(!watch.reusable)
            #expect(try await Self.nextLeasePID(pool) != first)
        }
    }

    /// The lease-time check alone: a connection given back while its last answer was still on its way (here a watch
    /// driven by hand, pending at the release) and that answer then says 'T' is closed at the next lease, which gets
    /// another connection.
    @Test func aConnectionWhoseLateAnswerSaysInTransactionIsClosedAtTheNextLease() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, _ in
            let pool = pools.pools[0]
            let leased = try await pool.lease()
            let first = try await Self.backendPID(leased.connection)
            let (channel, watch) = try CommitWatchTests.channel()
            try CommitWatchTests.send(channel, "S")
            pool.release(LoopPool.Pooled(connection: leased.connection, watch: watch))
            try CommitWatchTests.answer(channel, "Z", body: [0x54])
            #expect(!watch.reusable)
            #expect(try await Self.nextLeasePID(pool) != first)
            _ = try channel.finish()
        }
    }

    static func backendPID(_ connection: PostgresConnection) async throws -> Int32 {
        let rows = try await connection.query("SELECT pg_backend_pid()", logger: StoreEnvironment.logger).collect()
        return try #require(rows.first).decode(Int32.self)
    }

    /// The backend of the next lease's connection, which must answer idle: it runs in no transaction block.
    static func nextLeasePID(_ pool: LoopPool) async throws -> Int32 {
        try await within(.seconds(30)) {
            try await pool.withConnection { connection, watch in
                let pid = try await backendPID(connection)
                try await #require(watch).allAnswered()
                return pid
            }
        }
    }

    /// `closeIdle`: connections unused since the cutoff close, all but the most recently used one; connections used
    /// since stay. The pool then serves from the one left and opens more on demand.
    @Test func idleConnectionsCloseButTheMostRecentOne() async throws {
        try await Self.withPools(loops: 1, connections: 3) { _, pools, _ in
            let (client, pool) = (pools.first, pools.pools[0])
            var held: [Held] = []
            for _ in 0..<3 { held.append(try await Self.hold(client)) }
            #expect(pool.openCount == 3)
            for connection in held { try await connection.release() }
            #expect(pool.closeIdle(unusedSince: .now - .seconds(3600)) == 0)
            #expect(pool.closeIdle(unusedSince: .now + .seconds(1)) == 2)
            try await Self.waitUntil { pool.openCount == 1 }
            #expect(pool.closeIdle(unusedSince: .now + .seconds(1)) == 0)
            held = []
            for _ in 0..<3 { held.append(try await Self.hold(client)) }
            #expect(pool.openCount == 3)
            for connection in held { try await connection.release() }
        }
    }

    /// With an idle timeout the pool closes its unused connections by itself (its timer), down to one.
    @Test func aPoolWithAnIdleTimeoutShrinksByItself() async throws {
        try await Self.withPools(loops: 1, connections: 3, idleTimeout: .milliseconds(100)) { _, pools, _ in
            let (client, pool) = (pools.first, pools.pools[0])
            var held: [Held] = []
            for _ in 0..<3 { held.append(try await Self.hold(client)) }
            for connection in held { try await connection.release() }
            try await Self.waitUntil { pool.openCount == 1 }
            let answer = try await Self.within(.seconds(30)) {
                try await client.query("SELECT 7", logger: StoreEnvironment.logger).rows.first?.decode(Int.self)
            }
            #expect(answer == 7)
        }
    }

    /// A connection's place in the pool comes back when its channel closes, even if the statement holding it never
    /// returns (PostgresNIO never answers a statement written to a channel that had just closed): here the holder
    /// simply never lets go, and the server closes its connection.
    @Test func aClosedConnectionFreesItsPlaceWhileStillHeld() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, f in
            let client = pools.first
            let held = try await Self.hold(client)
            try await Self.terminateConnections(f)
            try await Self.waitUntil { held.connection.isClosed }
            let answer = try await Self.within(.seconds(30)) {
                try await client.query("SELECT 7", logger: StoreEnvironment.logger).rows.first?.decode(Int.self)
            }
            #expect(answer == 7)
            try await held.release()
            #expect(pools.pools[0].openCount == 1)
        }
    }

    /// A lease that found nothing free and queues just after the holder released (no waiter to hand the connection to,
    /// so it went idle) takes that connection, instead of waiting beside it for the next release.
    @Test func aLeaseQueueingJustAfterAReleaseTakesTheConnection() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, _ in
            let client = pools.first
            let pool = pools.pools[0]
            let held = try await Self.hold(client)
            // Between finding nothing free and queueing: the holder lets go, and its connection is idle again.
            pool.beforeQueueing.withLock { $0 = { try? await held.release() } }
            let answer = try await Self.within(.seconds(30)) { try await client.withConnection { _ in 7 } }
            pool.beforeQueueing.withLock { $0 = nil }
            #expect(answer == 7)
            #expect(pool.openCount == 1)
        }
    }

    /// With every connection leased, a lease waits for one to come back; a waiting lease that is cancelled (the store's
    /// timeout) leaves the queue at once and takes nothing with it.
    @Test func waitingLeasesAreServedInTurnOrCancelled() async throws {
        try await Self.withPools(loops: 1, connections: 1) { _, pools, _ in
            let client = pools.first
            let pool = pools.pools[0]
            let held = try await Self.hold(client)
            let cancelled = Task { try await client.withConnection { _ in 1 } }
            let waiting = Task { try await client.withConnection { $0.isClosed ? 0 : 2 } }
            // Both wait; the first is cancelled and fails at once, while the connection is still held.
            cancelled.cancel()
            await #expect(throws: CancellationError.self) {
                try await Self.within(.seconds(30)) { try await cancelled.value }
            }
            try await held.release()
            #expect(try await Self.within(.seconds(30)) { try await waiting.value } == 2)
            #expect(pool.openCount == 1)
        }
    }

    /// A database that cannot be reached fails the lease with the connection error at once (the store answers
    /// unavailable), and the failed attempt does not count as an open connection.
    @Test func anUnreachableDatabaseFailsAtOnce() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // A port nothing listens on: bound and closed again.
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress?.port ?? 1
        try await probe.close()
        let configuration = PostgresConnection.Configuration(
            host: "127.0.0.1", port: port, username: "nobody", password: nil, database: "none", tls: .disable)
        let pools = LoopPools(
            connection: .success(configuration), maximumConnections: 2, group: group, logger: StoreEnvironment.logger)
        let running = Task { await pools.run() }
        for _ in 0..<3 {
            await #expect(throws: LoopPool.ConnectFailed.self) {
                try await Self.within(.seconds(30)) { try await pools.first.withConnection { _ in 1 } }
            }
        }
        #expect(pools.pools[0].openCount == 0)
        running.cancel()
        await running.value
        try await group.shutdownGracefully()
    }

    /// Stopping the pools refuses leases, fails waiting ones, and closes connections as they come back.
    @Test func stoppedPoolsRefuseLeasesAndCloseConnections() async throws {
        try await StoreFixture.with { f in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let pools = LoopPools(
                connection: Self.configuration(f), maximumConnections: 1, group: group,
                logger: StoreEnvironment.logger)
            let running = Task { await pools.run() }
            let held = try await Self.hold(pools.first)
            let waiting = Task { try await pools.first.withConnection { _ in 1 } }
            running.cancel()
            await running.value
            await #expect(throws: LoopPool.Closed.self) {
                try await Self.within(.seconds(30)) { try await waiting.value }
            }
            await #expect(throws: LoopPool.Closed.self) { try await pools.first.withConnection { _ in 1 } }
            try await held.release()
            try await Self.waitUntil { held.connection.isClosed && pools.pools[0].openCount == 0 }
            try await group.shutdownGracefully()
        }
    }

    static let application = "mailhost-pools-test"

    /// A connection leased from a pool by a task of its own, and held until `release`.
    struct Held: Sendable {
        let connection: PostgresConnection
        let releaser: AsyncStream<Void>.Continuation
        let task: Task<Void, any Error>

        /// Lets the connection go, and waits until it is back in the pool.
        func release() async throws {
            releaser.finish()
            try await task.value
        }
    }

    static func hold(_ client: GuardedClient) async throws -> Held {
        let (release, releaser) = AsyncStream<Void>.makeStream()
        let (leased, leaser) = AsyncStream<PostgresConnection>.makeStream()
        let task = Task {
            defer { leaser.finish() }
            try await client.withConnection { connection in
                leaser.yield(connection)
                for await _ in release {}
            }
        }
        var iterator = leased.makeAsyncIterator()
        guard let connection = await iterator.next() else {
            try await task.value
            throw TimedOut(what: "no connection leased")
        }
        return Held(connection: connection, releaser: releaser, task: task)
    }

    /// Terminates the pools' connections on the server, from a connection of the test's own.
    static func terminateConnections(_ f: StoreFixture) async throws {
        try await f.configuration.withConnection(logger: StoreEnvironment.logger) { connection in
            _ = try await connection.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = \(application)",
                logger: StoreEnvironment.logger)
        }
    }

    struct TimedOut: Error {
        var what = ""
    }

    /// `operation`'s answer, or `TimedOut` if it has none within `limit` (so that a starved pool fails the test instead
    /// of hanging it).
    static func within<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T)
        async throws -> T
    {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw TimedOut()
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw TimedOut() }
            return first
        }
    }

    /// Polls `condition` every 20 ms until it holds; `TimedOut` after 30 s (a hang guard, not a timing assertion).
    static func waitUntil(_ condition: @Sendable () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: "condition") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The fixture's database, with connections told apart from the fixture's own in pg_stat_activity.
    static func configuration(_ f: StoreFixture) -> Result<PostgresConnection.Configuration, any Error> {
        f.configuration.poolConnectionConfiguration.map { configuration in
            var configuration = configuration
            configuration.options.additionalStartupParameters = configuration.options.additionalStartupParameters.map {
                $0.0 == "application_name" ? ($0.0, application) : $0
            }
            return configuration
        }
    }

    /// A server's command pools plan every statement generically from the first execution; its SEARCH pools, and
    /// the pools of a tool (no separate SEARCH pool), keep PostgreSQL's choice (`commandPoolConnectionConfiguration`).
    @Test func commandPoolsOfAServerPlanGenericallyAndSearchPoolsDoNot() async throws {
        try await StoreFixture.with { f in
            var configuration = f.configuration
            configuration.maximumConnections = 2
            let logger = StoreEnvironment.logger
            func planMode(_ pools: LoopPools) async throws -> String {
                let running = Task { await pools.run() }
                let rows: Result<[PostgresRow], any Error>
                do {
                    rows = .success(try await pools.first.query("SHOW plan_cache_mode", logger: logger).rows)
                } catch {
                    rows = .failure(error)
                }
                running.cancel()
                await running.value  // the pools close their connections
                return try #require(try rows.get().first).decode(String.self)
            }
            let server = try await planMode(
                PostgresBackend.commandPools(configuration, genericPlans: true, logger: logger))
            let tool = try await planMode(
                PostgresBackend.commandPools(configuration, genericPlans: false, logger: logger))
            let search = try await planMode(PostgresBackend.searchPools(configuration, logger: logger))
            #expect(server == "force_generic_plan")
            #expect(tool == "auto")
            #expect(search == "auto")
        }
    }

    /// `body` with pools over a group of `loops` loops sharing `connections` (`reserved` of them the first pool's on
    /// top of its share), while the pools run.
    static func withPools(
        loops: Int, connections: Int, reserved: Int = 0, idleTimeout: Duration? = nil,
        _ body: @Sendable (MultiThreadedEventLoopGroup, LoopPools, StoreFixture) async throws -> Void
    ) async throws {
        try await StoreFixture.with { f in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
            let pools = LoopPools(
                connection: configuration(f), maximumConnections: connections, group: group, reserved: reserved,
                idleTimeout: idleTimeout, logger: StoreEnvironment.logger)
            let running = Task { await pools.run() }
            do {
                try await body(group, pools, f)
            } catch {
                running.cancel()
                await running.value
                try await group.shutdownGracefully()
                throw error
            }
            running.cancel()
            await running.value
            try await group.shutdownGracefully()
        }
    }
}
