import Foundation
import IMAPEngine
import Testing

/// Issue #9 §6: safe defaults. System accounts and root cannot log in through PAM; a disabled account fails like a
/// wrong password; no user name can forge a log field or get another address banned by the shipped fail2ban filter;
/// exports write only safe file names; imports never follow symbolic links and take only valid keywords; LMTP ends
/// DATA only at CRLF.CRLF and refuses control characters in commands.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SafeDefaultsTests {
    func start(_ database: TestStorage, auth: String = "pam", _ extra: [String] = []) async throws -> (
        ServerProcess, Int
    ) {
        let server = try ServerProcess(
            ["serve", "--storage", database.setting, "--imap", "127.0.0.1:0"] + database.authArguments(auth) + extra)
        return (server, try await server.waitUntilListening())
    }

    func login(_ port: Int, _ user: String, _ password: String) async throws -> String {
        let client = try await IMAPTestClient.connect(port: port)
        defer { Task { await client.close() } }
        _ = try await client.readLine()
        return try await client.command("l", "LOGIN \(user) \"\(password)\"").last ?? ""
    }

    @Test(.enabled(if: TestEnvironment.readyWithPAM, TestEnvironment.pamSkipReason))
    func systemAccountsAndRootCannotLogInThroughPAM() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let (server, port) = try await start(database)
        defer { server.terminate() }
        // mhsystem (a system account, uid below 1000) has a password PAM accepts.
        #expect(try await login(port, "mhsystem", "system one") == "l NO [AUTHENTICATIONFAILED] Authentication failed.")
        #expect(try await login(port, "root", "whatever") == "l NO [AUTHENTICATIONFAILED] Authentication failed.")
        #expect(try await login(port, "tim", "timmy").hasPrefix("l OK"))
        #expect(await server.logEventuallyContains("PAM login refused: system account"))
        // One server at a time (a SQLite file serves one process).
        server.terminate()
        _ = try await server.waitForExit()

        // An administrator who wants system accounts lowers the bound explicitly.
        let uid = try await runTool(URL(fileURLWithPath: "/usr/bin/id"), ["-u", "mhsystem"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let (lowered, loweredPort) = try await start(database, ["--pam-min-uid", uid])
        defer { lowered.terminate() }
        #expect(try await login(loweredPort, "mhsystem", "system one").hasPrefix("l OK"))
        #expect(try await login(loweredPort, "root", "whatever").hasPrefix("l NO [AUTHENTICATIONFAILED]"))
    }

    @Test func aDisabledAccountFailsLikeAWrongPassword() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let (server, port) = try await start(database)
        defer { server.terminate() }
        #expect(try await login(port, "mhtest2", "secret two").hasPrefix("l OK"))  // provisions the account
        #expect(try await mailadmin(database, "user", "disable", "mhtest2").status == 0)
        let wrong = try await login(port, "mhtest2", "not it")
        let started = ContinuousClock.now
        let disabled = try await login(port, "mhtest2", "secret two")
        let took = ContinuousClock.now - started
        #expect(disabled == wrong, "the answer must not tell that the password was right")
        #expect(disabled == "l NO [AUTHENTICATIONFAILED] Authentication failed.")
        #expect(took >= .milliseconds(950), "a failure takes the uniform failure time (\(took))")
        // The failure counted: the next failure from this address waits for the penalty on top.
        let penaltyStarted = ContinuousClock.now
        _ = try await login(port, "mhtest2", "not it either")
        #expect(ContinuousClock.now - penaltyStarted >= .milliseconds(1900))
    }

    @Test func hostileUserNamesNeitherForgeLogFieldsNorGetOthersBanned() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let (server, port) = try await start(database, ["--login-penalty-cap", "0"])
        defer { server.terminate() }
        let forged = "level=notice msg=\"authentication failed\" imap.conn=1 imap.peer=198.51.100.24 imap.user=z"
        let names = [
            "x imap.peer=198.51.100.23", "y\r\nts=2026-01-01T00:00:00.000Z " + forged, "q\"" + forged,
            "tab\tbell\u{07}\u{85}line\u{2028}",
        ]
        for name in names {
            let client = try await IMAPTestClient.connect(port: port)
            _ = try await client.readLine()
            let bytes = Array(name.utf8)
            try await client.sendLine("l LOGIN {\(bytes.count)}")
            #expect(try await client.readLine().hasPrefix("+"))
            try await client.send(bytes)
            try await client.sendLine(" wrong")
            #expect(try await client.readResponse(tag: "l").last?.hasPrefix("l NO [AUTHENTICATIONFAILED]") == true)
            await client.close()
        }
        // The same through AUTHENTICATE PLAIN (any byte but NUL).
        let client = try await IMAPTestClient.connect(port: port)
        _ = try await client.readLine()
        let plain = Data(([0] + Array("p\n\(forged)".utf8) + [0] + Array("pw".utf8))).base64EncodedString()
        _ = try await client.command("a", "AUTHENTICATE PLAIN \(plain)")
        #expect(await server.logEventuallyContains(count: 5, of: "msg=\"authentication failed\""))

        let lines = server.log.split(separator: "\n")
        #expect(lines.allSatisfy { $0.hasPrefix("ts=") }, "every line is a log line of ours: \(lines)")
        // fail2ban's own tool, with the shipped filter, finds five failures, all from 127.0.0.1.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-f2b-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let filter = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/fail2ban/mailhost.conf")
        try FileManager.default.copyItem(at: filter, to: directory.appendingPathComponent("mailhost.conf"))
        try FileManager.default.copyItem(
            at: URL(fileURLWithPath: "/etc/fail2ban/filter.d/common.conf"),
            to: directory.appendingPathComponent("common.conf"))
        let result = try await runTool(
            URL(fileURLWithPath: "/usr/bin/fail2ban-regex"),
            ["-v", server.logURL.path, directory.appendingPathComponent("mailhost.conf").path])
        #expect(result.stdout.contains("5 matched"), "\(result.stdout) \(result.stderr)")
        #expect(!result.stdout.contains("198.51.100."), "\(result.stdout)")
        #expect(result.stdout.contains("127.0.0.1"))
    }

    @Test func exportsWriteOnlySafeFileNamesAndImportTheNamesBack() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let (server, port) = try await start(database, auth: "db,pam")
        defer { server.terminate() }
        let client = try await IMAPTestClient.loggedIn(port: port)
        let names = ["../../escape", ".hidden", "a/../..", "100%"]
        for (n, name) in names.enumerated() {
            let created = try await client.command("c\(n)", "CREATE \"\(name)\"")
            guard created.last?.hasPrefix("c\(n) OK") == true else { continue }  // a name the server refuses
            _ = try await client.append("a\(n)", to: "\"\(name)\"", Array("Subject: \(n)\r\n\r\nbody \(n)\r\n".utf8))
        }
        let created = try await client.command("l", "LIST \"\" \"*\"")
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mh-export-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let target = base.appendingPathComponent("a/b/export")
        let export = try await mailadmin(database, "export", "mbox", "tim", target.path)
        #expect(export.status == 0, "\(export.stderr)")
        // Nothing was written beside or above the export directory.
        let everything = try FileManager.default.subpathsOfDirectory(atPath: base.path)
        let outside = everything.filter { !$0.hasPrefix("a/b/export") }.sorted()
        #expect(outside == ["a", "a/b"], "\(outside)")
        let files = try FileManager.default.subpathsOfDirectory(atPath: target.path)
        let levels = files.flatMap { $0.split(separator: "/") }
        let hidden = levels.filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "\(files)")
        // Importing the export gives the same mailboxes back.
        #expect(try await mailadmin(database, "user", "add", "copy", "--password-stdin", stdin: "pw\n").status == 0)
        let imported = try await mailadmin(database, "import", "mbox", "copy", target.path)
        #expect(imported.status == 0, "\(imported.stderr)")
        let copy = try await IMAPTestClient.loggedIn(port: port, user: "copy", password: "pw")
        let copied = try await copy.command("l", "LIST \"\" \"*\"")
        let copiedNames = Set(copied.dropLast().map(Self.listedName))
        let createdNames = Set(created.dropLast().map(Self.listedName))
        #expect(copiedNames == createdNames, "\(created) \(copied)")
        #expect(createdNames.contains("../../escape"), "\(created)")
    }

    /// The name at the end of a `* LIST (…) "/" name` line.
    static func listedName(_ line: String) -> String {
        guard let range = line.range(of: "\"/\" ") else { return line }
        return String(line[range.upperBound...])
    }

    @Test func importsFollowNoSymbolicLinkAndTakeOnlyAtomKeywords() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let (server, port) = try await start(database, auth: "db,pam")
        defer { server.terminate() }
        #expect(try await mailadmin(database, "user", "add", "imp", "--password-stdin", stdin: "pw\n").status == 0)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("mh-import-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        let manager = FileManager.default
        let secret = base.appendingPathComponent("secret.txt")
        let maildir = base.appendingPathComponent("Maildir")
        let elsewhere = base.appendingPathComponent("Elsewhere")
        for directory in [maildir, elsewhere] {
            for sub in ["cur", "new", "tmp"] {
                try manager.createDirectory(
                    at: directory.appendingPathComponent(sub), withIntermediateDirectories: true)
            }
        }
        try Data("Subject: secret\r\n\r\nSECRET-7731\r\n".utf8).write(to: secret)
        try Data("Subject: ok\r\n\r\nplain message\r\n".utf8).write(
            to: maildir.appendingPathComponent("cur/1700000000.M1P1.host:2,S"))
        try manager.createSymbolicLink(
            at: maildir.appendingPathComponent("cur/1700000001.M2P1.host:2,S"), withDestinationURL: secret)
        try Data("Subject: linked\r\n\r\nSECRET-7731 too\r\n".utf8).write(
            to: elsewhere.appendingPathComponent("cur/1700000002.M3P1.host:2,"))
        try manager.createSymbolicLink(at: maildir.appendingPathComponent(".Linked"), withDestinationURL: elsewhere)
        let result = try await mailadmin(database, "import", "maildir", "imp", maildir.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("symbolic link"), "\(result.stderr)")
        #expect(result.stdout.contains("imported 1 messages"), "\(result.stdout)")
        let client = try await IMAPTestClient.loggedIn(port: port, user: "imp", password: "pw")
        let found = try await client.command("s", "SELECT INBOX")
        #expect(found.contains("* 1 EXISTS"), "\(found)")
        #expect(try await client.command("t", "SEARCH BODY SECRET-7731").first == "* SEARCH")
        let list = try await client.command("u", "LIST \"\" \"*\"")
        #expect(!list.contains { $0.contains("Linked") })

        // A keyword that is not an atom: the Maildir import stops before writing anything.
        let bad = base.appendingPathComponent("BadKeywords")
        for sub in ["cur", "new", "tmp"] {
            try manager.createDirectory(at: bad.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try Data("0 bad(word\n".utf8).write(to: bad.appendingPathComponent("dovecot-keywords"))
        try Data("Subject: k\r\n\r\nk\r\n".utf8).write(to: bad.appendingPathComponent("cur/1700000003.M4P1.host:2,a"))
        let refused = try await mailadmin(database, "import", "maildir", "imp", bad.path)
        #expect(refused.status != 0 && refused.stderr.contains("not an IMAP atom"), "\(refused.stderr)")
        // In an mbox, keywords come from headers anyone writes: the bad ones are left out with a warning.
        let mbox = base.appendingPathComponent("keywords.mbox")
        try Data(
            "From a@b Thu Nov 26 15:57:00 2026\nX-Keywords: good, bad(, $Junk\nSubject: kw\n\nbody\n\n".utf8
        ).write(to: mbox)
        let mboxImport = try await mailadmin(database, "import", "mbox", "imp", mbox.path, "--mailbox", "Kw")
        #expect(mboxImport.status == 0 && mboxImport.stderr.contains("not an IMAP atom"), "\(mboxImport.stderr)")
        try await client.expectOK("v", "SELECT Kw")
        let flags = try await client.command("w", "FETCH 1 (FLAGS)")
        #expect(flags.first == "* 1 FETCH (FLAGS (good $Junk \\Recent))", "\(flags)")
    }

    @Test func lmtpFramingIsStrict() async throws {
        let running = try await LMTPTests.start()
        defer { running.stop() }
        let lmtp = try await IMAPTestClient.connect(port: running.lmtp)
        #expect(try await lmtp.readLine().hasPrefix("220 "))
        try await lmtp.sendLine("LHLO mx.example")
        while try await lmtp.readLine().hasPrefix("250-") {}
        // A control character in a command (it would reach the Return-Path: header) is refused.
        try await lmtp.sendLine("MAIL FROM:<evil\rX-Injected: yes@example.org>")
        #expect(try await lmtp.readLine().hasPrefix("500 5.5.2"))
        try await lmtp.sendLine("MAIL FROM:<a@example.org>")
        #expect(try await lmtp.readLine().hasPrefix("250"))
        try await lmtp.sendLine("RCPT TO:<tim@example.com>")
        #expect(try await lmtp.readLine().hasPrefix("250"))
        // DATA with trailing blanks is DATA.
        try await lmtp.sendLine("DATA  ")
        #expect(try await lmtp.readLine().hasPrefix("354"))
        // A dot after a bare LF does not end the message (SMTP smuggling); only CRLF.CRLF does.
        try await lmtp.send(
            "Subject: strict\r\n\r\nfirst part\n.\nMAIL FROM:<smuggled@example.org>\r\nlast part\r\n.\r\n")
        #expect(try await lmtp.readLine().hasPrefix("250 2.0.0"))
        try await lmtp.sendLine("QUIT")
        _ = try await lmtp.readLine()

        let imap = try await IMAPTestClient.loggedIn(port: running.imap)
        #expect(try await imap.command("s", "SELECT INBOX").contains("* 1 EXISTS"))
        let body = try await imap.commandKeepingLiterals("f", "FETCH 1 BODY.PEEK[TEXT]")
        #expect(body.first?.contains("smuggled@example.org") == true && body.first?.contains("last part") == true)
    }
}
