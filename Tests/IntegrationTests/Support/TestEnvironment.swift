import Foundation
import IMAPEngine
import Logging
import PostgresNIO
import StoragePostgres
import Synchronization
import Testing

/// Note for test authors: Swift 6.3.1 miscompiles a closure literal inside `#expect(…)` when the enclosing closure
/// (every `withTestServer { … }` body) holds another closure literal after it: the second runs the first one's code.
/// Compute such values with `let` before the `#expect` (e.g. `let found = lines.contains { … }; #expect(found)`).
///
/// What the integration tests need from the machine, set by `scripts/test` (and so by `.ci/run`):
/// - `MAILHOST_TEST_DATABASE_URL`: a PostgreSQL server where the tests may create databases;
/// - `MAILHOST_TEST_PAM_SERVICE`: a PAM service (pam_unix) under /etc/pam.d, with the system users
///   `tim` / `timmy`, `mhtest2` / `secret two`, and `mhlocked` (expired).
/// Without them the tests are skipped, loudly; with `CI=true` they fail instead, so CI can never pass by skipping.
///
/// `MAILHOST_TEST_STORE=sqlite` runs the integration tests on SQLite files instead (`TestStorage`, `TestServer`), with
/// the PAM users also present as store accounts: no PostgreSQL, PAM or root needed. Spawned servers get their `--auth`
/// from `TestStorage.authArguments`, which falls back to store accounts where the machine has no PAM test service.
/// Left to PostgreSQL (`readyOnPostgres`) are the tests of what only it has: several instances on one store, the
/// database going away and coming back, and its change feed's deltas and connection pools. The tests of PAM itself
/// (system accounts) need the PAM test service (`readyWithPAM`), on either store.
enum TestEnvironment {
    static let databaseURL = ProcessInfo.processInfo.environment["MAILHOST_TEST_DATABASE_URL"]
    static let pamService = ProcessInfo.processInfo.environment["MAILHOST_TEST_PAM_SERVICE"]
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    enum StoreKind: Sendable { case postgres, sqlite }
    static let storeKind: StoreKind =
        ProcessInfo.processInfo.environment["MAILHOST_TEST_STORE"] == "sqlite" ? .sqlite : .postgres

    /// The PAM test users, as store accounts on SQLite (same logins and passwords).
    static let storeAccounts = [("tim", "timmy"), ("mhtest2", "secret two")]

    /// Whether the suites that run on either store can run.
    static var ready: Bool { storeKind == .sqlite || readyOnPostgres }

    /// Whether the tests that need PostgreSQL itself can run (never on a SQLite run).
    static var readyOnPostgres: Bool {
        guard storeKind == .postgres else { return false }
        if databaseURL != nil && pamService != nil { return true }
        if isCI {
            // Under CI a missing server is a failure, never a silent skip.
            return true
        }
        return false
    }

    /// Whether the tests that log in through PAM itself (system accounts, expired passwords) can run: on either store,
    /// where the machine has the PAM test service.
    static var readyWithPAM: Bool { ready && (pamService != nil || isCI) }

    static let skipReason: Comment =
        "MAILHOST_TEST_DATABASE_URL and MAILHOST_TEST_PAM_SERVICE are not set: run the tests with scripts/test"
    static let pamSkipReason: Comment = "MAILHOST_TEST_PAM_SERVICE is not set: run the tests with scripts/test"
    static let postgresSkipReason: Comment =
        "needs PostgreSQL itself: runs on the PostgreSQL run (scripts/test), skipped with MAILHOST_TEST_STORE=sqlite"

    static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel =
            ProcessInfo.processInfo.environment["MAILHOST_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "set MAILHOST_TEST_DATABASE_URL and MAILHOST_TEST_PAM_SERVICE (see scripts/test)" }
    }
}

/// A fresh, migrated database per test, cloned from a template migrated once per test process.
enum TestDatabase {
    private static let template = Mutex<Task<String, any Error>?>(nil)
    private static let creation = CreationQueue()

    /// Creates an unmigrated, empty database (the server or mailadmin creates the schema with its defaults).
    static func createBlank() async throws -> PostgresStoreConfiguration {
        guard let url = TestEnvironment.databaseURL else { throw TestEnvironment.Missing() }
        return try await createDatabase(base: try PostgresStoreConfiguration(url: url), name: randomName())
    }

    /// Creates an empty MailHost database (schema migrated, no default mailboxes) and returns its configuration.
    static func create() async throws -> PostgresStoreConfiguration {
        guard let url = TestEnvironment.databaseURL else { throw TestEnvironment.Missing() }
        let base = try PostgresStoreConfiguration(url: url)
        let templateName = try await templateDatabase(base)
        let name = randomName()
        // One CREATE DATABASE from the template at a time (see CreationQueue); the configuration is the same whoever
        // runs it.
        try await creation.run { _ = try await createDatabase(base: base, name: name, template: templateName) }
        var configuration = base
        configuration.database = name
        return configuration
    }

    static func randomName() -> String { "mh_test_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)" }

    /// `CREATE DATABASE name [TEMPLATE template]` on the server of `base`; the configuration for the new database.
    private static func createDatabase(base: PostgresStoreConfiguration, name: String, template: String? = nil)
        async throws -> PostgresStoreConfiguration
    {
        try await base.withConnection(logger: TestEnvironment.logger) { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)" + (template.map { " TEMPLATE \($0)" } ?? "")),
                logger: TestEnvironment.logger)
        }
        var configuration = base
        configuration.database = name
        return configuration
    }

    /// Makes the test database refuse connections and drops the existing ones (what a restart or a network cut
    /// does to the server's connections), or allows them again.
    static func setAvailable(_ available: Bool, _ database: PostgresStoreConfiguration) async throws {
        guard let url = TestEnvironment.databaseURL else { throw TestEnvironment.Missing() }
        let admin = try PostgresStoreConfiguration(url: url)
        try await admin.withConnection(logger: TestEnvironment.logger) { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "ALTER DATABASE \(database.database) ALLOW_CONNECTIONS \(available)"),
                logger: TestEnvironment.logger)
            if !available {
                _ = try await connection.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database.database)",
                    logger: TestEnvironment.logger)
            }
        }
    }

    static func drop(_ configuration: PostgresStoreConfiguration) async {
        guard let url = TestEnvironment.databaseURL, let base = try? PostgresStoreConfiguration(url: url) else {
            return
        }
        _ = try? await base.withConnection(logger: TestEnvironment.logger) { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(configuration.database) WITH (FORCE)"),
                logger: TestEnvironment.logger)
        }
    }

    private static func templateDatabase(_ base: PostgresStoreConfiguration) async throws -> String {
        let task = template.withLock { task in
            if let task { return task }
            let created = Task<String, any Error> {
                let name = "mh_template_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
                let configuration = try await createDatabase(base: base, name: name)
                try await configuration.withConnection(logger: TestEnvironment.logger) { connection in
                    try await PostgresSchema.migrate(connection, logger: TestEnvironment.logger)
                    // Test accounts start with INBOX only (most tests list an account's mailboxes); the default
                    // mailboxes have their own tests (`DefaultMailboxTests`), which set them or use a fresh schema.
                    _ = try await connection.query("DELETE FROM default_mailboxes", logger: TestEnvironment.logger)
                }
                return name
            }
            task = created
            return created
        }
        return try await task.value
    }
}

/// PostgreSQL refuses concurrent CREATE DATABASE from one template; this runs them one at a time.
actor CreationQueue {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run(_ operation: @Sendable () async throws -> Void) async throws {
        while busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            busy = false
            if !waiters.isEmpty { waiters.removeFirst().resume() }
        }
        try await operation()
    }
}

/// MailHost's database sessions waiting for a lock (`application_name` mailhost), on this connection's database. The
/// statistics snapshot is cleared first: inside a transaction PostgreSQL would answer every poll from the first one.
func sessionsWaitingOnLocks(_ connection: PostgresConnection) async throws -> Int64 {
    try await connection.query("SELECT pg_stat_clear_snapshot()", logger: TestEnvironment.logger)
    let rows = try await connection.query(
        """
        SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'mailhost' AND wait_event_type = 'Lock' AND datname = current_database()
        """, logger: TestEnvironment.logger
    ).collect()
    return try rows.first?.decode(Int64.self) ?? 0
}
