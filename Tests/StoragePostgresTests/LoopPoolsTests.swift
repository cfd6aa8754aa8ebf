import NIOCore
import NIOPosix
import PostgresNIO
import StoragePostgres
import Testing

/// `LoopPools`: a store call made on an event loop leases a connection that lives on that loop (no thread hop), and
/// the pools never outnumber the connections they share.
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
struct LoopPoolsTests {
    @Test func eachLoopLeasesConnectionsOnItself() async throws {
        try await Self.withPools(loops: 3, connections: 5) { group, pools in
            #expect(pools.clients.count == 3)
            for loop in group.makeIterator() {
                let pool = try await loop.submit { pools.here }.get()
                let leasedOn = try await pool.withConnection { $0.eventLoop }
                #expect(leasedOn === loop)
            }
            // Off the loops (a tool, the change feed): the first pool.
            #expect(pools.here === pools.clients[0])
        }
    }

    @Test func fewerConnectionsThanLoopsMakeFewerPools() async throws {
        try await Self.withPools(loops: 3, connections: 2) { group, pools in
            #expect(pools.clients.count == 2)
            var used: [ObjectIdentifier] = []
            for loop in group.makeIterator() {
                let pool = try await loop.submit { pools.here }.get()
                used.append(ObjectIdentifier(pool))
                // Every loop's pool answers, the third loop's on a connection of another loop.
                let answer = try await pool.query("SELECT 7").collect().first?.decode(Int.self)
                #expect(answer == 7)
            }
            #expect(Set(used).count == 2)
        }
    }

    /// `pool_size=2` on two loops: one connection is the change feed's for good, and the other must still serve both
    /// loops (split in two pools of one, the first loop's sessions waited forever).
    @Test func aReservedConnectionLeavesEveryLoopOne() async throws {
        try await Self.withPools(loops: 2, connections: 2, reserved: 1) { group, pools in
            #expect(pools.clients.count == 1)
            let (release, releaser) = AsyncStream<Void>.makeStream()
            let (leased, leaser) = AsyncStream<Void>.makeStream()
            let feed = Task {
                try await pools.clients[0].withConnection { _ in
                    leaser.yield()
                    for await _ in release {}
                }
            }
            for await _ in leased { break }
            for loop in group.makeIterator() {
                let pool = try await loop.submit { pools.here }.get()
                let answer = try await Self.within(.seconds(30)) {
                    try await pool.query("SELECT 7").collect().first?.decode(Int.self)
                }
                #expect(answer == 7)
            }
            releaser.finish()
            try await feed.value
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

    /// `body` with pools over a group of `loops` loops sharing `connections` (`reserved` of them the first pool's on
    /// top of its share), while every pool runs.
    static func withPools(
        loops: Int, connections: Int, reserved: Int = 0,
        _ body: @Sendable (MultiThreadedEventLoopGroup, LoopPools) async throws -> Void
    ) async throws {
        try await StoreFixture.with { f in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
            var configuration = f.configuration.clientConfiguration
            configuration.options.maximumConnections = connections
            // Told apart from the fixture's own connections in pg_stat_activity.
            configuration.options.additionalStartupParameters = configuration.options.additionalStartupParameters.map {
                $0.0 == "application_name" ? ($0.0, "mailhost-pools-test") : $0
            }
            let pools = LoopPools(
                configuration: configuration, group: group, reserved: reserved,
                backgroundLogger: StoreEnvironment.logger)
            let runs = pools.clients.map { client in Task { await client.run() } }
            do {
                try await body(group, pools)
            } catch {
                for run in runs { run.cancel() }
                try await group.shutdownGracefully()
                throw error
            }
            for run in runs { run.cancel() }
            try await group.shutdownGracefully()
        }
    }
}
