import Foundation
import IMAPEngine
import PostgresNIO
import StoragePostgres
import Testing

/// Issue #9 §4: a disabled or deleted account's sessions end at once: in the middle of a command, and also when the
/// notice was sent while the change feed was disconnected (found when it reconnects).
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct AccountDisableTests {
    func start(_ database: TestStorage) async throws -> (ServerProcess, Int) {
        let server = try ServerProcess([
            "serve", "--storage", database.setting, "--auth", "db", "--imap", "127.0.0.1:0",
        ])
        return (server, try await server.waitUntilListening())
    }

    @Test func disablingEndsASessionBlockedInTheMiddleOfAFetch() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        #expect(try await mailadmin(database, "user", "add", "dora", "--password-stdin", stdin: "pw\n").status == 0)
        let seeding = try await TestServer.start(on: database)
        let body = String(
            repeating: "The quick brown fox jumps over the lazy dog, again and again and again.\r\n", count: 4000)
        try await seeding.seed("dora", messages: (1...10).map { testMessage(subject: "big \($0)", body: body) })
        await seeding.stop()
        let (server, port) = try await start(database)
        defer { server.terminate() }

        let client = try await IMAPTestClient.loggedIn(port: port, user: "dora", password: "pw", select: "INBOX")
        try await client.setReading(false)
        try await client.sendLine("f FETCH 1:* BODY.PEEK[]")
        let local = client.localPort
        try await waitUntil("the server's send queue fills") {
            try await sendQueue(serverPort: port, clientPort: local) > 0
        }
        let disabled = ContinuousClock.now
        #expect(try await mailadmin(database, "user", "disable", "dora").status == 0)
        #expect(
            await server.logEventuallyContains("reason=\"account disabled\"", timeout: .seconds(60)), "\(server.log)")
        print(
            "account disabled mid-FETCH: session ended \((ContinuousClock.now - disabled).milliseconds) ms after mailadmin was started"
        )
        // The client, reading again, finds the connection closed after a truncated response, not a hang.
        try await client.setReading(true)
        #expect(await client.isClosed(within: .seconds(30)))
    }

    /// PostgreSQL's LISTEN connection (SQLite's feed is a table the server reads, with nothing to cut).
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func anAccountDisabledWhileTheFeedWasAwayIsFoundWhenItReconnects() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        #expect(try await mailadmin(database, "user", "add", "ella", "--password-stdin", stdin: "pw\n").status == 0)
        #expect(try await mailadmin(database, "user", "add", "fred", "--password-stdin", stdin: "pw\n").status == 0)
        let (server, port) = try await start(database)
        defer { server.terminate() }
        var clients: [String: IMAPTestClient] = [:]
        for user in ["ella", "fred"] {
            let client = try await IMAPTestClient.connect(port: port)
            _ = try await client.readLine()
            try await client.expectOK("l", "LOGIN \(user) pw")
            try await client.expectOK("s", "SELECT INBOX")
            try await client.sendLine("i IDLE")
            #expect(try await client.readLine() == "+ idling")
            clients[user] = client
        }
        // The feed's LISTEN connection is cut, and the account is disabled without a notice (as if the NOTIFY had
        // been sent while the feed was away).
        try await database.postgres.withConnection(logger: TestEnvironment.logger) { connection in
            try await connection.query(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE query ILIKE 'LISTEN%' AND datname = current_database()
                """,
                logger: TestEnvironment.logger)
            try await connection.query(
                "UPDATE accounts SET disabled = true WHERE login = 'ella'", logger: TestEnvironment.logger)
        }
        #expect(await server.logEventuallyContains("change feed reconnected", timeout: .seconds(60)))
        #expect(
            try await clients["ella"]?.readLine(timeout: .seconds(30)) == "* BYE Account disabled by the administrator."
        )
        #expect(await clients["ella"]?.isClosed(within: .seconds(30)) == true)
        // The other account's session carries on.
        try await clients["fred"]?.sendLine("DONE")
        #expect(try await clients["fred"]?.readResponse(tag: "i").last == "i OK IDLE terminated")
    }
}
