import Foundation
import IMAPEngine
import Logging
import PostgresNIO
import StoragePostgres
import StorageSQLite
import Synchronization
import Testing

/// A `PostgresMailStore` on a fresh database of the server named by `MAILHOST_TEST_DATABASE_URL` (set by
/// scripts/test). Without it the suite is skipped, loudly; under `CI=true` it fails instead.
enum StoreEnvironment {
    static let url = ProcessInfo.processInfo.environment["MAILHOST_TEST_DATABASE_URL"]
    static var ready: Bool { url != nil || ProcessInfo.processInfo.environment["CI"] == "true" }
    static let skipReason: Comment = "MAILHOST_TEST_DATABASE_URL is not set: run the tests with scripts/test"
    static let logger = Logger(label: "store-test", factory: { _ in SwiftLogNoOpLogHandler() })
}

struct StoreFixture: AccountFixture {
    let store: PostgresMailStore
    var mailStore: any MailStore { store }
    let client: PostgresClient
    let configuration: PostgresStoreConfiguration
    let account: AccountID

    static func with<T: Sendable>(_ body: @Sendable (StoreFixture) async throws -> T) async throws -> T {
        guard let url = StoreEnvironment.url else {
            throw StoreTestError("MAILHOST_TEST_DATABASE_URL is not set (run scripts/test)")
        }
        let base = try PostgresStoreConfiguration(url: url)
        let name = "mh_store_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
        try await base.withConnection(logger: StoreEnvironment.logger) { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: StoreEnvironment.logger)
        }
        var configuration = base
        configuration.database = name
        try await configuration.withConnection(logger: StoreEnvironment.logger) { connection in
            try await PostgresSchema.migrate(connection, logger: StoreEnvironment.logger)
            // Accounts start with INBOX only here: the conformance tests create the mailboxes they use.
            _ = try await connection.query("DELETE FROM default_mailboxes", logger: StoreEnvironment.logger)
        }
        let client = PostgresClient(
            configuration: configuration.clientConfiguration, backgroundLogger: StoreEnvironment.logger)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let store = PostgresMailStore(client: client, operationTimeout: .seconds(20))
        let account = try await store.account(login: "alice", create: true, logger: StoreEnvironment.logger)
        let fixture = StoreFixture(store: store, client: client, configuration: configuration, account: account)
        do {
            let result = try await body(fixture)
            running.cancel()
            await dropDatabase(base, name)
            return result
        } catch {
            running.cancel()
            await dropDatabase(base, name)
            throw error
        }
    }

    static func dropDatabase(_ base: PostgresStoreConfiguration, _ name: String) async {
        _ = try? await base.withConnection(logger: StoreEnvironment.logger) { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"),
                logger: StoreEnvironment.logger)
        }
    }

}

/// A store and an account of a test fixture, with the helpers every store test uses.
protocol AccountFixture: Sendable {
    var mailStore: any MailStore { get }
    var account: AccountID { get }
}

extension AccountFixture {
    var logger: Logger { StoreEnvironment.logger }

    @discardableResult
    func append(
        _ subject: String, to mailbox: String = "INBOX", flags: MessageFlags = MessageFlags(),
        account: AccountID? = nil
    ) async throws -> AppendResult {
        let text = "From: a@example.com\r\nSubject: \(subject)\r\n\r\nbody of \(subject)\r\n"
        return try await mailStore.append(
            account: account ?? self.account, mailbox: MailboxName(normalizing: mailbox),
            message: ParsedMessage(parsing: Array(text.utf8)), flags: flags,
            date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0), logger: logger)
    }

    func snapshot(_ mailbox: String = "INBOX") async throws -> MailboxSnapshot {
        try await mailStore.select(
            account: account, name: MailboxName(normalizing: mailbox), claimRecent: false, logger: logger)
    }
}

struct StoreTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The backends the conformance suite runs against, with the same test code (issue #12).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case postgres, sqlite
    var testDescription: String { rawValue }
    /// SQLite always; PostgreSQL when a test server is set (and always under CI, where its absence fails).
    static var available: [StoreKind] { StoreEnvironment.ready ? allCases : [.sqlite] }
}

/// A store of either backend on a fresh database (PostgreSQL: a new database on the test server; SQLite: a new file
/// in a temporary directory), running, with an account `alice` whose only mailbox is INBOX.
struct ConformanceFixture: AccountFixture {
    let kind: StoreKind
    let backend: any StoreBackend
    let account: AccountID
    /// The change feed the backend publishes into while the fixture runs.
    let feed: ChangeFeed
    var store: any DeliveryStore { backend.mail }
    var mailStore: any MailStore { store }

    static func with<T: Sendable>(_ kind: StoreKind, _ body: @Sendable (ConformanceFixture) async throws -> T)
        async throws -> T
    {
        switch kind {
        case .postgres:
            return try await StoreFixture.with { postgres in
                let backend = PostgresBackend(
                    configuration: postgres.configuration, separateSearchPool: false, logger: StoreEnvironment.logger)
                return try await run(kind, backend, body)
            }
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "mh-store-\(UInt64.random(in: 0...UInt64.max))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let backend = try SQLiteBackend(
                path: directory.appendingPathComponent("mail.db").path, serving: false,
                operationTimeout: .seconds(20), logger: StoreEnvironment.logger)
            _ = try await backend.schema.prepare(logger: StoreEnvironment.logger)
            return try await run(kind, backend, body)
        }
    }

    private static func run<T: Sendable>(
        _ kind: StoreKind, _ backend: any StoreBackend, _ body: @Sendable (ConformanceFixture) async throws -> T
    ) async throws -> T {
        let feed = ChangeFeed()
        let running = Task { await backend.run(feed: feed) }
        defer { running.cancel() }
        // Accounts start with INBOX only here: the conformance tests create the mailboxes they use.
        try await backend.administration.setDefaultMailboxes([], logger: StoreEnvironment.logger)
        let account = try await backend.mail.account(login: "alice", create: true, logger: StoreEnvironment.logger)
        return try await body(ConformanceFixture(kind: kind, backend: backend, account: account, feed: feed))
    }

}
