import Foundation
import IMAPEngine
import Synchronization
import Testing

/// Running MailHost in production (issue #4): a real HAProxy in front of two instances, SIGTERM under load,
/// metrics, limits, the login penalty and the configuration file.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct OperationsTests {
    func mailhost(_ database: TestStorage, _ extra: [String]) throws -> ServerProcess {
        try ServerProcess(["serve", "--storage", database.setting] + database.authArguments() + extra)
    }

    /// Issue #4 §8: one line per event, logfmt or JSON, with the connection id, and never a password or a body,
    /// even at trace level.
    @Test(arguments: ["logfmt", "json"]) func logLinesCarryTheConnectionAndNoSecrets(format: String) async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let port = try freePort()
        let server = try mailhost(
            database, ["--imap", "127.0.0.1:\(port)", "--log-format", format, "--log-level", "trace"])
        defer { server.terminate() }
        let json = format == "json"
        #expect(await server.logEventuallyContains(json ? #""msg":"listening""# : "msg=listening"))
        let failing = try await IMAPTestClient.connect(port: port)
        _ = try await failing.readLine()
        let refused = try await failing.command("a", #"LOGIN mhtest2 "not-the-password-42""#)
        #expect(refused.last?.contains("a NO [AUTHENTICATIONFAILED]") == true, "\(refused)")
        let client = try await IMAPTestClient.connect(port: port)
        _ = try await client.readLine()
        #expect(try await client.command("a", #"LOGIN mhtest2 "secret two""#).last?.hasPrefix("a OK") == true)
        let message = Array("Subject: log test\r\n\r\nZebra-body-7781 must not be logged\r\n".utf8)
        #expect(try await client.append("b", to: "INBOX", message).last?.hasPrefix("b OK") == true)
        _ = try await client.command("c", "SELECT INBOX")
        #expect(try await client.fetchLiteral("d", "FETCH 1 BODY[]") == message)
        _ = try await client.command("e", "LOGOUT")
        #expect(await server.logEventuallyContains(json ? #""msg":"disconnect""# : "msg=disconnect"))

        let log = server.log
        // The body also as hex, the way PostgresNIO's trace output prints bound bytes.
        let secrets = ["secret two", "not-the-password-42", "Zebra-body-7781", "5a656272612d626f64792d37373831"]
        for secret in secrets {
            #expect(!log.lowercased().contains(secret.lowercased()), "\(secret) in the log")
        }
        let lines = log.split(separator: "\n").map(String.init)
        var logins = 0
        for line in lines {
            if json {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["ts"] != nil && object?["level"] != nil && object?["msg"] != nil, "\(line)")
                if object?["msg"] as? String == "login" {
                    logins += 1
                    #expect(object?["imap.conn"] != nil && object?["imap.user"] as? String == "mhtest2", "\(line)")
                }
            } else {
                #expect(line.hasPrefix("ts=") && line.contains(" level=") && line.contains(" msg="), "\(line)")
                if line.contains(" msg=login ") {
                    logins += 1
                    #expect(line.contains(" imap.conn=") && line.contains(" imap.user=mhtest2"), "\(line)")
                }
            }
        }
        #expect(logins == 1, "\(log)")
    }

    /// Two instances on one store: PostgreSQL.
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func haproxyInFrontOfTwoInstancesWithProxyV2() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let a = try mailhost(database, ["--imap-proxy", "127.0.0.1:0"])
        let b = try mailhost(database, ["--imap-proxy", "127.0.0.1:0"])
        defer {
            a.terminate()
            b.terminate()
        }
        let portA = try await a.waitUntilListening("imap-proxy")
        let portB = try await b.waitUntilListening("imap-proxy")
        let front = try freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-haproxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = directory.appendingPathComponent("haproxy.cfg")
        try Data(
            """
            defaults
                mode tcp
                timeout connect 5s
                timeout client 1h
                timeout server 1h
            frontend imap
                bind 127.0.0.1:\(front)
                default_backend mailhost
            backend mailhost
                balance roundrobin
                server a 127.0.0.1:\(portA) send-proxy-v2
                server b 127.0.0.1:\(portB) send-proxy-v2

            """.utf8
        ).write(to: configuration)
        let haproxy = try ServerProcess(["-db", "-f", configuration.path], binary: "/usr/sbin/haproxy")
        defer { haproxy.terminate() }

        // Round robin: the first client lands on a, the second on b; each from its own loopback address.
        var idler: IMAPTestClient?
        for _ in 0..<50 where idler == nil {
            idler = try? await IMAPTestClient.connect(port: front, localHost: "127.0.0.2")
            if idler == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard let idler else { throw TestFailure("haproxy did not start: \(haproxy.log)") }
        _ = try await idler.readLine()
        try await idler.expectOK("a1", "LOGIN tim timmy")
        try await idler.expectOK("a2", "SELECT INBOX")
        try await idler.sendLine("a3 IDLE")
        #expect(try await idler.readLine() == "+ idling")
        let writer = try await IMAPTestClient.connect(port: front, localHost: "127.0.0.3")
        _ = try await writer.readLine()
        try await writer.expectOK("b1", "LOGIN tim timmy")
        try await writer.sendLine("b2 APPEND INBOX {25+}")
        try await writer.sendLine("Subject: via haproxy\r\n\r\nx")
        #expect(try await writer.readResponse(tag: "b2").last?.hasPrefix("b2 OK") == true)
        #expect(try await idler.readLine(timeout: .seconds(2)) == "* 1 EXISTS")
        let logs = a.log + b.log
        #expect(logs.contains("imap.peer=127.0.0.2"), "\(logs)")
        #expect(logs.contains("imap.peer=127.0.0.3"))
        #expect(a.log.contains("imap.peer=127.0.0.2") != b.log.contains("imap.peer=127.0.0.2"))
        #expect(a.log.contains("imap.peer=127.0.0.3") != b.log.contains("imap.peer=127.0.0.3"))
        try await idler.sendLine("DONE")
        _ = try await idler.readResponse(tag: "a3")
    }

    @Test func proxyHeadersFromUntrustedAddressesAreRefused() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let server = try mailhost(database, ["--imap-proxy", "127.0.0.1:0", "--proxy-trusted", "10.0.0.0/8"])
        defer { server.terminate() }
        let port = try await server.waitUntilListening("imap-proxy")
        let client = try await IMAPTestClient.connect(port: port)
        try? await client.send("PROXY TCP4 198.51.100.1 127.0.0.1 40000 143\r\n")  // may already be closed
        #expect(await client.isClosed())
        #expect(await server.logEventuallyContains("PROXY header refused"))
    }

    @Test func sigtermStopsTheServerCleanly() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let server = try mailhost(database, ["--imap", "127.0.0.1:0"])
        let port = try await server.waitUntilListening()
        let client = try await IMAPTestClient.connect(port: port)
        _ = try await client.readLine()
        try await client.expectOK("a1", "LOGIN tim timmy")
        server.process.terminate()  // SIGTERM
        #expect(try await client.readLine() == "* BYE Server shutting down.")
        #expect(try await server.waitForExit() == 0)
    }

    /// SIGTERM while clients append: every client gets BYE, every APPEND answered OK is stored, exit status 0.
    @Test func sigtermUnderLoadLosesNothing() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let server = try mailhost(database, ["--imap", "127.0.0.1:0"])
        let port = try await server.waitUntilListening()
        final class Count: Sendable { let value = Atomic<Int>(0) }
        let answeredSoFar = Count()
        let results = try await withThrowingTaskGroup(of: (uids: [UInt32], bye: Bool).self) { group in
            for client in 0..<6 {
                group.addTask {
                    let c = try await IMAPTestClient.connect(port: port)
                    _ = try await c.readLine()
                    try await c.expectOK("l", "LOGIN tim timmy")
                    var uids: [UInt32] = []
                    var bye = false
                    var n = 0
                    while !bye {
                        n += 1
                        let body = "Subject: load \(client)-\(n)\r\n\r\nbody\r\n"
                        do {
                            try await c.sendLine("t\(n) APPEND INBOX {\(body.utf8.count)+}")
                            try await c.send(body + "\r\n")
                            while true {
                                let line = try await c.readLine(timeout: .seconds(20))
                                if line.hasPrefix("* BYE") { bye = true }
                                if line.hasPrefix("t\(n) OK [APPENDUID "),
                                    let uid = line.split(separator: " ")[4].split(separator: "]").first.flatMap({
                                        UInt32($0)
                                    })
                                {
                                    uids.append(uid)
                                    answeredSoFar.value.add(1, ordering: .relaxed)
                                }
                                if line.hasPrefix("t\(n) ") || bye { break }
                            }
                        } catch {
                            // The server closed the connection: its BYE must be among the lines still unread.
                            while let line = try? await c.readLine(timeout: .seconds(1)) {
                                if line.hasPrefix("* BYE") { bye = true }
                            }
                            break
                        }
                    }
                    return (uids, bye)
                }
            }
            // SIGTERM once the load is really running (a fixed sleep raced a slow machine).
            let deadline = ContinuousClock.now + .seconds(60)
            while answeredSoFar.value.load(ordering: .relaxed) < 12 {
                guard ContinuousClock.now < deadline else {
                    throw TestFailure("the clients' APPENDs did not get going")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            server.signal(SIGTERM)
            var all: [(uids: [UInt32], bye: Bool)] = []
            for try await result in group { all.append(result) }
            return all
        }
        let status = try await server.waitForExit()
        #expect(status == 0)
        let everyoneGotBye = results.allSatisfy { $0.bye }
        #expect(everyoneGotBye)
        let answered = Set(results.flatMap(\.uids))
        #expect(answered.count >= 12)
        // Everything answered OK is in the store.
        let check = try await TestServer.start(on: database)
        let account = try await check.account("tim")
        let stored = try await check.store.select(
            account: account, name: .inbox, claimRecent: false, logger: TestEnvironment.logger)
        await check.stop()
        #expect(answered.isSubset(of: Set(stored.uids.map(\.rawValue))))
    }

    @Test func metricsMoveAfterASession() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let server = try mailhost(database, ["--imap", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        defer { server.terminate() }
        let port = try await server.waitUntilListening()
        let metricsPort = try await server.waitUntilListening("metrics")
        let c = try await IMAPTestClient.connect(port: port)
        _ = try await c.readLine()
        #expect(try await c.command("a0", "LOGIN tim wrong").last?.hasPrefix("a0 NO") == true)
        try await c.expectOK("a1", "LOGIN tim timmy")
        try await c.expectOK("a2", "SELECT INBOX")
        try await c.expectOK("a3", "NOOP")
        let scrape = try await python(
            "import urllib.request, os; print(urllib.request.urlopen('http://127.0.0.1:' + os.environ['P'] + '/metrics').read().decode())",
            environment: ["P": "\(metricsPort)"])
        let text = scrape.stdout
        #expect(text.contains("imap_connections_total 1"), "\(text)")
        #expect(text.contains("imap_logins_total{result=\"success\"} 1"))
        #expect(text.contains("imap_logins_total{result=\"failure\"} 1"))
        #expect(text.contains("imap_command_duration_seconds_count{command=\"SELECT\",result=\"OK\"} 1"))
        #expect(text.contains("imap_sessions{state=\"selected\"} 1"))
        #expect(text.contains("mailhost_store_duration_seconds_count{operation=\"select\",result=\"ok\"}"))
        let missing = try await python(
            "import urllib.request, urllib.error, os\ntry:\n urllib.request.urlopen('http://127.0.0.1:' + os.environ['P'] + '/other')\nexcept urllib.error.HTTPError as e:\n print(e.code)",
            environment: ["P": "\(metricsPort)"])
        #expect(missing.stdout.hasPrefix("404"))
    }

    @Test func connectionLimitsAndTheLoginPenalty() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let server = try mailhost(
            database,
            [
                "--imap", "127.0.0.1:0", "--max-connections-per-address", "2", "--max-connections-per-user", "1",
                "--max-append-size", "100000",
            ])
        defer { server.terminate() }
        let port = try await server.waitUntilListening()
        let first = try await IMAPTestClient.connect(port: port)
        let greeting = try await first.readLine()
        let second = try await IMAPTestClient.connect(port: port)
        _ = try await second.readLine()
        let third = try await IMAPTestClient.connect(port: port)
        #expect(try await third.readLine() == "* BYE [UNAVAILABLE] Too many connections from your address.")
        #expect(await third.isClosed())
        // Logged-in connections no longer count against the address; the per-user limit applies instead.
        let capabilities = try await first.expectOK("a1", "LOGIN tim timmy")
        _ = capabilities
        #expect(!greeting.contains("APPENDLIMIT"))
        #expect(try await first.command("a2", "CAPABILITY").first?.contains("APPENDLIMIT=100000") == true)
        #expect(try await second.command("b1", "LOGIN tim timmy").last?.hasPrefix("b1 NO [LIMIT]") == true)

        // Failed logins from one address wait longer each time (after the uniform second of every failure).
        var durations: [Duration] = []
        for i in 1...3 {
            let started = ContinuousClock.now
            _ = try await second.command("f\(i)", "LOGIN mhtest2 wrong")
            durations.append(ContinuousClock.now - started)
        }
        #expect(durations[0] >= .milliseconds(950))
        #expect(durations[1] >= .milliseconds(1950))
        #expect(durations[2] >= .milliseconds(2950))
        #expect(server.log.contains("msg=\"authentication failed\""))
        #expect(server.log.contains("imap.peer=127.0.0.1 imap.user=mhtest2"))
    }

    @Test func configurationLayersAndCheck() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("mailhost.conf")
        try Data(
            """
            # a sample
            storage = postgres://mail:secret@db.example:5432/mail
            imap = 0.0.0.0:143
            imap = [::]:143
            max-connections = 100
            log-level = notice
            auth = db,pam

            """.utf8
        ).write(to: file)
        let checked = try await runTool(
            ServerProcess.executable("mailhost"), ["config", "check", "--config", file.path, "--log-level", "debug"],
            environment: ["MAILHOST_MAX_CONNECTIONS": "200", "MAILHOST_PAM_SERVICE": "other"])
        #expect(checked.status == 0, "\(checked.stderr)")
        let lines = checked.stdout.split(separator: "\n").map(String.init)
        func line(_ key: String) -> String { lines.first { $0.hasPrefix(key + " =") } ?? "" }
        #expect(line("storage").contains("postgres://mail:***@db.example:5432/mail"))
        #expect(line("imap").contains("0.0.0.0:143, [::]:143"))
        #expect(line("max-connections").contains("= 200") && line("max-connections").contains("environment"))
        #expect(line("log-level").contains("= debug") && line("log-level").contains("command line"))
        #expect(line("pam-service").contains("= other"))
        #expect(line("auth").contains("= db,pam") && line("auth").contains(file.path))
        #expect(line("max-bad-commands").contains("default"))

        try Data("storage = x\nfrobnicate = 1\n".utf8).write(to: file)
        let bad = try await runTool(ServerProcess.executable("mailhost"), ["config", "check", "--config", file.path])
        #expect(bad.status != 0 && bad.stderr.contains("unknown key frobnicate"))
        let badValue = try await runTool(
            ServerProcess.executable("mailhost"), ["config", "check", "--max-connections", "lots"],
            environment: ["MAILHOST_STORAGE": "postgres://x@y/z"])
        #expect(badValue.status != 0 && badValue.stderr.contains("max-connections (command line)"))
        // The upload memory must hold at least one message of the largest size APPEND and LMTP accept.
        let tooSmall = try await runTool(
            ServerProcess.executable("mailhost"),
            ["config", "check", "--max-upload-memory", "\(32 << 20)", "--max-append-size", "\(6 << 20)"],
            environment: ["MAILHOST_STORAGE": "postgres://x@y/z"])
        #expect(tooSmall.status != 0 && tooSmall.stderr.contains("must hold one message of max-append-size"))

        // Every option's help says what it does and its default.
        let help = try await runTool(ServerProcess.executable("mailhost"), ["serve", "--help"])
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("--max-connections <max-connections> Connections in total; default 5000."), "\(text)")
        #expect(text.contains("--lmtp-timeout <lmtp-timeout> Seconds an LMTP client may stay silent"), "\(text)")
        #expect(text.contains("(RFC 5321: 300); default 300."), "\(text)")
    }
}
