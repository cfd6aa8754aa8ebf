import Foundation
import IMAPEngine
import StoragePostgres
import Testing

/// Issue #10 §5-6: NOTIFY (RFC 5465) over TCP, with the changes made on another instance: STATUS for other mailboxes
/// and the selected mailbox's responses, both sent without a command in progress.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct NotifyTests {
    static func message(_ subject: String) -> [UInt8] { Array("Subject: \(subject)\r\n\r\nbody\r\n".utf8) }

    /// Reads lines (no command sent) until one satisfies `done`.
    static func read(_ c: IMAPTestClient, until done: (String) -> Bool) async throws -> [String] {
        var lines: [String] = []
        while true {
            let line = try await c.readLine()
            lines.append(line)
            if done(line) { return lines }
        }
    }

    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func notificationsFromAnotherInstance() async throws {
        try await withTwoInstances { portA, portB in
            let c = try await IMAPTestClient.loggedIn(port: portA)
            #expect(try await c.expectOK("c", "CAPABILITY").first?.contains(" NOTIFY") == true)
            try await c.expectOK("m1", "CREATE Work")
            try await c.expectOK("m2", "CREATE Lists/Swift")
            _ = try await c.append("a", to: "Work", Self.message("w1"))
            try await c.expectOK("s", "SELECT INBOX")

            // RFC 5465 §3: with STATUS, a STATUS for every watched mailbox other than the selected one.
            let set = try await c.expectOK(
                "n1",
                "NOTIFY SET STATUS (SELECTED (MessageNew MessageExpunge)) (MAILBOXES Work (MessageNew MessageExpunge FlagChange)) (SUBTREE Lists (MessageNew MessageExpunge))"
            )
            #expect(
                set.contains {
                    $0.hasPrefix("* STATUS Work (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ") && $0.contains("HIGHESTMODSEQ")
                }, "\(set)")
            #expect(set.contains { $0.hasPrefix("* STATUS Lists/Swift (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ") }, "\(set)")
            #expect(!set.contains { $0.contains("STATUS INBOX") && !$0.contains("Lists") }, "\(set)")

            // On B: mail into Work and into Lists/Swift; A hears of it without sending a command.
            let other = try await IMAPTestClient.loggedIn(port: portB)
            _ = try await other.append("b1", to: "Work", Self.message("w2"))
            var heard = try await Self.read(c) { $0.hasPrefix("* STATUS Work") }
            #expect(heard.last == "* STATUS Work (MESSAGES 2 UIDNEXT 3)", "\(heard)")
            _ = try await other.append("b2", to: "Lists/Swift", Self.message("s1"))
            heard = try await Self.read(c) { $0.hasPrefix("* STATUS Lists/Swift") }
            #expect(heard.last == "* STATUS Lists/Swift (MESSAGES 1 UIDNEXT 2)", "\(heard)")
            // A flag change in Work (FlagChange is watched there).
            try await other.expectOK("b3", "SELECT Work")
            try await other.expectOK("b4", "STORE 1 +FLAGS.SILENT (\\Seen)")
            heard = try await Self.read(c) { $0.hasPrefix("* STATUS Work") }
            #expect(
                heard.last?.hasPrefix("* STATUS Work (UIDVALIDITY ") == true
                    && heard.last?.hasSuffix(" UNSEEN 1)") == true,
                "\(heard)")
            // SELECTED: new mail in INBOX is announced at once, no command in progress.
            _ = try await other.append("b5", to: "INBOX", Self.message("i1"))
            heard = try await Self.read(c) { $0.hasSuffix(" EXISTS") }
            #expect(heard.last == "* 1 EXISTS", "\(heard)")
            // SELECTED-DELAYED: the expunge waits for a command.
            try await c.expectOK("n2", "NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge))")
            try await other.expectOK("b6", "SELECT INBOX")
            try await other.expectOK("b7", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            try await other.expectOK("b8", "EXPUNGE")
            var lines: [String] = []
            let deadline = ContinuousClock.now + .seconds(60)
            while !lines.contains("* 1 EXPUNGE") {
                guard ContinuousClock.now < deadline else { throw TestFailure("no EXPUNGE: \(lines)") }
                lines += try await c.expectOK("p\(lines.count)", "NOOP")
            }
            #expect(!lines.contains { $0.hasPrefix("* STATUS") }, "\(lines)")
            await other.close()

            // Events MailHost does not notify: NO [BADEVENT] with the ones it does; the previous setting stays.
            #expect(
                try await c.command("n3", "NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))").last
                    == "n3 NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"
                    + " MailboxMetadataChange ServerMetadataChange)] AnnotationChange isn't offered"
                    + " (no ANNOTATE)")
            for (n, bad) in [
                "NOTIFY", "NOTIFY SET", "NOTIFY SET (FOO (MessageNew))", "NOTIFY SET (SELECTED (Frob))",
                "NOTIFY SET (MAILBOXES (MessageNew))", "NOTIFY BOGUS",
                // §6.1: SELECTED takes message events only, and only one of SELECTED and SELECTED-DELAYED.
                "NOTIFY SET (SELECTED (MailboxName))", "NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))",
                "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (SELECTED-DELAYED (MessageNew MessageExpunge))",
            ].enumerated() {
                #expect(try await c.command("x\(n)", bad).last?.hasPrefix("x\(n) BAD") == true, "\(bad)")
            }
            try await c.expectOK("n5", "NOTIFY NONE")
            await c.close()
        }
    }

    /// RFC 5465 §5.4-§5.7: mailboxes created, renamed and deleted, subscriptions, and METADATA entries changed on
    /// instance B are announced to a NOTIFY session on instance A as LIST (with OLDNAME, \NonExistent, \Subscribed) and
    /// METADATA responses; A's own changes are not announced back to it (§5).
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func mailboxNamesSubscriptionsAndMetadataFromAnotherInstance() async throws {
        try await withTwoInstances { portA, portB in
            let c = try await IMAPTestClient.loggedIn(port: portA)
            try await c.expectOK("m1", "CREATE Old/Child")
            // STATUS covers message events only: a set without them reports no STATUS.
            let set = try await c.expectOK(
                "n1",
                "NOTIFY SET STATUS (PERSONAL (MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange))"
            )
            #expect(!set.contains { $0.hasPrefix("* STATUS") }, "\(set)")
            let other = try await IMAPTestClient.loggedIn(port: portB)
            try await Self.mailboxNameEvents(c, other)
            try await Self.metadataEvents(c, other)
            await other.close()
            await c.close()
        }
    }

    static func mailboxNameEvents(_ c: IMAPTestClient, _ other: IMAPTestClient) async throws {
        // Created with its missing superior: both are new; the parent is announced once.
        try await other.expectOK("b1", "CREATE Projects/2026")
        var heard = try await Self.read(c) { $0.hasSuffix(" Projects/2026") }
        #expect(
            heard == ["* LIST (\\HasChildren) \"/\" Projects", "* LIST (\\HasNoChildren) \"/\" Projects/2026"],
            "\(heard)")
        // Renamed with its inferior: one LIST with OLDNAME, none for the child.
        try await other.expectOK("b2", "RENAME Old Renamed")
        heard = try await Self.read(c) { $0.hasPrefix("* LIST") }
        #expect(heard == ["* LIST (\\HasChildren) \"/\" Renamed (\"OLDNAME\" (Old))"], "\(heard)")
        // Deleted: \NonExistent, and the parent that lost its child.
        try await other.expectOK("b3", "DELETE Projects/2026")
        heard = try await Self.read(c) { $0.hasSuffix(" Projects") }
        #expect(
            heard == ["* LIST (\\NonExistent) \"/\" Projects/2026", "* LIST (\\HasNoChildren) \"/\" Projects"],
            "\(heard)")
        // Subscriptions: \Subscribed if and only if subscribed after the change.
        try await other.expectOK("b4", "SUBSCRIBE Renamed")
        heard = try await Self.read(c) { $0.hasPrefix("* LIST") }
        #expect(heard == ["* LIST (\\HasChildren \\Subscribed) \"/\" Renamed"], "\(heard)")
        try await other.expectOK("b5", "UNSUBSCRIBE Renamed")
        heard = try await Self.read(c) { $0.hasPrefix("* LIST") }
        #expect(heard == ["* LIST (\\HasChildren) \"/\" Renamed"], "\(heard)")

        // A's own changes are not announced to A: the next LIST it hears is B's.
        let own = try await c.expectOK("c1", "CREATE Mine")
        #expect(!own.contains { $0.hasPrefix("* LIST") }, "\(own)")
        try await c.expectOK("c2", "SUBSCRIBE Mine")
        try await c.expectOK("c3", "RENAME Mine Yours")
        try await other.expectOK("b6", "CREATE Fence")
        heard = try await Self.read(c) { $0.hasPrefix("* LIST") }
        #expect(heard == ["* LIST (\\HasNoChildren) \"/\" Fence"], "\(heard)")

        // A parent that does not exist (deleted while it had a child) is announced \NonExistent when its last
        // child goes.
        try await other.expectOK("b12", "CREATE Gone/Child")
        heard = try await Self.read(c) { $0.hasSuffix(" Gone/Child") }
        try await other.expectOK("b13", "DELETE Gone")
        heard = try await Self.read(c) { $0.hasPrefix("* LIST") }
        #expect(heard == ["* LIST (\\NonExistent \\HasChildren) \"/\" Gone"], "\(heard)")
        try await other.expectOK("b14", "DELETE Gone/Child")
        heard = try await Self.read(c) { $0.hasSuffix(" Gone") }
        #expect(
            heard == ["* LIST (\\NonExistent) \"/\" Gone/Child", "* LIST (\\NonExistent) \"/\" Gone"], "\(heard)")

        // A filter limits the names announced: only the SUBTREE's.
        try await c.expectOK("n2", "NOTIFY SET (SUBTREE Lists (MailboxName))")
        try await other.expectOK("b10", "CREATE Outside")
        try await other.expectOK("b11", "CREATE Lists/In")
        heard = try await Self.read(c) { $0.hasSuffix(" Lists/In") }
        #expect(
            heard == ["* LIST (\\HasChildren) \"/\" Lists", "* LIST (\\HasNoChildren) \"/\" Lists/In"], "\(heard)")
    }

    static func metadataEvents(_ c: IMAPTestClient, _ other: IMAPTestClient) async throws {
        try await c.expectOK("n3", "NOTIFY SET (PERSONAL (MailboxMetadataChange ServerMetadataChange))")
        // METADATA: the changed entry names (removals too), for a mailbox and for the server.
        try await other.expectOK("b7", "SETMETADATA INBOX (/private/comment \"hello\")")
        var heard = try await Self.read(c) { $0.hasPrefix("* METADATA") }
        #expect(heard == ["* METADATA INBOX /private/comment"], "\(heard)")
        try await other.expectOK("b8", "SETMETADATA \"\" (/shared/admin \"x\" /private/vendor/a NIL)")
        heard = try await Self.read(c) { $0.hasPrefix("* METADATA") }
        #expect(heard == ["* METADATA \"\" /private/vendor/a /shared/admin"], "\(heard)")
        try await c.expectOK("c4", "SETMETADATA Renamed (/private/mine \"1\")")
        try await other.expectOK("b9", "SETMETADATA Renamed (/private/theirs \"2\")")
        heard = try await Self.read(c) { $0.hasPrefix("* METADATA") }
        #expect(heard == ["* METADATA Renamed /private/theirs"], "\(heard)")
    }

    /// RFC 5465 §5.2: `MessageNew (fetch-att …)` for the selected mailbox: each message another client adds is
    /// announced with EXISTS and then a FETCH of the attributes, with no command in progress; the session's own
    /// APPEND and COPY get no such FETCH.
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func newMessagesAreFetchedWithTheAttributesAsked() async throws {
        try await withTwoInstances { portA, portB in
            let c = try await IMAPTestClient.loggedIn(port: portA)
            _ = try await c.append("a0", to: "INBOX", Self.message("first"))
            try await c.expectOK("s", "SELECT INBOX")
            try await c.expectOK("n1", "NOTIFY SET (SELECTED (MessageNew (FLAGS ENVELOPE) MessageExpunge))")
            let other = try await IMAPTestClient.loggedIn(port: portB)
            _ = try await other.append("b1", to: "INBOX", Self.message("theirs"))
            var heard = try await Self.read(c) { $0.contains(" FETCH ") }
            #expect(heard.first == "* 2 EXISTS", "\(heard)")
            #expect(
                heard.last?.hasPrefix("* 2 FETCH (UID 2 FLAGS (\\Recent) ENVELOPE (NIL \"theirs\" ") == true, "\(heard)"
            )

            // Its own messages: EXISTS, no FETCH; the next FETCH heard is for another client's message.
            let own = try await c.append("a1", to: "INBOX", Self.message("mine"))
            let copied = try await c.expectOK("a2", "UID COPY 1 INBOX")
            #expect(!(own + copied).contains { $0.contains(" FETCH ") }, "\(own + copied)")
            _ = try await other.append("b2", to: "INBOX", Self.message("fence"))
            heard = try await Self.read(c) { $0.contains(" FETCH ") }
            #expect(
                heard.last?.hasPrefix("* 5 FETCH (UID 5 FLAGS (\\Recent) ENVELOPE (NIL \"fence\" ") == true, "\(heard)")
            #expect(!heard.contains { $0.contains("mine") || $0.contains("first") }, "\(heard)")
            await other.close()
            await c.close()
        }
    }
}
