import Foundation
import IMAPEngine
import StoragePostgres
import Testing

/// Issue #12 §4, outgrowing one box: `mailadmin migrate` from a SQLite file served by `mailhost` to PostgreSQL, then a
/// QRESYNC client that synced before resyncs against the PostgreSQL server with nothing to fetch, and every id it
/// cached (UIDVALIDITY, UIDs, modseqs, MAILBOXID, EMAILID) is the same.
@Suite(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
struct MigrateTests {
    static func serve(_ setting: String) throws -> ServerProcess {
        try ServerProcess(["serve", "--storage", setting, "--auth", "db", "--imap", "127.0.0.1:0"])
    }

    @Test func sqliteToPostgresKeepsEveryIdAndAQResyncClientHasNothingToFetch() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-migrate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let sqlite = "sqlite:" + directory.appendingPathComponent("mail.db").path
        let admin = ServerProcess.executable("mailadmin")
        let added = try await runTool(
            admin, ["--storage", sqlite, "user", "add", "mover", "--password-stdin"], stdin: "move me\n")
        #expect(added.status == 0, "\(added.stderr)")

        // Mail on the SQLite server: messages in two mailboxes, flags and keywords, an expunge (a tombstone),
        // METADATA and a subscription.
        let small = try Self.serve(sqlite)
        let smallPort = try await small.waitUntilListening()
        var c = try await IMAPTestClient.loggedIn(port: smallPort, user: "mover", password: "move me")
        try await c.expectOK("e", "ENABLE QRESYNC")
        try await c.expectOK("cr", "CREATE Lists")
        for i in 1...40 {
            _ = try await c.append(
                "a\(i)", to: i % 4 == 0 ? "Lists" : "INBOX",
                Array(testMessage(subject: "message \(i)", body: "Body number \(i).\r\n").utf8))
        }
        try await c.expectOK("s", "SELECT INBOX")
        try await c.expectOK("f1", "STORE 1:5 +FLAGS (\\Seen $Important)")
        try await c.expectOK("f2", "STORE 3 +FLAGS (\\Deleted)")
        try await c.expectOK("x", "EXPUNGE")
        try await c.expectOK("m", "SETMETADATA INBOX (/private/comment \"kept\")")
        try await c.expectOK("u", "UNSUBSCRIBE Lists")
        // What the client caches.
        let selected = try await c.expectOK("s2", "SELECT INBOX")
        let before = try await c.expectOK("f3", "UID FETCH 1:* (FLAGS MODSEQ EMAILID)")
        let status = try await c.expectOK("st", "STATUS Lists (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ MAILBOXID)")
        let validity = try #require(Self.number(after: "UIDVALIDITY ", in: selected))
        let modSeq = try #require(Self.number(after: "HIGHESTMODSEQ ", in: selected))
        await c.close()

        // Refused while the file is served.
        let postgres = try await TestDatabase.createBlank()
        defer { Task { await TestDatabase.drop(postgres) } }
        let busy = try await runTool(admin, ["migrate", "--from", sqlite, "--to", postgres.description])
        #expect(busy.status != 0)
        #expect(busy.stderr.contains("already served by another mailhost"), "\(busy.stderr)")
        small.terminate()
        _ = try await small.waitForExit()

        let migrated = try await runTool(admin, ["migrate", "--from", sqlite, "--to", postgres.description])
        #expect(migrated.status == 0, "\(migrated.stderr)")
        #expect(migrated.stdout.contains("[1/1] mover: 39 messages, 7 mailboxes"), "\(migrated.stdout)")
        #expect(migrated.stdout.contains("copied and verified"), "\(migrated.stdout)")
        // Run again: nothing to copy, everything verified.
        let again = try await runTool(admin, ["migrate", "--from", sqlite, "--to", postgres.description])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("[1/1] mover: already copied, verified"), "\(again.stdout)")

        // The client comes back to the PostgreSQL server and resyncs: nothing changed, nothing to fetch.
        let large = try Self.serve(postgres.description)
        defer { large.terminate() }
        let largePort = try await large.waitUntilListening()
        c = try await IMAPTestClient.loggedIn(port: largePort, user: "mover", password: "move me")
        try await c.expectOK("e", "ENABLE QRESYNC")
        let resync = try await c.expectOK("q", "SELECT INBOX (QRESYNC (\(validity) \(modSeq) 1:40))")
        #expect(!resync.contains { $0.contains("VANISHED") || $0.contains("FETCH") }, "\(resync)")
        #expect(resync.contains { $0.contains("[HIGHESTMODSEQ \(modSeq)]") }, "\(resync)")
        #expect(resync.contains { $0.contains("[UIDVALIDITY \(validity)]") }, "\(resync)")
        #expect(try await c.expectOK("f3", "UID FETCH 1:* (FLAGS MODSEQ EMAILID)") == before)
        #expect(
            try await c.expectOK("st", "STATUS Lists (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ MAILBOXID)")
                == status)
        let comment = try await c.expectOK("g", "GETMETADATA INBOX /private/comment")
        #expect(comment.first?.contains("\"kept\"") == true, "\(comment)")
        let subscribed = try await c.expectOK("l", "LSUB \"\" *")
        #expect(!subscribed.contains { $0.hasSuffix(" Lists") }, "\(subscribed)")
        // And it keeps working there: new mail takes the next UID.
        let appended = try await c.append("n", to: "INBOX", Array(testMessage(subject: "after").utf8))
        #expect(appended.last?.contains("[APPENDUID \(validity) 31]") == true, "\(appended)")
        await c.close()
    }

    static func number(after prefix: String, in lines: [String]) -> Int64? {
        for line in lines {
            guard let range = line.range(of: prefix) else { continue }
            return Int64(line[range.upperBound...].prefix { $0.isNumber })
        }
        return nil
    }
}
