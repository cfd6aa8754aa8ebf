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

    @Test func notificationsFromAnotherInstance() async throws {
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
                try await c.command("n3", "NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName))").last
                    == "n3 NO [BADEVENT (MessageNew MessageExpunge FlagChange)] Only message events are notified")
            #expect(
                try await c.command("n4", "NOTIFY SET (SELECTED (MessageNew (UID ENVELOPE) MessageExpunge))").last?
                    .hasPrefix("n4 NO [BADEVENT") == true)
            for (n, bad) in [
                "NOTIFY", "NOTIFY SET", "NOTIFY SET (FOO (MessageNew))", "NOTIFY SET (SELECTED (Frob))",
                "NOTIFY SET (MAILBOXES (MessageNew))", "NOTIFY BOGUS",
            ].enumerated() {
                #expect(try await c.command("x\(n)", bad).last?.hasPrefix("x\(n) BAD") == true, "\(bad)")
            }
            try await c.expectOK("n5", "NOTIFY NONE")
            await c.close()
        }
    }
}
