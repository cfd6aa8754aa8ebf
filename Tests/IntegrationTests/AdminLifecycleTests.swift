import Foundation
import IMAPEngine
import Testing

/// The administrator's lifecycle through the built binaries (issue #3): accounts, imports, IMAP with a real client
/// library (Python's imaplib), export, delete, re-import and compare message for message.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct AdminLifecycleTests {
    /// Every mailbox of an account as imaplib sees it: name → [(sha256 of BODY[], flags, INTERNALDATE)] by UID.
    static let snapshotScript = #"""
        import hashlib, imaplib, json, os, re
        m = imaplib.IMAP4("127.0.0.1", int(os.environ["PORT"]))
        m.login(os.environ["IMAPUSER"], os.environ["IMAPPASS"])
        result = {}
        typ, boxes = m.list()
        for line in boxes:
            name = re.match(rb'\(.*?\) "/" (.*)', line).group(1).decode()
            name = name[1:-1] if name.startswith('"') else name
            typ, data = m.select('"%s"' % name, readonly=True)
            messages = []
            if int(data[0]) > 0:
                typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    head = item[0].decode()
                    flags = sorted(f for f in re.search(r"FLAGS \((.*?)\)", head).group(1).split() if f != "\\Recent")
                    date = re.search(r'INTERNALDATE "(.*?)"', head).group(1)
                    messages.append([hashlib.sha256(item[1]).hexdigest(), flags, date])
            result[name] = messages
        m.logout()
        print(json.dumps(result, sort_keys=True))
        """#

    func snapshot(port: Int, user: String, password: String) async throws -> [String: [[String]]] {
        let run = try await python(
            Self.snapshotScript, environment: ["PORT": "\(port)", "IMAPUSER": user, "IMAPPASS": password])
        guard run.status == 0 else { throw TestFailure("snapshot failed: \(run.stderr)") }
        let decoded = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: [[Any]]] ?? [:]
        return decoded.mapValues { messages in
            messages.map { entry in
                [
                    entry[0] as? String ?? "", ((entry[1] as? [String]) ?? []).joined(separator: " "),
                    entry[2] as? String ?? "",
                ]
            }
        }
    }

    /// 2,000 messages in mboxrd form with Status/X-Status/X-Keywords flags and From_ dates; returns the file and the
    /// expected flags per message.
    static func makeMbox(_ url: URL) throws -> [String] {
        var text = ""
        var expected: [String] = []
        for i in 0..<2000 {
            var flags: [String] = []
            var headers = ""
            if i % 2 == 0 {
                headers += "Status: RO\n"
                flags.append("\\Seen")
            }
            if i % 3 == 0 {
                headers += "X-Status: AF\n"
                flags += ["\\Answered", "\\Flagged"]
            }
            if i % 7 == 0 {
                headers += "X-Keywords: $Label1, project\n"
                flags += ["$Label1", "project"]
            }
            let day = 1 + i % 28
            text +=
                "From sender@example.com Mon Feb \(day < 10 ? " " : "")\(day) 10:\(String(format: "%02d", i % 60)):00 2021\n"
            text += "From: Sender \(i) <sender\(i)@example.com>\nTo: life@example.com\nSubject: message \(i)\n"
            text += "Date: Mon, \(day) Feb 2021 10:00:00 +0000\nMessage-ID: <\(i)@example.com>\n\(headers)\n"
            text += "Body of message \(i).\n>From the escaped line\nFrom here it continues\n\n"
            expected.append(flags.sorted().joined(separator: " "))
        }
        // mboxrd escaping of the two "From" body lines.
        text = text.replacingOccurrences(of: "\n>From the escaped", with: "\n>>From the escaped")
            .replacingOccurrences(of: "\nFrom here it continues", with: "\n>From here it continues")
        try Data(text.utf8).write(to: url)
        return expected
    }

    /// A Maildir++ tree as Dovecot writes it: INBOX and .Work, flags in names, dovecot-keywords, mtimes.
    static func makeMaildir(_ root: URL) throws {
        let manager = FileManager.default
        for folder in ["", ".Work", ".Work.Reports"] {
            for sub in ["cur", "new", "tmp"] {
                try manager.createDirectory(
                    at: root.appendingPathComponent(folder).appendingPathComponent(sub),
                    withIntermediateDirectories: true)
            }
        }
        try Data("0 $Junk\n1 urgent\n".utf8).write(to: root.appendingPathComponent(".Work/dovecot-keywords"))
        let files: [(String, String, String)] = [
            ("", "cur/1600000000.M1P1.host,S=60:2,S", "Subject: inbox seen\n\nhello\n"),
            ("", "new/1600000001.M2P1.host", "Subject: inbox new\n\nhello\n"),
            (".Work", "cur/1600000002.M3P1.host:2,FRa", "Subject: work flagged junk\n\nwork\n"),
            (".Work", "cur/1600000003.M4P1.host:2,DPTb", "Subject: work draft\n\nwork\n"),
            (".Work.Reports", "cur/1600000004.M5P1.host:2,", "Subject: report\n\nnumbers\n"),
        ]
        for (offset, (folder, name, text)) in files.enumerated() {
            let url = root.appendingPathComponent(folder).appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            try manager.setAttributes(
                [.modificationDate: Date(timeIntervalSince1970: TimeInterval(1_600_000_000 + offset * 3600))],
                ofItemAtPath: url.path)
        }
    }

    @Test func accountLifecycleWithImportExportAndReimport() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("mh-life-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let server = try ServerProcess(
            ["serve", "--imap", "127.0.0.1:0", "--storage", database.setting] + database.authArguments())
        defer { server.terminate() }
        let port = try await server.waitUntilListening()

        let added = try await mailadmin(database, "user", "add", "Life", "--password-stdin", stdin: "pw of life\n")
        #expect(added.status == 0, "\(added.stderr)")
        let empty = try await snapshot(port: port, user: "life", password: "pw of life")
        #expect(empty == ["INBOX": []])

        let mbox = work.appendingPathComponent("big.mbox")
        let expectedFlags = try Self.makeMbox(mbox)
        let imported = try await mailadmin(database, "import", "mbox", "life", mbox.path, "--mailbox", "Imported/2021")
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("imported 2000 messages"))
        let maildir = work.appendingPathComponent("Maildir")
        try Self.makeMaildir(maildir)
        let maildirImport = try await mailadmin(database, "import", "maildir", "life", maildir.path)
        #expect(maildirImport.status == 0, "\(maildirImport.stderr)")
        #expect(maildirImport.stdout.contains("imported 5 messages"))
        // Running the same imports again adds nothing.
        let again = try await mailadmin(database, "import", "mbox", "life", mbox.path, "--mailbox", "Imported/2021")
        #expect(again.stdout.contains("imported 0 messages") && again.stdout.contains("skipped 2000"))

        let original = try await snapshot(port: port, user: "life", password: "pw of life")
        let importedFlags = (original["Imported/2021"] ?? []).map { $0[1] }
        #expect(importedFlags == expectedFlags)
        #expect(original["Imported/2021"]?.first?[2] == " 1-Feb-2021 10:00:00 +0000")
        #expect(original["INBOX"]?.map { $0[1] } == ["\\Seen", ""])
        #expect(
            original["Work"]?.map { $0[1] } == ["$Junk \\Answered \\Flagged", "$Forwarded \\Deleted \\Draft urgent"])
        #expect(original["Work/Reports"]?.count == 1)
        #expect(original["INBOX"]?.first?[2] == "13-Sep-2020 12:26:40 +0000")

        // Export both ways, delete the account, restore each export into a new account and compare.
        let mboxExport = work.appendingPathComponent("export-mbox")
        let maildirExport = work.appendingPathComponent("export-maildir")
        #expect(try await mailadmin(database, "export", "mbox", "life", mboxExport.path).status == 0)
        #expect(try await mailadmin(database, "export", "maildir", "life", maildirExport.path).status == 0)
        let refused = try await mailadmin(database, "user", "del", "life")
        #expect(refused.status != 0 && refused.stderr.contains("--yes"))
        #expect(try await mailadmin(database, "user", "del", "life", "--yes").status == 0)
        #expect(try await mailadmin(database, "user", "show", "life").status != 0)

        for (user, kind, source) in [("mboxcopy", "mbox", mboxExport), ("maildircopy", "maildir", maildirExport)] {
            #expect(try await mailadmin(database, "user", "add", user, "--password-stdin", stdin: "pw\n").status == 0)
            let restore = try await mailadmin(database, "import", kind, user, source.path)
            #expect(restore.status == 0, "\(restore.stderr)")
            let restored = try await snapshot(port: port, user: user, password: "pw")
            #expect(Set(restored.keys) == Set(original.keys), "\(kind): mailboxes differ")
            for (name, messages) in original {
                let copy = restored[name] ?? []
                #expect(copy.count == messages.count, "\(kind) \(name): \(copy.count) of \(messages.count) messages")
                let differing = zip(messages, copy).filter { $0.0 != $0.1 }.prefix(2).map { "\($0.0) vs \($0.1)" }
                #expect(differing.isEmpty, "\(kind) \(name): \(differing)")
            }
        }
    }

    @Test func dovecotPasswordHashesLogIn() async throws {
        try await withTestServer { server in
            let database = server.storage
            let sha512 =
                "{SHA512-CRYPT}$6$OXAzqzir0wBgGCex$EzYPZDRivxgVlwKVoVXF1puaOvGZZku/I0hoaAGPU9ROCnB6CMdFttzphNA/mDHlTRrlo/1DQjtlpNQiNMJ1H."
            let bcrypt = "{BLF-CRYPT}$2y$05$UtAhQKv3ykAU1zLoxKX/L.4ie0UMYd/EP4hkj6o85JhmrPsphOYz6"
            #expect(try await mailadmin(database, "user", "add", "migrated", "--password-hash", sha512).status == 0)
            #expect(try await mailadmin(database, "user", "add", "blowfish", "--password-hash", bcrypt).status == 0)
            let c = try await server.connect()
            _ = try await c.readLine()
            try await c.expectOK("a1", "LOGIN migrated \"migrated from dovecot\"")
            let d = try await server.connect()
            _ = try await d.readLine()
            #expect(
                try await d.command("b1", "LOGIN blowfish wrong").last?.hasPrefix("b1 NO [AUTHENTICATIONFAILED]")
                    == true)
            try await d.expectOK("b2", "LOGIN blowfish \"bcrypt pass\"")
            // A new password is hashed with yescrypt.
            #expect(
                try await mailadmin(database, "user", "passwd", "blowfish", "--password-stdin", stdin: "fresh\n").status
                    == 0)
            let hash = try await server.store.credentials(login: "blowfish", logger: TestEnvironment.logger)?
                .passwordHash
            #expect(hash?.hasPrefix("$y$") == true)
        }
    }

    @Test func disablingAnAccountClosesItsSessions() async throws {
        try await withTestServer { server in
            let database = server.storage
            #expect(try await mailadmin(database, "user", "add", "temp", "--password-stdin", stdin: "pw\n").status == 0)
            let c = try await server.login("temp", password: "pw")
            try await c.expectOK("a1", "SELECT INBOX")
            try await c.sendLine("a2 IDLE")
            #expect(try await c.readLine() == "+ idling")
            #expect(try await mailadmin(database, "user", "disable", "temp").status == 0)
            #expect(try await c.readLine(timeout: .seconds(30)) == "* BYE Account disabled by the administrator.")
            #expect(await c.isClosed())
            let again = try await server.connect()
            _ = try await again.readLine()
            #expect(try await again.command("b1", "LOGIN temp pw").last?.hasPrefix("b1 NO") == true)
            #expect(try await mailadmin(database, "user", "enable", "temp").status == 0)
            try await again.expectOK("b2", "LOGIN temp pw")
        }
    }

    @Test func quotaIsEnforcedOverIMAP() async throws {
        try await withTestServer { server in
            let database = server.storage
            let add = try await mailadmin(
                database, "user", "add", "small", "--password-stdin", "--quota", "2K", stdin: "pw\n")
            #expect(add.status == 0)
            let c = try await server.login("small", password: "pw")
            #expect(
                try await c.command("a1", "GETQUOTAROOT INBOX") == [
                    "* QUOTAROOT INBOX \"\"", "* QUOTA \"\" (STORAGE 0 2)", "a1 OK GETQUOTAROOT completed",
                ])
            let message = "Subject: q\r\n\r\n" + String(repeating: "x", count: 1500) + "\r\n"
            try await c.sendLine("a2 APPEND INBOX {\(message.utf8.count)+}")
            try await c.sendLine(message)
            #expect(try await c.readResponse(tag: "a2").last?.hasPrefix("a2 OK [APPENDUID") == true)
            try await c.sendLine("a3 APPEND INBOX {\(message.utf8.count)+}")
            try await c.sendLine(message)
            #expect(try await c.readResponse(tag: "a3").last == "a3 NO [OVERQUOTA] Quota exceeded")
            try await c.expectOK("a4", "CREATE Other")
            try await c.expectOK("a5", "SELECT INBOX")
            #expect(try await c.command("a6", "COPY 1 Other").last == "a6 NO [OVERQUOTA] Quota exceeded")
            // MOVE within the account does not count twice.
            #expect(try await c.command("a7", "MOVE 1 Other").last == "a7 OK MOVE completed")
            #expect(
                try await c.command("a8", "STATUS Other (MESSAGES SIZE)").first
                    == "* STATUS Other (MESSAGES 1 SIZE \(message.utf8.count))")
            #expect(try await c.command("a9", "GETQUOTA \"\"").first == "* QUOTA \"\" (STORAGE 1 2)")
            let show = try await mailadmin(database, "quota", "show", "small", "--json")
            #expect(show.stdout.contains("\"usedMessages\":1"))
            #expect(try await mailadmin(database, "quota", "set", "small", "none").status == 0)
            #expect(
                try await c.command("a10", "GETQUOTAROOT INBOX") == [
                    "* QUOTAROOT INBOX", "a10 OK GETQUOTAROOT completed",
                ])
        }
    }

    @Test func badAdministratorInputIsRefusedClearly() async throws {
        try await withTestServer { server in
            let database = server.storage
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("mh-bad-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            #expect(
                try await mailadmin(database, "user", "add", "owner", "--password-stdin", stdin: "pw\n").status == 0)

            func refused(_ result: CommandResult, _ message: String) {
                #expect(result.status != 0)
                #expect(result.stderr.contains(message), "\(result.stderr)")
            }
            refused(try await mailadmin(database, "user", "show", "ghost"), "no such user: ghost")
            refused(try await mailadmin(database, "mailbox", "delete", "owner", "Nope"), "no mailbox named Nope")
            refused(try await mailadmin(database, "quota", "set", "owner", "12 parsecs"), "invalid size \"12 parsecs\"")
            refused(
                try await mailadmin(database, "user", "add", "owner", "--password-stdin", stdin: "x\n"),
                "already exists")
            refused(
                try await mailadmin(database, "user", "add", "other", "--password-hash", "{PLAIN}secret"),
                "not a crypt(3) scheme")

            let notMbox = work.appendingPathComponent("notes.txt")
            try Data("just some text\n".utf8).write(to: notMbox)
            refused(try await mailadmin(database, "import", "mbox", "owner", notMbox.path), "is not an mbox file")
            let truncated = work.appendingPathComponent("cut.mbox")
            try Data("From a@b Mon Feb  1 10:00:00 2021\nSubject: cut\n\nhalf a li".utf8).write(to: truncated)
            refused(try await mailadmin(database, "import", "mbox", "owner", truncated.path), "is truncated")

            let maildir = work.appendingPathComponent("Maildir")
            for sub in ["cur", "new", "tmp"] {
                try FileManager.default.createDirectory(
                    at: maildir.appendingPathComponent(".Broken").appendingPathComponent(sub),
                    withIntermediateDirectories: true)
                try FileManager.default.createDirectory(
                    at: maildir.appendingPathComponent(sub), withIntermediateDirectories: true)
            }
            try Data("Subject: fine\n\nok\n".utf8).write(to: maildir.appendingPathComponent("cur/1.M1.host:2,S"))
            try Data("Subject: bad\n\nx\n".utf8).write(
                to: maildir.appendingPathComponent(".Broken/cur/2.M2.host-no-flags"))
            refused(
                try await mailadmin(database, "import", "maildir", "owner", maildir.path), "malformed Maildir file name"
            )
            // Nothing half-done: neither the good message nor the folder arrived.
            let list = try await mailadmin(database, "mailbox", "list", "owner", "--json")
            #expect(list.stdout.contains("\"messages\":0"))
            #expect(!list.stdout.contains("Broken"))
        }
    }
}
