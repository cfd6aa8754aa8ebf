import Foundation
import IMAPEngine
import PostgresNIO
import StoragePostgres
import Testing

/// Issue #9 §1: every connection ends when its peer does, in every state and in the middle of a command, with a FIN
/// or an RST: the session is logged out of every count and metric, and dropped sessions never lock a user out.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct PeerDropTests {
    enum Ending: String, CaseIterable, Sendable {
        case fin, rst
    }

    /// Where the client is when it vanishes.
    enum Moment: String, CaseIterable, Sendable {
        case greeted, authenticated, selected, idling
        /// Inside an APPEND literal, part of the message sent.
        case midLiteral
        /// AUTHENTICATE PLAIN, the server waiting for the client's response.
        case midSASL
        /// A STORE waiting for a row lock in the database.
        case waitingForStore
        /// A large FETCH the client stopped reading: the server is blocked writing.
        case blockedOnWrite
    }

    /// On SQLite without `waitingForStore`: nothing outside the server shows that a write waits for SQLite's lock.
    @Test(arguments: Ending.allCases)
    func droppedClientsAreLetGoInEveryState(ending: Ending) async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        // Large messages, so that a FETCH of all of them fills the socket buffers.
        let seeding = try await TestServer.start(on: database)
        let body = String(repeating: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", count: 4000)
        try await seeding.seed(messages: (1...12).map { testMessage(subject: "big \($0)", body: body) })
        let account = try await seeding.account("tim")
        await seeding.stop()

        let server = try ServerProcess(
            [
                "serve", "--storage", database.setting, "--imap", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                "--max-connections-per-user", "2", "--max-connections-per-address", "3",
            ] + database.authArguments("pam"))
        defer { server.terminate() }
        let port = try await server.waitUntilListening()
        let metricsPort = try await server.waitUntilListening("metrics")

        var released: [String] = []
        var disconnects = 0
        for moment in Moment.allCases where !(database.isSQLite && moment == .waitingForStore) {
            let client = try await IMAPTestClient.connect(port: port)
            _ = try await client.readLine()
            let dropped = try await bring(client, to: moment, database: database, account: account, port: port) {
                switch ending {
                case .fin: await client.close()
                case .rst: try await client.reset()
                }
            }
            disconnects += 1
            let seen = await server.logEventuallyContains(
                count: disconnects, of: "msg=disconnect", timeout: .seconds(60))
            #expect(seen, "\(moment) \(ending): no disconnect logged: \(server.log)")
            released.append("\(moment.rawValue) \((ContinuousClock.now - dropped).milliseconds) ms")
        }
        print("peer drop (\(ending.rawValue)), time to the disconnect line: \(released.joined(separator: ", "))")

        let metrics = try await scrapeMetrics(port: metricsPort)
        #expect(metrics["imap_connections"] == 0, "\(metrics)")
        for state in ["not_authenticated", "authenticated", "selected", "logout"] {
            #expect((metrics["imap_sessions{state=\"\(state)\"}"] ?? 0) == 0, "\(state): \(metrics)")
        }
        let lines = server.log.split(separator: "\n").filter { $0.contains("msg=disconnect") }
        #expect(lines.count == disconnects)
        #expect(lines.allSatisfy { $0.contains("reason=\"connection closed by the client\"") }, "\(lines)")

        // Nobody is locked out: with at most 2 sessions per user and 3 unauthenticated connections per address, a
        // user who dropped 8 connections logs in twice, and 3 more connections are greeted.
        let sessions = [try await IMAPTestClient.loggedIn(port: port), try await IMAPTestClient.loggedIn(port: port)]
        #expect(sessions.count == 2)  // both logged in (loggedIn throws otherwise), and both stay open meanwhile
        for _ in 0..<3 {
            let greeted = try await IMAPTestClient.connect(port: port)
            #expect(try await greeted.readLine().hasPrefix("* OK"))
        }
    }

    /// Brings a greeted client to `moment`, then runs `drop`; returns when the drop happened.
    func bring(
        _ client: IMAPTestClient, to moment: Moment, database: TestStorage, account: AccountID,
        port: Int, drop: () async throws -> Void
    ) async throws -> ContinuousClock.Instant {
        if moment != .greeted && moment != .midSASL { try await client.expectOK("l", "LOGIN tim timmy") }
        if [.selected, .idling, .waitingForStore, .blockedOnWrite].contains(moment) {
            try await client.expectOK("s", "SELECT INBOX")
        }
        switch moment {
        case .greeted, .authenticated, .selected:
            break
        case .idling:
            try await client.sendLine("i IDLE")
            #expect(try await client.readLine() == "+ idling")
        case .midLiteral:
            try await client.sendLine("p APPEND INBOX {5000}")
            #expect(try await client.readLine().hasPrefix("+"))
            try await client.send(Array(repeating: UInt8(ascii: "x"), count: 1000))
        case .midSASL:
            try await client.sendLine("p AUTHENTICATE PLAIN")
            #expect(try await client.readLine().hasPrefix("+"))
        case .waitingForStore:
            // Another transaction holds INBOX's row: the STORE waits in the database when the client vanishes.
            return try await database.postgres.withConnection(logger: TestEnvironment.logger) { connection in
                try await connection.query("BEGIN", logger: TestEnvironment.logger)
                try await connection.query(
                    "SELECT 1 FROM mailboxes WHERE account_id = \(account.rawValue) AND name = 'INBOX' FOR UPDATE",
                    logger: TestEnvironment.logger)
                try await client.sendLine("w STORE 1 +FLAGS (\\Flagged)")
                try await waitUntil("the STORE waits for the lock") {
                    try await sessionsWaitingOnLocks(connection) > 0
                }
                try await drop()
                let dropped = ContinuousClock.now
                try await connection.query("ROLLBACK", logger: TestEnvironment.logger)
                return dropped
            }
        case .blockedOnWrite:
            try await client.setReading(false)
            try await client.sendLine("f FETCH 1:* BODY.PEEK[]")
            let local = client.localPort
            try await waitUntil("the server's send queue fills") {
                try await sendQueue(serverPort: port, clientPort: local) > 0
            }
        }
        try await drop()
        return ContinuousClock.now
    }
}

/// Bytes the server has not been able to send to the client on this connection (`ss`'s Send-Q).
func sendQueue(serverPort: Int, clientPort: Int) async throws -> Int {
    let result = try await runTool(
        URL(fileURLWithPath: "/usr/bin/env"),
        ["ss", "-Htn", "state", "established", "( sport = :\(serverPort) and dport = :\(clientPort) )"])
    let fields = result.stdout.split(whereSeparator: \.isWhitespace)
    return fields.count >= 2 ? Int(fields[1]) ?? 0 : 0
}

/// Polls `condition` until it holds (every 20 ms, for at most a minute: a bound that only a hang reaches).
func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

extension ServerProcess {
    /// Whether the log comes to contain `text` at least `count` times.
    func logEventuallyContains(count: Int, of text: String, timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.components(separatedBy: text).count - 1 >= count { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return log.components(separatedBy: text).count - 1 >= count
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Issue #9 §1 for LMTP: an MTA connection that vanishes in the middle of a transaction (inside DATA) is let go at
/// once: with room for two connections, two dropped ones leave room for the next.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct LMTPDropTests {
    /// On SQLite without the delivery that waits for a lock (see `droppedClientsAreLetGoInEveryState`).
    @Test(arguments: PeerDropTests.Ending.allCases) func droppedMTAConnectionsAreLetGo(
        ending: PeerDropTests.Ending
    ) async throws {
        let running = try await LMTPTests.start([
            "--lmtp-max-connections", "2", "--log-level", "debug", "--store-timeout", "120",
        ])
        defer { running.stop() }
        for round in 0..<3 {
            var clients: [IMAPTestClient] = []
            for _ in 0..<2 {
                let client = try await IMAPTestClient.connect(port: running.lmtp)
                #expect(try await client.readLine().hasPrefix("220 "), "round \(round)")
                try await client.sendLine("LHLO mx.example")
                while try await client.readLine().hasPrefix("250-") {}
                try await client.sendLine("MAIL FROM:<a@example.org>")
                _ = try await client.readLine()
                try await client.sendLine("RCPT TO:<tim@example.com>")
                _ = try await client.readLine()
                try await client.sendLine("DATA")
                #expect(try await client.readLine().hasPrefix("354"))
                try await client.send("Subject: cut short\r\n\r\nhalf a mess")
                clients.append(client)
            }
            for client in clients {
                switch ending {
                case .fin: await client.close()
                case .rst: try await client.reset()
                }
            }
            let seen = await running.server.logEventuallyContains(
                count: 2 * (round + 1), of: "msg=\"LMTP disconnect\"", timeout: .seconds(60))
            #expect(seen, "\(running.server.log)")
        }
        // A delivery waiting in the database (INBOX's row held by another transaction) ends with its client too,
        // while the database still waits: the session does not outlive the peer until the store answers.
        if case .postgres(let configuration) = running.database.backend {
            try await Self.dropWhileTheDeliveryWaits(running, configuration)
        }
        // Nothing half-received was stored, and a new connection is greeted, not refused.
        let next = try await IMAPTestClient.connect(port: running.lmtp)
        #expect(try await next.readLine().hasPrefix("220 "))
        let imap = try await IMAPTestClient.loggedIn(port: running.imap)
        // (The delivery that waited may have been stored after its client left: the MTA would deliver it again.)
        let status = try await imap.command("s", "STATUS INBOX (MESSAGES)").first ?? ""
        #expect(status == "* STATUS INBOX (MESSAGES 0)" || status == "* STATUS INBOX (MESSAGES 1)", "\(status)")
    }

    static func dropWhileTheDeliveryWaits(_ running: LMTPTests.Running, _ database: PostgresStoreConfiguration)
        async throws
    {
        try await database.withConnection(logger: TestEnvironment.logger) { connection in
            try await connection.query("BEGIN", logger: TestEnvironment.logger)
            try await connection.query(
                """
                SELECT 1 FROM mailboxes b JOIN accounts a USING (account_id)
                WHERE a.login = 'tim' AND b.name = 'INBOX' FOR UPDATE OF b
                """, logger: TestEnvironment.logger)
            let client = try await IMAPTestClient.connect(port: running.lmtp)
            _ = try await client.readLine()
            try await client.send(
                "LHLO mx\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<tim@example.com>\r\nDATA\r\n")
            while try await !client.readLine().hasPrefix("354") {}  // LHLO, MAIL and RCPT answered, then DATA
            try await client.send("Subject: waits\r\n\r\nbody\r\n.\r\n")
            try await waitUntil("the delivery waits for the lock") {
                try await sessionsWaitingOnLocks(connection) > 0
            }
            try await client.reset()
            let ended = await running.server.logEventuallyContains(
                count: 7, of: "msg=\"LMTP disconnect\"", timeout: .seconds(30))
            #expect(ended, "the session ended while its delivery still waited: \(running.server.log)")
            try await connection.query("ROLLBACK", logger: TestEnvironment.logger)
        }
    }
}
