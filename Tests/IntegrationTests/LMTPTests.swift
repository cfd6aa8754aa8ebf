import Foundation
import IMAPEngine
import Testing

/// Mail delivery (issue #5): LMTP with swaks, Python's smtplib.LMTP and a real Postfix, `mailhost deliver`,
/// and LMTP against APPEND on 1,000 messages.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct LMTPTests {
    struct Running {
        let server: ServerProcess
        let database: TestStorage
        let imap: Int
        let lmtp: Int

        func stop() {
            server.terminate()
            let database = self.database
            Task { await database.drop() }
        }

        func admin(_ arguments: String..., stdin: String? = nil) async throws -> CommandResult {
            try await runTool(
                ServerProcess.executable("mailadmin"), ["--storage", database.setting] + arguments, stdin: stdin)
        }
    }

    static func start(_ extra: [String] = []) async throws -> Running {
        let database = try await TestStorage.create()
        let server = try ServerProcess(
            [
                "serve", "--imap", "127.0.0.1:0", "--lmtp", "127.0.0.1:0", "--storage", database.setting,
                "--lmtp-hostname", "mx.test.example",
            ] + database.authArguments() + extra)
        return Running(
            server: server, database: database, imap: try await server.waitUntilListening(),
            lmtp: try await server.waitUntilListening("lmtp"))
    }

    func swaks(_ running: Running, _ arguments: [String]) async throws -> CommandResult {
        try await runTool(
            URL(fileURLWithPath: "/usr/bin/swaks"),
            ["--protocol", "LMTP", "--server", "127.0.0.1:\(running.lmtp)", "--from", "sender@example.org"] + arguments)
    }

    @Test func swaksToThreeRecipientsOneUnknownOneOverQuota() async throws {
        let running = try await Self.start()
        defer { running.stop() }
        #expect(try await running.admin("user", "add", "alice", "--password-stdin", stdin: "pw\n").status == 0)
        #expect(
            try await running.admin("user", "add", "full", "--password-stdin", "--quota", "1K", stdin: "pw\n").status
                == 0)
        let body = String(repeating: "x", count: 2000)
        let result = try await swaks(
            running, ["--to", "Alice@example.com,nosuch@example.com,full@example.com", "--body", body, "--pipeline"])
        let replies = result.stdout.split(separator: "\n").filter { $0.hasPrefix("<") }.map(String.init)
        #expect(
            replies.contains { $0.contains("RCPT") == false && $0.contains("550 5.1.1 User unknown") },
            "\(result.stdout)")
        // One reply per accepted recipient after DATA, in RCPT order: alice stored, full over quota.
        let afterData = replies.drop { !$0.contains("354 ") }.dropFirst()
        #expect(afterData.first?.contains("250 2.0.0 Message") == true, "\(replies)")
        #expect(afterData.dropFirst().first?.contains("552 5.2.2 Mailbox full") == true, "\(replies)")
        let alice = try await running.admin("mailbox", "list", "alice", "--json")
        #expect(alice.stdout.contains("\"messages\":1"))
        let full = try await running.admin("mailbox", "list", "full", "--json")
        #expect(full.stdout.contains("\"messages\":0"))
    }

    @Test func recipientsOfOneAccountShareStoredContent() async throws {
        let running = try await Self.start()
        defer { running.stop() }
        for user in ["alice", "bob"] {
            #expect(try await running.admin("user", "add", user, "--password-stdin", stdin: "pw\n").status == 0)
        }
        #expect(try await running.admin("mailbox", "create", "alice", "Archive").status == 0)
        let result = try await swaks(
            running, ["--to", "alice@example.com,alice+Archive@example.com,bob@example.com", "--body", "shared"])
        #expect(result.status == 0, "\(result.stdout)")
        // alice: two messages (INBOX, Archive) on one stored content; bob: his own content (DESIGN.md §4).
        // Per account: login, messages, distinct contents they use, contents stored.
        let rows = try await running.database.queryStrings(
            """
            SELECT a.login || ' ' || count(*) || ' ' || count(DISTINCT m.content_id) || ' '
                || (SELECT count(*) FROM contents c WHERE c.account_id = a.account_id)
            FROM accounts a JOIN messages m USING (account_id) GROUP BY a.account_id, a.login ORDER BY a.login
            """)
        #expect(rows == ["alice 2 1 1", "bob 1 1 1"])
    }

    /// A Postfix of the test's own in `/var/tmp/NAME` (no chroot, its own queue), SMTP on a free port of 127.0.0.1,
    /// with `settings` added to a minimal main.cf; returns its directory and SMTP port.
    static func startPostfix(_ name: String, _ settings: String) async throws -> (URL, Int) {
        let directory = URL(fileURLWithPath: "/var/tmp/\(name)")
        try? FileManager.default.removeItem(at: directory)
        for sub in ["conf", "queue", "data"] {
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let smtpPort = try freePort()
        let master = try String(contentsOfFile: "/usr/share/postfix/master.cf.dist", encoding: .utf8)
            .replacingOccurrences(
                of: "smtp      inet  n       -       y       -       -       smtpd",
                with: "127.0.0.1:\(smtpPort) inet n - n - - smtpd"
            )
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { line -> String in
                // No chroot: the queue is a private temporary directory.
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 8, fields[1] == "unix", fields[4] == "y" else { return String(line) }
                var copy = fields.map(String.init)
                copy[4] = "n"
                return copy.joined(separator: " ")
            }.joined(separator: "\n")
        try Data(master.utf8).write(to: directory.appendingPathComponent("conf/master.cf"))
        try Data(
            """
            compatibility_level = 3.6
            queue_directory = \(directory.path)/queue
            data_directory = \(directory.path)/data
            myhostname = mx.test.example
            mydomain = test.example
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            mynetworks = 127.0.0.0/8
            alias_maps =
            alias_database =
            maillog_file = \(directory.path)/maillog
            smtputf8_enable = no
            \(settings)

            """.utf8
        ).write(to: directory.appendingPathComponent("conf/main.cf"))
        _ = try await runTool(
            URL(fileURLWithPath: "/usr/bin/chown"), ["postfix", directory.appendingPathComponent("data").path])
        let started = try await runTool(
            URL(fileURLWithPath: "/usr/sbin/postfix"), ["-c", directory.appendingPathComponent("conf").path, "start"])
        guard started.status == 0 else { throw TestFailure("postfix start: \(started.stdout) \(started.stderr)") }
        return (directory, smtpPort)
    }

    static func stopPostfix(_ directory: URL) {
        Task {
            _ = try? await runTool(
                URL(fileURLWithPath: "/usr/sbin/postfix"),
                ["-c", directory.appendingPathComponent("conf").path, "stop"])
        }
    }

    /// Postfix on a virtual mailbox domain of store accounts: recipients are verified at RCPT time by a probe
    /// through the same LMTP transport (`reject_unverified_recipient`), so mail for an unknown user is refused
    /// while the sender is still connected (no bounce, no backscatter), and a known one is delivered.
    @Test func postfixOnAVirtualDomainRefusesUnknownRecipientsAtRCPT() async throws {
        let running = try await Self.start(["--lmtp-domain", "virt.example"])
        defer { running.stop() }
        #expect(try await running.admin("user", "add", "vera", "--password-stdin", stdin: "pw\n").status == 0)
        let (directory, smtpPort) = try await Self.startPostfix(
            "mailhost-test-postfix-virtual",
            """
            mydestination =
            virtual_mailbox_domains = virt.example
            virtual_mailbox_maps = static:store-account
            virtual_transport = lmtp:inet:127.0.0.1:\(running.lmtp)
            smtpd_recipient_restrictions = reject_unverified_recipient, permit_mynetworks, reject_unauth_destination
            unverified_recipient_reject_code = 550
            """)
        defer { Self.stopPostfix(directory) }
        let sent = try await python(
            """
            import smtplib, os
            s = smtplib.SMTP("127.0.0.1", int(os.environ["P"]))
            s.ehlo()
            s.mail("friend@example.org")
            print("unknown:", s.rcpt("nobody@virt.example"))
            print("known:", s.rcpt("Vera@virt.example"))
            print("data:", s.data(b"Subject: virtual\\r\\nFrom: friend@example.org\\r\\n\\r\\nhello vera\\r\\n"))
            s.quit()
            """, environment: ["P": "\(smtpPort)"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let lines = sent.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.first?.hasPrefix("unknown: (550") == true && lines.first?.contains("undeliverable address") == true,
            "\(sent.stdout)")
        #expect(lines.dropFirst().first?.hasPrefix("known: (250") == true, "\(sent.stdout)")
        #expect(lines.dropFirst(2).first?.hasPrefix("data: (250") == true, "\(sent.stdout)")
        let client = try await IMAPTestClient.loggedIn(port: running.imap, user: "vera", password: "pw")
        var status = ""
        try await waitUntil("Postfix delivers to vera") {
            status = try await client.command("s", "STATUS INBOX (MESSAGES)").first ?? ""
            return status == "* STATUS INBOX (MESSAGES 1)"
        }
        let fetched = try await client.command("e", "EXAMINE INBOX")
        #expect(fetched.last?.hasPrefix("e OK") == true)
        let header = try await client.command("f", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])")
        #expect(header.contains("Subject: virtual"), "\(header)")
    }

    @Test func postfixDeliversThroughLMTPAndIdleIsTold() async throws {
        let running = try await Self.start(["--lmtp-domain", "test.example"])
        defer { running.stop() }
        let (directory, smtpPort) = try await Self.startPostfix(
            "mailhost-test-postfix",
            """
            mydestination = test.example
            mailbox_transport = lmtp:inet:127.0.0.1:\(running.lmtp)
            local_recipient_maps =
            """)
        defer { Self.stopPostfix(directory) }

        let idler = try await IMAPTestClient.connect(port: running.imap)
        _ = try await idler.readLine()
        try await idler.expectOK("a1", "LOGIN tim timmy")
        try await idler.expectOK("a2", "SELECT INBOX")
        try await idler.sendLine("a3 IDLE")
        #expect(try await idler.readLine() == "+ idling")
        let sent = try await python(
            """
            import smtplib, os
            s = smtplib.SMTP("127.0.0.1", int(os.environ["P"]))
            s.sendmail("friend@example.org", ["Tim@test.example"], "Subject: through postfix\\r\\nFrom: friend@example.org\\r\\n\\r\\nhello tim\\r\\n")
            s.quit()
            """, environment: ["P": "\(smtpPort)"])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(try await idler.readLine(timeout: .seconds(15)) == "* 1 EXISTS")
        try await idler.sendLine("DONE")
        _ = try await idler.readResponse(tag: "a3")
        let fetched = try await idler.command("a4", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (Return-Path Subject)])")
        #expect(fetched.contains("Return-Path: <friend@example.org>"), "\(fetched)")
        #expect(fetched.contains("Subject: through postfix"))
        // Postfix writes its log line after our 250, which may be after the IDLE client heard of the message.
        var log = ""
        try? await waitUntil("Postfix logs the delivery") {
            log = (try? String(contentsOf: directory.appendingPathComponent("maillog"), encoding: .utf8)) ?? ""
            return log.contains("status=sent (250 2.0.0 Message")
        }
        #expect(log.contains("status=sent (250 2.0.0 Message"), "\(log)")
    }

    /// The same messages through LMTP and through IMAP APPEND: identical bytes apart from the two trace headers,
    /// identical ENVELOPE and BODYSTRUCTURE.
    @Test func lmtpAndAppendStoreTheSameThing() async throws {
        let running = try await Self.start()
        defer { running.stop() }
        #expect(try await running.admin("user", "add", "vialmtp", "--password-stdin", stdin: "pw\n").status == 0)
        #expect(try await running.admin("user", "add", "viaappend", "--password-stdin", stdin: "pw\n").status == 0)
        let fixtures = try FileManager.default.contentsOfDirectory(
            atPath: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("IMAPEngineTests/MIME/Fixtures").path
        ).filter { $0.hasSuffix(".eml") }.sorted()
        #expect(fixtures.count >= 10)
        let script = #"""
            import hashlib, imaplib, json, os, re, smtplib, glob
            # NUL is not allowed in an IMAP literal (APPEND would need literal8), so binary-nul.eml sits this one out.
            fixtures = sorted(f for f in glob.glob(os.environ["FIXTURES"] + "/*.eml") if "binary-nul" not in f)
            messages = []
            for i in range(1000):
                raw = open(fixtures[i % len(fixtures)], "rb").read()
                # smtplib adds a CRLF before the final dot when the data does not end in one, which would make the
                # LF-only fixture one blank line longer than what imaplib (which turns LF into CRLF) appends.
                if not raw.endswith(b"\r\n"):
                    raw = raw.rstrip(b"\n") + b"\r\n"
                messages.append(b"X-Sequence: %d\r\n" % i + raw)
            lmtp = smtplib.LMTP("127.0.0.1", int(os.environ["LMTP"]))
            for raw in messages:
                refused = lmtp.sendmail("s@example.org", ["vialmtp@example.com"], raw)
                assert not refused, refused
            lmtp.quit()
            imap = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP"]))
            # imaplib writes a literal and its CRLF separately; without NODELAY each APPEND waits for a delayed ACK.
            import socket
            imap.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            imap.login("viaappend", "pw")
            for raw in messages:
                typ, _ = imap.append("INBOX", None, None, raw)
                assert typ == "OK"
            imap.logout()
            def dump(user):
                m = imaplib.IMAP4("127.0.0.1", int(os.environ["IMAP"]))
                m.login(user, "pw")
                m.select("INBOX", readonly=True)
                out = []
                def flat(data):
                    # imaplib splits a response at each literal: join the pieces back with their literal contents.
                    return b"".join(b"".join(p) if isinstance(p, tuple) else p for p in data)
                for n in range(1, len(messages) + 1):
                    typ, data = m.fetch(str(n), "(BODY.PEEK[])")
                    assert typ == "OK" and isinstance(data[0], tuple), data
                    body = data[0][1]
                    if user == "vialmtp":
                        # Return-Path and Received (folded) come first.
                        assert body.startswith(b"Return-Path: "), body[:100]
                        body = body.split(b"\r\n", 1)[1]
                        assert body.startswith(b"Received: "), body[:100]
                        body = re.sub(rb"^Received: [^\r]*\r\n(\t[^\r]*\r\n)*", b"", body)
                    typ, data = m.fetch(str(n), "(ENVELOPE BODYSTRUCTURE)")
                    assert typ == "OK", data
                    out.append([hashlib.sha256(body).hexdigest(), hashlib.sha256(flat(data)).hexdigest()])
                m.logout()
                return out
            a, b = dump("vialmtp"), dump("viaappend")
            print(json.dumps({"count": [len(a), len(b)], "differ": [i for i in range(min(len(a), len(b))) if a[i] != b[i]][:5]}))
            """#
        let fixturesPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("IMAPEngineTests/MIME/Fixtures").path
        let run = try await python(
            script, environment: ["FIXTURES": fixturesPath, "LMTP": "\(running.lmtp)", "IMAP": "\(running.imap)"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("\"count\": [1000, 1000]"), "\(run.stdout)")
        #expect(run.stdout.contains("\"differ\": []"), "\(run.stdout)")
    }

    /// Bare LF, NUL, long lines and dot-stuffing; a client that leaves before the final dot stores nothing; SIZE,
    /// recipient and connection limits; BDAT; user+folder and case-insensitive local parts.
    @Test func guardRailsAndAddressing() async throws {
        let running = try await Self.start(["--max-append-size", "100000", "--lmtp-max-recipients", "2"])
        defer { running.stop() }
        #expect(try await running.admin("user", "add", "bob", "--password-stdin", stdin: "pw\n").status == 0)
        #expect(try await running.admin("mailbox", "create", "bob", "Lists").status == 0)
        let c = try await IMAPTestClient.connect(port: running.lmtp)
        #expect(try await c.readLine() == "220 mx.test.example LMTP MailHost ready")
        try await c.sendLine("LHLO client.example")
        var capabilities: [String] = []
        while let line = try? await c.readLine(timeout: .seconds(5)) {
            capabilities.append(line)
            if line.hasPrefix("250 ") { break }
        }
        #expect(capabilities.contains("250-PIPELINING") && capabilities.contains("250-ENHANCEDSTATUSCODES"))
        #expect(capabilities.contains("250-CHUNKING") && capabilities.last == "250 SIZE 100000")
        // Pipelined transaction: user+folder, upper-case local part, a third recipient over the limit.
        try await c.send(
            "MAIL FROM:<s@example.org> BODY=8BITMIME SIZE=500\r\nRCPT TO:<Bob+Lists@example.com>\r\n"
                + "RCPT TO:<BOB@example.com>\r\nRCPT TO:<bob+nosuchfolder@example.com>\r\nDATA\r\n")
        #expect(try await c.readLine() == "250 2.1.0 Sender OK")
        #expect(try await c.readLine() == "250 2.1.5 Recipient OK")
        #expect(try await c.readLine() == "250 2.1.5 Recipient OK")
        #expect(try await c.readLine() == "452 4.5.3 Too many recipients")
        #expect(try await c.readLine() == "354 Start mail input; end with <CRLF>.<CRLF>")
        let long = String(repeating: "L", count: 3000)
        try await c.send(
            [UInt8]("Subject: rails\nX-Bare: lf\n\nline with NUL ".utf8) + [0]
                + [UInt8]("\n\(long)\r\n..dot\r\n.\r\n".utf8))
        #expect(try await c.readLine().hasPrefix("250 2.0.0 Message"))
        #expect(try await c.readLine().hasPrefix("250 2.0.0 Message"))
        // SIZE over the limit is refused at MAIL; BDAT delivers in chunks.
        #expect(
            try await c.command2("MAIL FROM:<s@example.org> SIZE=200000")
                == "552 5.3.4 Message size exceeds fixed limit of 100000")
        #expect(try await c.command2("MAIL FROM:<s@example.org>") == "250 2.1.0 Sender OK")
        #expect(try await c.command2("RCPT TO:<bob@example.com>") == "250 2.1.5 Recipient OK")
        try await c.send("BDAT 18\r\nSubject: chunked\r\n")
        #expect(try await c.readLine() == "250 2.0.0 18 octets received")
        try await c.send("BDAT 8 LAST\r\n\r\nbody\r\n")
        #expect(try await c.readLine().hasPrefix("250 2.0.0 Message"))
        #expect(try await c.command2("VRFY bob").hasPrefix("252 2.5.0"))
        #expect(try await c.command2("HELO x") == "500 5.5.1 This is LMTP: use LHLO")
        #expect(try await c.command2("DATA") == "503 5.5.1 No valid recipients")
        #expect(try await c.command2("NOOP") == "250 2.0.0 OK")
        // A client that disconnects before the final dot leaves nothing.
        #expect(try await c.command2("MAIL FROM:<s@example.org>") == "250 2.1.0 Sender OK")
        #expect(try await c.command2("RCPT TO:<bob@example.com>") == "250 2.1.5 Recipient OK")
        #expect(try await c.command2("DATA") == "354 Start mail input; end with <CRLF>.<CRLF>")
        try await c.send("Subject: never finished\r\n\r\nhalf")
        await c.close()
        try await Task.sleep(for: .milliseconds(300))

        let imap = try await IMAPTestClient.connect(port: running.imap)
        _ = try await imap.readLine()
        try await imap.expectOK("i1", "LOGIN bob pw")
        #expect(try await imap.command("i2", "STATUS INBOX (MESSAGES)").first == "* STATUS INBOX (MESSAGES 2)")
        #expect(try await imap.command("i3", "STATUS Lists (MESSAGES)").first == "* STATUS Lists (MESSAGES 1)")
        try await imap.expectOK("i4", "SELECT INBOX")
        let fetched = try await imap.fetchLiteral("i5", "FETCH 1 BODY.PEEK[TEXT]")
        #expect(fetched == Array("line with NUL ".utf8) + [0x80] + Array("\r\n\(long)\r\n.dot\r\n".utf8))
        // BODY[] cannot carry NUL (it goes out as 0x80, as in Dovecot); BINARY[] shows the stored byte is the NUL.
        let binary = try await imap.fetchLiteral("i5b", "FETCH 1 BINARY.PEEK[1]")
        #expect(binary == Array("line with NUL ".utf8) + [0] + Array("\r\n\(long)\r\n.dot\r\n".utf8))
        let header = try await imap.command("i6", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-Bare)])")
        #expect(header.contains("X-Bare: lf"))
    }

    @Test func pipeDeliveryExitCodes() async throws {
        let running = try await Self.start()
        defer { running.stop() }
        #expect(
            try await running.admin("user", "add", "carol", "--password-stdin", "--quota", "1K", stdin: "pw\n").status
                == 0)
        func deliver(_ arguments: [String], _ message: String) async throws -> CommandResult {
            try await runTool(
                ServerProcess.executable("mailhost"),
                ["deliver", "--storage", running.database.setting] + arguments,
                stdin: message)
        }
        #expect(try await deliver(["--to", "Carol"], "Subject: piped\n\nhi\n").status == 0)
        #expect(try await deliver(["--to", "nobody-here"], "Subject: x\n\nx\n").status == 67)
        #expect(try await deliver(["--to", "carol"], "").status == 65)
        let big = "Subject: big\n\n" + String(repeating: "y", count: 3000) + "\n"
        #expect(try await deliver(["--to", "carol"], big).status == 75)
        #expect(try await deliver(["--to", "carol", "--quota-permanent"], big).status == 69)
        let unreachable = try await runTool(
            ServerProcess.executable("mailhost"),
            ["deliver", "--storage", "postgres://x@127.0.0.1:1/x", "--to", "carol"],
            stdin: "Subject: x\n\nx\n")
        #expect(unreachable.status == 75)
        let list = try await running.admin("mailbox", "list", "carol", "--json")
        #expect(list.stdout.contains("\"messages\":1"))
    }

    /// The unix-socket listener Postfix's `lmtp:unix:` uses; the connection limit answers 421 and closes; with
    /// configured domains, mail for any other domain is refused at RCPT; a silent client is closed after the timeout.
    @Test func unixSocketConnectionLimitAndDomains() async throws {
        let database = try await TestStorage.create()
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mailhost-lmtp-\(UUID().uuidString).sock"
        ).path
        let server = try ServerProcess([
            "serve", "--imap", "127.0.0.1:0", "--lmtp", "unix:\(socket)", "--storage", database.setting, "--auth",
            "db",
            "--lmtp-max-connections", "1", "--lmtp-domain", "example.com", "--lmtp-timeout", "2",
        ])
        let running = Running(server: server, database: database, imap: try await server.waitUntilListening(), lmtp: 0)
        defer {
            running.stop()
            try? FileManager.default.removeItem(atPath: socket)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !server.log.contains("listening lmtp=unix:\(socket)") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await running.admin("user", "add", "erin", "--password-stdin", stdin: "pw\n").status == 0)
        let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(mode == 0o666)
        let script = #"""
            import os, smtplib, socket, time
            path = os.environ["SOCKET"]
            first = smtplib.LMTP(path)
            first.ehlo()  # sends LHLO
            second = socket.socket(socket.AF_UNIX)
            second.connect(path)
            reply = second.makefile("rb").readline().decode().strip()
            print("second:", reply, "then eof:", second.recv(100) == b"")
            print("foreign:", first.rcpt("erin@example.org") if first.mail("s@example.org")[0] == 250 else "mail failed")
            first.rset()
            print("refused:", first.sendmail("s@example.org", ["Erin@EXAMPLE.COM", "erin@elsewhere.example"], b"Subject: u\r\n\r\nx\r\n"))
            first.quit()
            time.sleep(0.5)  # the first connection's slot is freed once the server has closed it
            idle = socket.socket(socket.AF_UNIX)
            idle.connect(path)
            lines = idle.makefile("rb")
            lines.readline()
            started = time.monotonic()
            print("idle:", lines.readline().decode().strip(), round(time.monotonic() - started))
            """#
        let run = try await python(script, environment: ["SOCKET": socket])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            run.stdout.contains("second: 421 4.3.2 Too many connections, try again later then eof: True"),
            "\(run.stdout)")
        #expect(
            run.stdout.contains("foreign: (550, b'5.1.2 Mail for that domain is not accepted here')"), "\(run.stdout)")
        #expect(run.stdout.contains("refused: {'erin@elsewhere.example': (550"), "\(run.stdout)")
        #expect(run.stdout.contains("idle: 421 4.4.2 Timeout, closing connection 2"), "\(run.stdout)")
        let list = try await running.admin("mailbox", "list", "erin", "--json")
        #expect(list.stdout.contains("\"messages\":1"), "\(list.stdout)")
    }

    /// PostgreSQL refusing connections (a SQLite file has no server to lose).
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func storeOutageIsATemporaryFailure() async throws {
        let running = try await Self.start(["--store-timeout", "2"])
        defer { running.stop() }
        #expect(try await running.admin("user", "add", "dave", "--password-stdin", stdin: "pw\n").status == 0)
        try await TestDatabase.setAvailable(false, running.database.postgres)
        let c = try await IMAPTestClient.connect(port: running.lmtp)
        _ = try await c.readLine()
        try await c.sendLine("LHLO x")
        while try await c.readLine().hasPrefix("250-") {}
        #expect(try await c.command2("MAIL FROM:<s@example.org>") == "250 2.1.0 Sender OK")
        #expect(try await c.command2("RCPT TO:<dave@example.com>") == "451 4.3.0 Temporary failure, try again later")
        try await TestDatabase.setAvailable(true, running.database.postgres)
    }
}

extension IMAPTestClient {
    /// Sends one LMTP command line and returns the single reply line.
    func command2(_ line: String) async throws -> String {
        try await sendLine(line)
        return try await readLine()
    }

    /// A FETCH whose response carries one literal: returns the literal's bytes.
    func fetchLiteral(_ tag: String, _ command: String) async throws -> [UInt8] {
        try await sendLine("\(tag) \(command)")
        let first = try await readLine()
        guard let open = first.lastIndex(of: "{"), let size = Int(first[first.index(after: open)...].dropLast()) else {
            throw TestFailure("no literal in \(first)")
        }
        let bytes = try await readBytes(size)
        _ = try await readResponse(tag: tag)
        return bytes
    }
}
