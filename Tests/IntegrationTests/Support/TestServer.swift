import AuthPAM
import Foundation
import IMAPEngine
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import StoragePostgres
import Synchronization

@testable import MailHost

/// An in-process MailHost on its own fresh database: the real listener, store, change feed and PAM, on a real TCP
/// port on 127.0.0.1.
final class TestServer: Sendable {
    let configuration: PostgresStoreConfiguration
    let client: PostgresClient
    let store: PostgresMailStore
    let port: Int
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    private init(
        configuration: PostgresStoreConfiguration, client: PostgresClient, store: PostgresMailStore, port: Int,
        group: ServiceGroup, running: Task<Void, any Error>
    ) {
        self.configuration = configuration
        self.client = client
        self.store = store
        self.port = port
        self.group = group
        self.running = running
    }

    /// Starts a server on a new database (or on `database`, to run a second instance beside another one).
    static func start(
        database: PostgresStoreConfiguration? = nil, limits: IMAPLimits = IMAPLimits(),
        operationTimeout: Duration = .seconds(10), poolSize: Int? = nil, searchPoolSize: Int? = nil
    ) async throws -> TestServer {
        guard let pamService = TestEnvironment.pamService else { throw TestEnvironment.Missing() }
        var configuration: PostgresStoreConfiguration
        if let database {
            configuration = database
        } else {
            configuration = try await TestDatabase.create()
        }
        configuration.operationTimeout = operationTimeout
        if let poolSize { configuration.maximumConnections = poolSize }
        if let searchPoolSize { configuration.searchConnections = searchPoolSize }
        let logger = TestEnvironment.logger
        let client = PostgresClient(configuration: configuration.clientConfiguration, backgroundLogger: logger)
        let searchClient = PostgresClient(
            configuration: configuration.searchClientConfiguration, backgroundLogger: logger)
        let store = PostgresMailStore(client: client, searchClient: searchClient, operationTimeout: operationTimeout)
        let feed = ChangeFeed()
        let authenticator = ServeCommand.authenticator(
            ["db", "pam"], credentials: store, pamService: pamService, logger: logger)
        let server = IMAPServerContext(
            store: store, feed: feed, authenticator: authenticator, limits: limits, logger: logger)
        let bound = Mutex<Int?>(nil)
        let listener = IMAPListener(
            kind: .imap, address: ListenAddress(host: "127.0.0.1", port: 0), server: server, logger: logger,
            certificates: nil, proxyTrusted: [], onListening: { address in bound.withLock { $0 = address.port } })
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: client), .init(service: searchClient),
                    .init(
                        service: FeedService(feed: PostgresChangeFeed(client: client, feed: feed, logger: logger))
                    ),
                    .init(service: listener),
                ], logger: logger))
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while bound.withLock({ $0 }) == nil {
            guard ContinuousClock.now < deadline else { throw TestFailure("server did not start listening") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return TestServer(
            configuration: configuration, client: client, store: store, port: bound.withLock { $0 } ?? 0, group: group,
            running: running)
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
        try await store.account(login: login, create: true, logger: TestEnvironment.logger)
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
            let result = try await store.append(
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

    /// Stops the server and drops its database.
    func stopAndDrop() async {
        await stop()
        await TestDatabase.drop(configuration)
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
struct FeedService: Service {
    let feed: PostgresChangeFeed
    func run() async throws {
        await cancelWhenGracefulShutdown { await feed.run() }
    }
}
