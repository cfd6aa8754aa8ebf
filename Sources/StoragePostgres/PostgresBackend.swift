import IMAPEngine
import NIOPosix
import Logging
import PostgresNIO

extension PostgresMailStore: CredentialStore {
    /// The password hash and state of a login, nil when there is no such account.
    public func credentials(login: String, logger: Logger) async throws(StoreError) -> StoreCredentials? {
        let client = self.client
        return try await run(logger) {
            let rows = try await client.prepared(
                "SELECT password_hash, disabled FROM accounts WHERE login = \(login)", logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (hash, disabled) = try row.decode((String?, Bool).self)
            return StoreCredentials(passwordHash: hash, disabled: disabled)
        }
    }
}

extension PostgresMailStore: DeliveryStore, StoreMaintenance {}

/// The schema of the database a configuration names (`StoreSchema`): each call on its own connection, which fails
/// fast with a clear reason when the database cannot be reached.
public struct PostgresSchemaStore: StoreSchema {
    public let configuration: PostgresStoreConfiguration

    public init(configuration: PostgresStoreConfiguration) { self.configuration = configuration }

    public var latestVersion: Int { PostgresSchema.latestVersion }

    public func currentVersion(logger: Logger) async throws -> Int? {
        try await configuration.withConnection(logger: logger) { connection in
            try await PostgresSchema.currentVersion(connection, logger: logger)
        }
    }

    public func migrate(logger: Logger) async throws -> [Int] {
        try await configuration.withConnection(logger: logger) { connection in
            try await PostgresSchema.migrate(connection, logger: logger)
        }
    }

    public func prepare(logger: Logger) async throws -> (found: SchemaState, applied: [Int]) {
        try await configuration.withConnection(logger: logger) { connection in
            // Under the migration lock: an instance starting beside one that is creating the schema waits for it
            // instead of finding it half made ("behind").
            try await PostgresSchema.withMigrationLock(connection, logger: logger) {
                let found = try await PostgresSchema.state(connection, logger: logger)
                guard found == .empty else { return (found, []) }
                return (found, try await PostgresSchema.migrate(connection, logger: logger))
            }
        }
    }
}

/// The PostgreSQL backend (`StoreBackend`): a connection pool for the IMAP commands, a smaller one for SEARCH, and
/// the LISTEN connection of the change feed, all made from one configuration.
public struct PostgresBackend: StoreBackend {
    public let configuration: PostgresStoreConfiguration
    let pools: LoopPools
    let searchPools: LoopPools?
    let store: PostgresMailStore
    let logger: Logger

    /// `separateSearchPool`: SEARCH on a pool of its own (`searchConnections`), so that a few heavy searches never
    /// fill the pool every other command needs (servers); tools share one pool.
    /// `logger` is the change feed's; `poolLogger` takes what the pools log.
    public init(
        configuration: PostgresStoreConfiguration, separateSearchPool: Bool, logger: Logger, poolLogger: Logger? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        let poolLogger = poolLogger ?? logger
        pools = Self.commandPools(configuration, genericPlans: separateSearchPool, logger: poolLogger)
        searchPools = separateSearchPool ? Self.searchPools(configuration, logger: poolLogger) : nil
        store = PostgresMailStore(
            pools: pools, searchPools: searchPools, operationTimeout: configuration.operationTimeout)
    }

    /// A server's pools for every command but SEARCH: one per event loop, with a connection reserved for the change
    /// feed's LISTEN.
    /// `genericPlans`: statements planned generically from the start (`commandPoolConnectionConfiguration`), for
    /// pools that SEARCH does not use.
    public static func commandPools(_ configuration: PostgresStoreConfiguration, genericPlans: Bool, logger: Logger)
        -> LoopPools
    {
        LoopPools(
            connection: genericPlans
                ? configuration.commandPoolConnectionConfiguration : configuration.poolConnectionConfiguration,
            maximumConnections: configuration.maximumConnections, group: MultiThreadedEventLoopGroup.singleton,
            reserved: 1,  // the change feed's LISTEN connection
            idleTimeout: configuration.poolIdleTimeout, logger: logger)
    }

    /// A server's pools for SEARCH, one per event loop.
    public static func searchPools(_ configuration: PostgresStoreConfiguration, logger: Logger) -> LoopPools {
        LoopPools(
            connection: configuration.searchPoolConnectionConfiguration,
            maximumConnections: configuration.searchConnections, group: MultiThreadedEventLoopGroup.singleton,
            idleTimeout: configuration.poolIdleTimeout, logger: logger)
    }

    public var mail: any DeliveryStore { store }
    public var credentials: any CredentialStore { store }
    public var administration: any StoreAdministration { PostgresAdministration(store: store) }
    public var schema: any StoreSchema { PostgresSchemaStore(configuration: configuration) }
    public var maintenance: any StoreMaintenance { store }
    public var transfer: any StoreTransfer { store }

    public func run(feed: ChangeFeed?) async {
        let (pools, searchPools, logger) = (self.pools, self.searchPools, self.logger)
        await withDiscardingTaskGroup { group in
            group.addTask { await pools.run() }
            if let searchPools { group.addTask { await searchPools.run() } }
            if let feed {
                group.addTask { await PostgresChangeFeed(client: pools.first, feed: feed, logger: logger).run() }
            }
        }
    }
}
