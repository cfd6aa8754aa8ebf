import Foundation
import IMAPEngine
import PostgresNIO
import StoragePostgres
import Testing

/// Two `mailhost` processes on one database (DESIGN.md §6): sessions on different instances see each other's
/// changes through the store and the change feed.
@Suite(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
struct MultiInstanceTests {
    func startInstance(_ database: PostgresStoreConfiguration) throws -> ServerProcess {
        try startInstance(TestStorage(backend: .postgres(database)))
    }

    /// `mailhost serve` on `database` with PAM logins (store accounts where the machine has no PAM test service).
    func startInstance(_ database: TestStorage) throws -> ServerProcess {
        try ServerProcess(
            ["serve", "--imap", "127.0.0.1:0", "--storage", database.setting] + database.authArguments("pam"))
    }

    /// Instances started together on a new database: one creates the schema while the other waits for it. The test
    /// holds the migration lock with the schema half made (what a starting instance used to find and refuse as
    /// "behind"), sees the server wait for the lock, finishes the schema, and the server then serves.
    @Test func anInstanceStartingWhileAnotherCreatesTheSchemaWaitsForIt() async throws {
        let database = try await TestDatabase.createBlank()
        defer { Task { await TestDatabase.drop(database) } }
        let logger = TestEnvironment.logger
        // The process handle leaves the connection's closure through a box (the closure's result must be Sendable).
        let started = StartedServer()
        try await database.withConnection(logger: logger) { connection in
            try await PostgresSchema.withMigrationLock(connection, logger: logger) {
                try await connection.query(
                    """
                    CREATE TABLE schema_migrations (
                        version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                    """, logger: logger)
                let server = try startInstance(database)
                started.server = server
                let deadline = ContinuousClock.now + .seconds(60)
                while try await connection.query(
                    """
                    SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """, logger: logger
                ).collect().first?.decode(Int64.self) ?? 0 < 1 {
                    guard ContinuousClock.now < deadline, server.process.isRunning else {
                        server.terminate()
                        throw TestFailure("the server did not wait for the migration lock: \(server.log)")
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await PostgresSchema.migrate(connection, logger: logger)
            }
        }
        let server = try #require(started.server)
        defer { server.terminate() }
        let port = try await server.waitUntilListening()
        let client = try await IMAPTestClient.loggedIn(port: port)
        try await client.expectOK("s", "SELECT INBOX")
        #expect(!server.log.contains("critical"), "\(server.log)")
        await client.close()
    }

    @Test func idleOnOneInstanceIsToldOfAnAppendThroughTheOther() async throws {
        let database = try await TestDatabase.create()
        defer { Task { await TestDatabase.drop(database) } }
        let first = try startInstance(database)
        let second = try startInstance(database)
        defer {
            first.terminate()
            second.terminate()
        }
        let firstPort = try await first.waitUntilListening()
        let secondPort = try await second.waitUntilListening()

        let idler = try await IMAPTestClient.connect(port: firstPort)
        _ = try await idler.readLine()
        try await idler.expectOK("a1", "LOGIN tim timmy")
        try await idler.expectOK("a2", "SELECT INBOX")
        try await idler.sendLine("a3 IDLE")
        #expect(try await idler.readLine() == "+ idling")

        let writer = try await IMAPTestClient.connect(port: secondPort)
        _ = try await writer.readLine()
        try await writer.expectOK("b1", "LOGIN tim timmy")
        let started = ContinuousClock.now
        try await writer.sendLine("b2 APPEND INBOX {32+}")
        try await writer.sendLine("Subject: across instances\r\n\r\nhi\r\n")
        #expect(try await writer.readResponse(tag: "b2").last?.hasPrefix("b2 OK [APPENDUID") == true)
        #expect(try await idler.readLine(timeout: .seconds(30)) == "* 1 EXISTS")
        print(
            "IDLE on instance A told of an APPEND on instance B after \((ContinuousClock.now - started).milliseconds) ms"
        )

        // Flag changes and expunges cross over too.
        try await writer.expectOK("b3", "SELECT INBOX")
        try await writer.expectOK("b4", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        try await writer.expectOK("b5", "EXPUNGE")
        var lines: [String] = []
        while !lines.contains("* 1 EXPUNGE") {
            lines.append(try await idler.readLine(timeout: .seconds(30)))
        }
        // The flag change may be announced before the expunge, or folded into it when both arrive together.
        let fetches = lines.filter { $0.hasPrefix("* 1 FETCH") }
        let deletedFlags = fetches.filter { $0.hasPrefix("* 1 FETCH (UID 1 FLAGS (\\Deleted") }
        #expect(fetches == deletedFlags)
        try await idler.sendLine("DONE")
        #expect(try await idler.readLine() == "a3 OK IDLE terminated")
        #expect(first.log.contains("level=info msg=listening imap=127.0.0.1:\(firstPort)"))
    }

    @Test func unreachableDatabaseFailsFastWithAReason() async throws {
        let process = try ServerProcess([
            "serve", "--imap", "127.0.0.1:0", "--storage", "postgres://mailhost@127.0.0.1:1/mailhost",
        ])
        let started = ContinuousClock.now
        #expect(try await process.waitForExit(timeout: .seconds(15)) != 0)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(process.log.contains("cannot connect to the database"))
    }

    @Test func olderSchemaIsRefusedWithTheCommandToRun() async throws {
        guard let url = TestEnvironment.databaseURL else { throw TestEnvironment.Missing() }
        var database = try PostgresStoreConfiguration(url: url)
        let name = "mh_old_\(UInt32.random(in: 0...UInt32.max))"
        try await database.withConnection(logger: TestEnvironment.logger) { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: TestEnvironment.logger)
        }
        database.database = name
        let created = database
        defer { Task { await TestDatabase.drop(created) } }
        // A database from before the first migration completed.
        try await database.withConnection(logger: TestEnvironment.logger) { connection in
            _ = try await connection.query(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz)",
                logger: TestEnvironment.logger)
        }
        let process = try startInstance(database)
        #expect(try await process.waitForExit() != 0)
        #expect(process.log.contains("run `mailadmin --storage URL db migrate` first"))

        // mailadmin db migrate brings it up to date, idempotently; then the server starts.
        let migrate = try ServerProcess(["--storage", database.description, "db", "migrate"], binary: "mailadmin")
        #expect(try await migrate.waitForExit() == 0)
        let again = try ServerProcess(
            ["db", "migrate"], environment: ["MAILHOST_STORAGE": database.description], binary: "mailadmin")
        #expect(try await again.waitForExit() == 0)
        let server = try startInstance(database)
        defer { server.terminate() }
        _ = try await server.waitUntilListening()
    }
}

/// Two server processes on one new database, as two instances behind a load balancer: `body` gets their IMAP ports;
/// both are stopped and the database dropped afterwards.
func withTwoInstances<T>(_ body: (Int, Int) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create()
    defer { Task { await TestDatabase.drop(database) } }
    let a = try MultiInstanceTests().startInstance(database)
    defer { a.terminate() }
    let b = try MultiInstanceTests().startInstance(database)
    defer { b.terminate() }
    return try await body(try await a.waitUntilListening(), try await b.waitUntilListening())
}

/// Carries a started server out of a closure that must be Sendable; used on one task only.
private final class StartedServer: @unchecked Sendable {
    var server: ServerProcess?
}
