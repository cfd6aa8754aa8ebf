import Foundation
import IMAPEngine
import Testing

/// Issue #10 §4: every new account gets the default mailboxes with their special uses, subscribed; the set lives
/// in the database (`mailadmin mailbox defaults`), so every instance, LMTP and mailadmin agree on it.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct DefaultMailboxTests {
    /// A schema created by the server itself (default settings): a PAM user's first login (on SQLite without PAM, a
    /// store account made on the new file) and `mailadmin user add` both give Drafts, Sent, Trash, Junk and Archive,
    /// reported on LIST, LSUB and LIST-EXTENDED.
    @Test func freshSchemaGivesEveryNewAccountTheDefaults() async throws {
        let database = try await TestStorage.createBlank()
        defer { Task { await database.drop() } }
        let (server, port) = try await MemoryBoundsTests().start(database)
        defer { server.terminate() }

        let c = try await IMAPTestClient.loggedIn(port: port)
        let listed = try await c.expectOK("l", "LIST \"\" \"*\"")
        #expect(listed.count == 6 && listed.first == "* LIST (\\HasNoChildren) \"/\" INBOX", "\(listed)")
        for (name, use) in [
            ("Drafts", "\\Drafts"), ("Sent", "\\Sent"), ("Trash", "\\Trash"), ("Junk", "\\Junk"),
            ("Archive", "\\Archive"),
        ] {
            #expect(listed.contains { $0.hasSuffix("\"/\" \(name)") && $0.contains(use) }, "\(name): \(listed)")
        }
        // Subscribed, with their uses on LSUB (RFC 6154 §2) and on LIST-EXTENDED.
        let lsub = try await c.expectOK("s", "LSUB \"\" \"*\"")
        #expect(lsub.count == 6 && lsub.contains { $0.contains("\\Sent") && $0.hasSuffix(" Sent") }, "\(lsub)")
        let special = try await c.expectOK("x", "LIST (SPECIAL-USE) \"\" \"*\"")
        #expect(special.count == 5 && !special.contains { $0.hasSuffix(" INBOX") }, "\(special)")
        let extended = try await c.expectOK("y", "LIST \"\" \"*\" RETURN (SUBSCRIBED SPECIAL-USE)")
        #expect(extended.filter { $0.contains("\\Subscribed") }.count == 6, "\(extended)")
        // One mailbox per special use: CREATE-SPECIAL-USE of a second \Sent is refused.
        #expect(
            try await c.command("c", "CREATE Sent2 (USE (\\Sent))").last?.hasPrefix("c NO [USEATTR]") == true)
        await c.close()

        let shown = try await mailadmin(database, "mailbox", "defaults")
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("Drafts") && shown.stdout.contains("\\Archive"), "\(shown.stdout)")
        let added = try await mailadmin(database, "user", "add", "vera", "--password-stdin", stdin: "pw\n")
        #expect(added.status == 0, "\(added.stderr)")
        let boxes = try await mailadmin(database, "mailbox", "list", "vera", "--json")
        for name in ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"] {
            #expect(boxes.stdout.contains("\"name\":\"\(name)\""), "\(boxes.stdout)")
        }
        #expect(!boxes.stdout.contains("\"subscribed\":false"), "\(boxes.stdout)")
    }

    /// The set is the administrator's: names (UTF-8 included) and uses of their choosing, or none; bad entries are
    /// refused with a message and a non-zero exit, and change nothing.
    @Test func configuredDefaults() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        for bad in [
            ["--set", "Flagged=\\Flagged"], ["--set", "INBOX"], ["--set", "Mail/Sent=\\Sent"],
            ["--set", "A=\\Sent", "--set", "B=\\Sent"], ["--set", "A", "--set", "A"], ["--none", "--set", "A"],
            ["--set", "bad*name"],
        ] {
            let result = try await runTool(
                ServerProcess.executable("mailadmin"),
                ["--storage", database.setting, "mailbox", "defaults"] + bad)
            #expect(result.status != 0 && !result.stderr.isEmpty, "\(bad): \(result)")
        }
        let set = try await mailadmin(
            database, "mailbox", "defaults", "--set", "Brouillons=\\drafts", "--set", "Envoyés=\\Sent", "--set",
            "Notes")
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("Brouillons") && set.stdout.contains("\\Drafts"), "\(set.stdout)")

        let (server, port) = try await MemoryBoundsTests().start(database, auth: "db")
        defer { server.terminate() }
        #expect(try await mailadmin(database, "user", "add", "nina", "--password-stdin", stdin: "pw\n").status == 0)
        let c = try await IMAPTestClient.loggedIn(port: port, user: "nina", password: "pw")
        let listed = try await c.expectOK("l", "LIST \"\" \"*\"")
        #expect(listed.count == 4, "\(listed)")
        #expect(listed.contains("* LIST (\\HasNoChildren \\Drafts) \"/\" Brouillons"), "\(listed)")
        // Modified UTF-7 for an IMAP4rev1 client (RFC 3501 §5.1.3).
        #expect(listed.contains("* LIST (\\HasNoChildren \\Sent) \"/\" Envoy&AOk-s"), "\(listed)")
        #expect(listed.contains("* LIST (\\HasNoChildren) \"/\" Notes"), "\(listed)")
        await c.close()

        // Emptied: new accounts get INBOX only; existing ones keep theirs.
        #expect(try await mailadmin(database, "mailbox", "defaults", "--none").status == 0)
        #expect(try await mailadmin(database, "user", "add", "otto", "--password-stdin", stdin: "pw\n").status == 0)
        let otto = try await IMAPTestClient.loggedIn(port: port, user: "otto", password: "pw")
        #expect(try await otto.expectOK("l", "LIST \"\" \"*\"") == ["* LIST (\\HasNoChildren) \"/\" INBOX"])
        await otto.close()
        let again = try await IMAPTestClient.loggedIn(port: port, user: "nina", password: "pw")
        #expect(try await again.expectOK("l", "LIST \"\" \"*\"").count == 4)
        await again.close()
    }
}
