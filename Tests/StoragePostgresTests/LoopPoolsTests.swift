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
        try await StoreFixture.with { f in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
            var configuration = f.configuration.clientConfiguration
            configuration.options.maximumConnections = 5
            let pools = LoopPools(configuration: configuration, group: group, backgroundLogger: StoreEnvironment.logger)
            #expect(pools.clients.count == 3)
            try await Self.running(pools) {
                for loop in group.makeIterator() {
                    let pool = try await loop.submit { pools.here }.get()
                    let leasedOn = try await pool.withConnection { $0.eventLoop }
                    #expect(leasedOn === loop)
                }
                // Off the loops (a tool, the change feed): the first pool.
                #expect(pools.here === pools.clients[0])
            }
            try await group.shutdownGracefully()
        }
    }

    @Test func fewerConnectionsThanLoopsMakeFewerPools() async throws {
        try await StoreFixture.with { f in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
            var configuration = f.configuration.clientConfiguration
            configuration.options.maximumConnections = 2
            let pools = LoopPools(configuration: configuration, group: group, backgroundLogger: StoreEnvironment.logger)
            #expect(pools.clients.count == 2)
            try await Self.running(pools) {
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
            try await group.shutdownGracefully()
        }
    }

    /// `body` while every pool runs.
    static func running(_ pools: LoopPools, _ body: () async throws -> Void) async throws {
        let runs = pools.clients.map { client in Task { await client.run() } }
        defer { for run in runs { run.cancel() } }
        try await body()
    }
}
