import AuthPAM
import Foundation
import GRDB
import IMAPEngine
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import StoragePostgres
import StorageSQLite
import StoreAccounts
import Synchronization

@testable import MailHost

/// The store calls the tests make directly, on either backend.
typealias TestStore = any DeliveryStore & CredentialStore & StoreMaintenance

/// An in-process MailHost on its own fresh store: the real listener, store, change feed and authentication, on a real
/// TCP port on 127.0.0.1. The store is a new PostgreSQL database, or with `MAILHOST_TEST_STORE=sqlite` a new SQLite
/// file (`TestEnvironment.storeKind`); on SQLite the PAM users `tim` and `mhtest2` exist as store accounts with
/// the same passwords, so the same logins work without PAM.
final class TestServer: Sendable {
    let storage: TestStorage
    /// Whether `stopAndDrop` drops the store (the server made it).
    private let ownsStorage: Bool
    private let postgresClient: PostgresClient?
    let store: TestStore
    /// The same store with a long deadline, for the tests' setup (`seed`, `account`): on a loaded machine a seeding
    /// APPEND can outlast a short `operationTimeout`, and its outcome would then be unknown. What a test checks goes
    /// through `store` and the server.
    private let setupStore: TestStore
    let port: Int
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    private init(
        storage: TestStorage, ownsStorage: Bool, postgresClient: PostgresClient?, store: TestStore,
        setupStore: TestStore, port: Int, group: ServiceGroup, running: Task<Void, any Error>
    ) {
        self.storage = storage
        self.ownsStorage = ownsStorage
        self.postgresClient = postgresClient
        self.store = store
        self.setupStore = setupStore
        self.port = port
        self.group = group
        self.running = running
    }

    /// The PostgreSQL database (for tests that need PostgreSQL itself; they run only on it).
    var configuration: PostgresStoreConfiguration {
        get throws { try storage.postgres }
    }

    var client: PostgresClient {
        get throws {
            guard let postgresClient else {
                throw TestFailure(
                    "a PostgreSQL-only test ran on SQLite: mark its suite TestEnvironment.readyOnPostgres")
            }
            return postgresClient
        }
    }

    /// The storage setting for spawned `mailhost` and `mailadmin` processes.
    var setting: String { storage.setting }

    /// Starts a server on a new store, or on `storage` beside another server (a second instance on PostgreSQL; on
    /// SQLite a helper beside a spawned `mailhost`, which holds the file's serving lock).
    static func start(
        on given: TestStorage? = nil, limits: IMAPLimits = IMAPLimits(), operationTimeout: Duration = .seconds(10),
        poolSize: Int? = nil, searchPoolSize: Int? = nil
    ) async throws -> TestServer {
        let logger = TestEnvironment.logger
        let feed = ChangeFeed()
        let storage: TestStorage
        if let given {
            storage = given
        } else {
            storage = try await TestStorage.create()
        }
        let store: TestStore
        let setupStore: TestStore
        var postgresClient: PostgresClient?
        var storeServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        switch storage.backend {
        case .sqlite:
            let backend = try SQLiteBackend(
                path: storage.sqlitePath, serving: given == nil,
                operationTimeout: operationTimeout, logger: logger)
            guard let sqlite = backend.mail as? SQLiteMailStore else { throw TestFailure("not a SQLite store") }
            store = sqlite
            setupStore = sqlite  // SQLite calls have no deadline of their own
            storeServices.append(.init(service: StoreService(backend: backend, feed: feed)))
        case .postgres(var configuration):
            configuration.operationTimeout = operationTimeout
            if let poolSize { configuration.maximumConnections = poolSize }
            if let searchPoolSize { configuration.searchConnections = searchPoolSize }
            // The server's pools (PostgresBackend), one per event loop.
            let pools = PostgresBackend.commandPools(configuration, genericPlans: true, logger: logger)
            let searchPools = PostgresBackend.searchPools(configuration, logger: logger)
            store = PostgresMailStore(pools: pools, searchPools: searchPools, operationTimeout: operationTimeout)
            setupStore = PostgresMailStore(
                pools: pools, searchPools: searchPools, operationTimeout: max(operationTimeout, .seconds(120)))
            // For the tests' own statements.
            var clientConfiguration = configuration.clientConfiguration
            clientConfiguration.options.maximumConnections = 2
            let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
            postgresClient = client
            storeServices += [
                .init(service: PoolsService(pools: pools)),
                .init(service: PoolsService(pools: searchPools)),
                .init(service: client),
                .init(service: FeedService(feed: PostgresChangeFeed(client: pools.first, feed: feed, logger: logger))),
            ]
        }
        let authenticator = ServeCommand.authenticator(
            storage.authMethods(), credentials: store, pamService: TestEnvironment.pamService ?? "mailhost-test",
            logger: logger)
        let server = IMAPServerContext(
            store: store, feed: feed, authenticator: authenticator, limits: limits, logger: logger)
        let bound = Mutex<Int?>(nil)
        let listener = IMAPListener(
            kind: .imap, address: ListenAddress(host: "127.0.0.1", port: 0), server: server, logger: logger,
            certificates: nil, proxyTrusted: [], onListening: { address in bound.withLock { $0 = address.port } })
        let group = ServiceGroup(
            configuration: .init(services: storeServices + [.init(service: listener)], logger: logger))
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while bound.withLock({ $0 }) == nil {
            guard ContinuousClock.now < deadline else { throw TestFailure("server did not start listening") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return TestServer(
            storage: storage, ownsStorage: given == nil, postgresClient: postgresClient, store: store,
            setupStore: setupStore, port: bound.withLock { $0 } ?? 0, group: group, running: running)
    }

    /// Runs SQL on the store behind the server's back (both backends share the table and column names the tests
    /// touch), e.g. to make rows look as an older version left them.
    func executeSQL(_ sql: String) async throws {
        try await storage.executeSQL(sql)
    }

    func connect() async throws -> IMAPTestClient {
        try await IMAPTestClient.connect(port: port)
    }

    /// Connects and logs in as `user` (a PAM user of the test environment).
    func login(_ user: String = "tim", password: String = "timmy") async throws -> IMAPTestClient {
        let client = try await connect()
        _ = try await client.readLine()  // greeting
        try await client.expectOK("L", "LOGIN \(user) \"\(password)\"")
        return client
    }

    /// The account of a PAM user, provisioned as at first login.
    func account(_ login: String = "tim") async throws -> AccountID {
        try await setupStore.account(login: login, create: true, logger: TestEnvironment.logger)
    }

    /// Appends messages through the store (the same path as IMAP APPEND).
    @discardableResult
    func seed(
        _ login: String = "tim", mailbox: String = "INBOX", messages: [String], flags: [MessageFlags]? = nil,
        date: InternalDate? = nil
    ) async throws -> [UID] {
        let account = try await account(login)
        var uids: [UID] = []
        for (i, text) in messages.enumerated() {
            let parsed = ParsedMessage(parsing: Array(text.utf8))
            let result = try await setupStore.append(
                account: account, mailbox: MailboxName(normalizing: mailbox), message: parsed,
                flags: flags?[i] ?? MessageFlags(),
                date: date ?? InternalDate(secondsSinceEpoch: 1_700_000_000 + Int64(i) * 60, zoneMinutes: 0),
                logger: TestEnvironment.logger)
            uids.append(result.uid)
        }
        return uids
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
    }

    /// Stops the server and drops its store.
    func stopAndDrop() async {
        await stop()
        if ownsStorage { await storage.drop() }
    }
}

/// Runs `body` with a fresh server, always stopping it.
func withTestServer<T>(_ body: (TestServer) async throws -> T) async throws -> T {
    let server = try await TestServer.start()
    do {
        let result = try await body(server)
        await server.stopAndDrop()
        return result
    } catch {
        await server.stopAndDrop()
        throw error
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A simple message for seeding.
func testMessage(subject: String, from: String = "Alice <alice@example.com>", body: String = "Hello.\r\n") -> String {
    "From: \(from)\r\nTo: Tim <tim@example.com>\r\nSubject: \(subject)\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
        + "Message-ID: <\(subject.hashValue)@example.com>\r\n\r\n\(body)"
}

/// The change feed's LISTEN loop as a service of the test server's group (the server proper runs it inside
/// `StoreService`).
struct PoolsService: Service {
    let pools: LoopPools
    func run() async throws {
        await cancelWhenGracefulShutdown { await pools.run() }
    }
}

struct FeedService: Service {
    let feed: PostgresChangeFeed
    func run() async throws {
        await cancelWhenGracefulShutdown { await feed.run() }
    }
}
