import Foundation
import IMAPEngine
import StoragePostgres
import Testing

/// Issue #10 §5: CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4) over TCP: PARTIAL, and UPDATE contexts kept up to
/// date with changes made on another instance.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SearchContextTests {
    static func message(_ subject: String) -> [UInt8] { Array("Subject: \(subject)\r\n\r\nbody\r\n".utf8) }

    /// NOOPs until a line satisfies `done` (changes from another instance arrive through the change feed); the
    /// lines seen. Gives up after 60 s.
    static func noop(_ c: IMAPTestClient, _ prefix: String, until done: ([String]) -> Bool) async throws -> [String] {
        var lines: [String] = []
        let deadline = ContinuousClock.now + .seconds(60)
        var n = 0
        while !done(lines) {
            guard ContinuousClock.now < deadline else { throw TestFailure("not seen in 60 s: \(lines)") }
            n += 1
            lines += try await c.expectOK("\(prefix)\(n)", "NOOP")
        }
        return lines
    }

    @Test func partialResults() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            for (n, subject) in ["d", "b", "e", "a", "c"].enumerated() {
                _ = try await c.append("a\(n)", to: "INBOX", Self.message(subject))
            }
            try await c.expectOK("s", "SELECT INBOX")
            let capability = try await c.expectOK("c", "CAPABILITY").first ?? ""
            #expect(capability.contains(" CONTEXT=SEARCH") && capability.contains(" CONTEXT=SORT"))
            // RFC 5267 §4.4: positions in mailbox order for SEARCH, in sort order for SORT; m:n and n:m alike.
            #expect(
                try await c.expectOK("p1", "SEARCH RETURN (PARTIAL 2:4) ALL")
                    == ["* ESEARCH (TAG \"p1\") PARTIAL (2:4 2:4)"])
            #expect(
                try await c.expectOK("p2", "UID SEARCH RETURN (PARTIAL 4:2 COUNT) NOT SUBJECT b")
                    == ["* ESEARCH (TAG \"p2\") UID PARTIAL (2:4 3:5) COUNT 4"])
            #expect(
                try await c.expectOK("p3", "SEARCH RETURN (PARTIAL 6:9) ALL")
                    == ["* ESEARCH (TAG \"p3\") PARTIAL (6:9 NIL)"])
            #expect(
                try await c.expectOK("p4", "SORT RETURN (PARTIAL 1:3) (SUBJECT) UTF-8 ALL")
                    == ["* ESEARCH (TAG \"p4\") PARTIAL (1:3 4,2,5)"])
            // CONTEXT is a hint only.
            #expect(
                try await c.expectOK("p5", "SEARCH RETURN (CONTEXT COUNT) ALL") == ["* ESEARCH (TAG \"p5\") COUNT 5"])
            for (n, bad) in [
                "SEARCH RETURN (PARTIAL 1) ALL", "SEARCH RETURN (PARTIAL 1:*) ALL", "SEARCH RETURN (PARTIAL 0:3) ALL",
                "SEARCH RETURN (PARTIAL 1:2 ALL) ALL", "SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
            ].enumerated() {
                #expect(try await c.command("b\(n)", bad).last?.hasPrefix("b\(n) BAD") == true, "\(bad)")
            }
            await c.close()
        }
    }

    /// Updates for changes made on another instance: flags (ADDTO/REMOVEFROM with the FETCH), new mail (ADDTO after
    /// EXISTS), expunges (REMOVEFROM before the EXPUNGE, numbered as before it), in IDLE too; SORT positions; tag
    /// reuse; CANCELUPDATE; the limit on contexts.
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func updatesAcrossInstances() async throws {
        try await withTwoInstances { portA, portB in
            let c = try await IMAPTestClient.loggedIn(port: portA)
            for (n, subject) in ["d", "b", "e", "a", "c"].enumerated() {
                _ = try await c.append("a\(n)", to: "INBOX", Self.message(subject))
            }
            try await c.expectOK("s", "SELECT INBOX")
            #expect(try await c.expectOK("u1", "SEARCH RETURN (UPDATE) UNSEEN") == ["* ESEARCH (TAG \"u1\")"])
            #expect(
                try await c.expectOK("u2", "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 SEEN")
                    == ["* ESEARCH (TAG \"u2\") UID"])
            #expect(try await c.command("u3", "SEARCH RETURN (UPDATE) ALL").last?.hasPrefix("u3 OK") == true)
            // RFC 5267 §4.3: a live context's tag is not reused.
            #expect(try await c.command("u1", "SORT RETURN (UPDATE) (DATE) UTF-8 ALL").last == "u1 BAD Tag reuse")

            // On B: \Seen on messages 2 ("b") and 4 ("a").
            let other = try await IMAPTestClient.loggedIn(port: portB, select: "INBOX")
            try await other.expectOK("w1", "STORE 2,4 +FLAGS.SILENT (\\Seen)")
            var lines = try await Self.noop(c, "n") { $0.contains { $0.contains("(TAG \"u2\")") } }
            #expect(lines.contains("* ESEARCH (TAG \"u1\") REMOVEFROM (0 2,4)"), "\(lines)")
            // In sort order: "a" (UID 4) then "b" (UID 2), each at its position.
            #expect(lines.contains("* ESEARCH (TAG \"u2\") UID ADDTO (1 4 2 2)"), "\(lines)")
            #expect(!lines.contains { $0.contains("(TAG \"u3\")") }, "\(lines)")

            // New mail on B: ADDTO after EXISTS, in IDLE.
            try await c.sendLine("i IDLE")
            #expect(try await c.readLine().hasPrefix("+ "))
            _ = try await other.append("x", to: "INBOX", Self.message("aa"))
            var idle: [String] = []
            while !idle.contains(where: { $0.contains("(TAG \"u3\")") }) { idle.append(try await c.readLine()) }
            let exists = try #require(idle.firstIndex(of: "* 6 EXISTS"), "\(idle)")
            let added = try #require(idle.firstIndex(of: "* ESEARCH (TAG \"u1\") ADDTO (0 6)"), "\(idle)")
            #expect(exists < added)
            try await c.sendLine("DONE")
            _ = try await c.readResponse(tag: "i")

            // An expunge on B: REMOVEFROM first, numbered as before the EXPUNGE.
            try await other.expectOK("w2", "STORE 4 +FLAGS.SILENT (\\Deleted)")
            try await other.expectOK("w3", "EXPUNGE")
            lines = try await Self.noop(c, "m") { $0.contains("* 4 EXPUNGE") }
            let removal = try #require(lines.firstIndex(of: "* ESEARCH (TAG \"u2\") UID REMOVEFROM (1 4)"), "\(lines)")
            #expect(removal < (lines.firstIndex(of: "* 4 EXPUNGE") ?? 0), "\(lines)")
            #expect(lines.contains("* ESEARCH (TAG \"u3\") REMOVEFROM (0 4)"), "\(lines)")

            // CANCELUPDATE: no more updates for it; the others go on.
            try await c.expectOK("x", "CANCELUPDATE \"u3\" \"u2\"")
            try await other.expectOK("w4", "STORE 1 +FLAGS.SILENT (\\Seen)")
            lines = try await Self.noop(c, "o") { $0.contains { $0.contains("(TAG \"u1\")") } }
            #expect(lines.contains("* ESEARCH (TAG \"u1\") REMOVEFROM (0 1)"), "\(lines)")
            #expect(!lines.contains { $0.contains("\"u2\"") || $0.contains("\"u3\"") }, "\(lines)")

            // At most five updating contexts: the sixth is honoured without updates.
            for n in 1...4 { try await c.expectOK("k\(n)", "SEARCH RETURN (UPDATE) ALL") }
            let refused = try await c.command("k5", "SEARCH RETURN (UPDATE COUNT) ALL")
            #expect(refused.contains("* NO [NOUPDATE \"k5\"] Too many updating searches"), "\(refused)")
            #expect(refused.contains("* ESEARCH (TAG \"k5\") COUNT 5"), "\(refused)")
            // Leaving the mailbox ends them all.
            try await c.expectOK("un", "UNSELECT")
            try await c.expectOK("s2", "SELECT INBOX")
            try await other.expectOK("w5", "STORE 3 +FLAGS.SILENT (\\Seen)")
            lines = try await Self.noop(c, "q") { $0.contains { $0.hasPrefix("* 3 FETCH") } }
            #expect(!lines.contains { $0.contains("\"u1\"") || $0.contains("\"k") }, "\(lines)")
            await other.close()
            await c.close()
        }
    }
}
