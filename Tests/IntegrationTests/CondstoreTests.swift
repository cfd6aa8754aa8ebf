import Foundation
import IMAPEngine
import PostgresNIO
import StoragePostgres
import Testing

/// Issue #10 §1: CONDSTORE and QRESYNC (RFC 7162) over TCP, following the RFC's examples, and a QRESYNC client that
/// was away while another instance changed and expunged messages.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct CondstoreTests {
    func instance(_ database: TestStorage) throws -> ServerProcess {
        try MultiInstanceTests().startInstance(database)
    }

    /// The number in `KEY (n)` or `[KEY n]` on the first of `lines` that has it.
    static func number(after key: String, in lines: [String]) -> Int64? {
        for line in lines {
            guard let range = line.range(of: key) else { continue }
            let digits = line[range.upperBound...].drop { !$0.isNumber }.prefix { $0.isNumber }
            if let value = Int64(digits) { return value }
        }
        return nil
    }

    /// Tombstones left in the database, and the highest `vanished_floor`.
    static func tombstones(_ database: TestStorage) async throws -> (Int64, Int64) {
        let row = try await database.queryStrings(
            "SELECT (SELECT count(*) FROM expunged) || ' ' || (SELECT max(vanished_floor) FROM mailboxes)"
        ).first?.split(separator: " ").compactMap { Int64($0) }
        guard let row, row.count == 2 else { return (-1, -1) }
        return (row[0], row[1])
    }

    static func message(_ n: Int) -> [UInt8] { Array("Subject: m\(n)\r\n\r\nbody \(n)\r\n".utf8) }

    @Test func conditionalStoreChangedSinceAndModSeqSearch() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let server = try instance(database)
        defer { server.terminate() }
        let port = try await server.waitUntilListening()
        let c = try await IMAPTestClient.loggedIn(port: port)
        #expect(try await c.command("c", "CAPABILITY").first?.contains(" CONDSTORE QRESYNC") == true)
        for n in 1...3 { _ = try await c.append("a\(n)", to: "INBOX", Self.message(n)) }

        // RFC 7162 §3.1.2.1: SELECT (CONDSTORE) reports HIGHESTMODSEQ.
        let selected = try await c.expectOK("s", "SELECT INBOX (CONDSTORE)")
        let start = try #require(Self.number(after: "[HIGHESTMODSEQ", in: selected))
        #expect(start > 0)
        let modseqs = try await c.expectOK("f", "FETCH 1:* (MODSEQ)").map { Self.number(after: "MODSEQ", in: [$0]) }
        #expect(modseqs.count == 3 && modseqs.allSatisfy { ($0 ?? 0) > 0 && $0! <= start }, "\(modseqs)")

        // Once CONDSTORE is on, a STORE's FETCH carries UID and MODSEQ (§3.1.4.1, §3.2.4).
        let stored = try await c.expectOK("t1", "STORE 1 +FLAGS (\\Seen)")
        #expect(stored.first?.hasPrefix("* 1 FETCH (UID 1 FLAGS (\\Seen") == true, "\(stored)")
        let first = try #require(Self.number(after: "MODSEQ", in: stored))
        #expect(first > start)

        // §3.1.3 Example 5: message 1 changed after `start`, so only message 2 is stored; even .SILENT reports it.
        let conditional = try await c.command("t2", "UID STORE 1,2 (UNCHANGEDSINCE \(start)) +FLAGS.SILENT (\\Flagged)")
        #expect(conditional.last == "t2 OK [MODIFIED 1] Conditional STORE failed", "\(conditional)")
        #expect(conditional.first?.hasPrefix("* 2 FETCH (UID 2 MODSEQ (") == true, "\(conditional)")
        let second = try #require(Self.number(after: "MODSEQ", in: conditional))
        #expect(second > first)
        // UNCHANGEDSINCE 0 fails for every message; sequence numbers in MODIFIED for STORE.
        let zero = try await c.command("t3", "STORE 3 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)")
        #expect(zero == ["t3 OK [MODIFIED 3] Conditional STORE failed"], "\(zero)")
        #expect(try await c.expectOK("t4", "FETCH 3 (FLAGS)") == ["* 3 FETCH (FLAGS (\\Recent))"])

        // §3.1.4.1: CHANGEDSINCE returns only what changed since, with MODSEQ.
        let changed = try await c.expectOK("f2", "FETCH 1:* (FLAGS) (CHANGEDSINCE \(start))")
        #expect(
            changed == [
                "* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (\(first)))",
                "* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (\(second)))",
            ], "\(changed)")
        #expect(try await c.expectOK("f3", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE \(second))").isEmpty)

        // §3.1.5: SEARCH MODSEQ, with the highest modseq of what it found.
        #expect(try await c.expectOK("q1", "SEARCH MODSEQ \(start + 1)") == ["* SEARCH 1 2 (MODSEQ \(second))"])
        #expect(try await c.expectOK("q2", "SEARCH MODSEQ \"/flags/\\\\draft\" all \(second + 1)") == ["* SEARCH"])
        let esearch = try await c.expectOK("q3", "UID SEARCH RETURN (MIN COUNT) MODSEQ \(start + 1)")
        #expect(esearch == ["* ESEARCH (TAG \"q3\") UID MIN 1 COUNT 2 MODSEQ \(second)"], "\(esearch)")

        // §3.1.2.3: STATUS HIGHESTMODSEQ.
        #expect(
            try await c.expectOK("st", "STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
                == ["* STATUS INBOX (HIGHESTMODSEQ \(second) MESSAGES 3)"])

        // A change made by another session arrives with its MODSEQ (§3.1.4.1 Example 14).
        let other = try await IMAPTestClient.loggedIn(port: port, select: "INBOX")
        try await other.expectOK("o", "STORE 3 +FLAGS (\\Answered)")
        let noop = try await c.expectOK("n", "NOOP")
        let third = try #require(Self.number(after: "MODSEQ", in: noop))
        #expect(noop == ["* 3 FETCH (UID 3 FLAGS (\\Answered \\Recent) MODSEQ (\(third)))"], "\(noop)")
        #expect(third > second)

        // QRESYNC's modifiers and parameter need ENABLE QRESYNC first (§3.2.3).
        #expect(
            try await c.command("v", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").last?.hasPrefix("v BAD")
                == true)
        #expect(try await c.command("w", "SELECT INBOX (QRESYNC (1 1))").last?.hasPrefix("w BAD") == true)
    }

    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func qresyncClientAwayWhileAnotherInstanceExpunged() async throws {
        let database = TestStorage(backend: .postgres(try await TestDatabase.create()))
        defer { Task { await database.drop() } }
        let a = try instance(database)
        let b = try instance(database)
        defer {
            a.terminate()
            b.terminate()
        }
        let (portA, portB) = (try await a.waitUntilListening(), try await b.waitUntilListening())

        // The client syncs on instance A, remembers UIDVALIDITY and HIGHESTMODSEQ, and goes away.
        let before = try await IMAPTestClient.loggedIn(port: portA)
        #expect(try await before.expectOK("e", "ENABLE QRESYNC") == ["* ENABLED QRESYNC"])
        for n in 1...5 { _ = try await before.append("a\(n)", to: "INBOX", Self.message(n)) }
        let selected = try await before.expectOK("s", "SELECT INBOX")
        let validity = try #require(Self.number(after: "[UIDVALIDITY", in: selected))
        let known = try #require(Self.number(after: "[HIGHESTMODSEQ", in: selected))
        try await before.expectOK("l", "LOGOUT")

        // Meanwhile, on instance B: a flag change and two expunges.
        let writer = try await IMAPTestClient.loggedIn(port: portB, select: "INBOX")
        try await writer.expectOK("w1", "STORE 2 +FLAGS (\\Seen)")
        try await writer.expectOK("w2", "STORE 4:5 +FLAGS.SILENT (\\Deleted)")
        try await writer.expectOK("w3", "EXPUNGE")

        // Back on A: one SELECT brings the client up to date (§3.2.5.1).
        let after = try await IMAPTestClient.loggedIn(port: portA)
        try await after.expectOK("e", "ENABLE QRESYNC")
        let resync = try await after.expectOK("s", "SELECT INBOX (QRESYNC (\(validity) \(known) 1:5))")
        #expect(resync.contains("* 3 EXISTS"), "\(resync)")
        #expect(resync.contains("* VANISHED (EARLIER) 4:5"), "\(resync)")
        let fetches = resync.filter { $0.contains(" FETCH ") }
        #expect(fetches.count == 1 && fetches[0].hasPrefix("* 2 FETCH (UID 2 FLAGS (\\Seen"), "\(resync)")
        #expect(fetches.first?.contains("MODSEQ (") == true)
        let highest = try #require(Self.number(after: "[HIGHESTMODSEQ", in: resync))
        #expect(highest > known)
        // With known UIDs, flag changes and expunges only for those (§3.2.5.1): the change to UID 2 is not the
        // business of a client that knows UIDs 3:5 only.
        let partial = try await IMAPTestClient.loggedIn(port: portA)
        try await partial.expectOK("e", "ENABLE QRESYNC")
        let narrow = try await partial.expectOK("s", "SELECT INBOX (QRESYNC (\(validity) \(known) 3:5))")
        #expect(narrow.contains("* VANISHED (EARLIER) 4:5"), "\(narrow)")
        #expect(!narrow.contains { $0.contains(" FETCH ") }, "\(narrow)")
        await partial.close()
        // Asking only for UIDs that are all gone still answers which vanished.
        #expect(
            try await after.expectOK("g", "UID FETCH 4:5 (FLAGS) (CHANGEDSINCE \(known) VANISHED)")
                == ["* VANISHED (EARLIER) 4:5"])

        // Expunges made on B while A's session is selected arrive as VANISHED, not EXPUNGE (§3.2.10).
        try await writer.expectOK("w4", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        try await writer.expectOK("w5", "EXPUNGE")
        var lines: [String] = []
        while !lines.contains("* VANISHED 1") {
            lines += try await after.expectOK("n\(lines.count)", "NOOP")
            #expect(!lines.contains { $0.hasSuffix(" EXPUNGE") }, "\(lines)")
        }
        // VANISHED (EARLIER) for what the client's view no longer holds, within the set asked for (§3.2.6).
        let since = try await after.expectOK("f", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE \(known) VANISHED)")
        #expect(since.first == "* VANISHED (EARLIER) 1,4:5", "\(since)")
        #expect(since.count == 2 && since[1].hasPrefix("* 1 FETCH (UID 2 FLAGS (\\Seen"), "\(since)")
        // An EXPUNGE of its own: VANISHED, and the new HIGHESTMODSEQ in the tagged OK.
        try await after.expectOK("d", "UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        let expunged = try await after.command("x", "EXPUNGE")
        #expect(expunged.first == "* VANISHED 3", "\(expunged)")
        #expect(expunged.last?.hasPrefix("x OK [HIGHESTMODSEQ ") == true, "\(expunged)")

        // A stale UIDVALIDITY: a plain SELECT, nothing is claimed about the old UIDs.
        let stale = try await after.expectOK("s2", "SELECT INBOX (QRESYNC (\(validity + 1) \(known)))")
        #expect(stale.first == "* OK [CLOSED] Previous mailbox is now closed", "\(stale)")
        #expect(!stale.contains { $0.hasPrefix("* VANISHED") || $0.contains(" FETCH ") }, "\(stale)")
    }

    /// Past `qresync-retention` the garbage collector removes tombstones and raises the mailbox's floor: a client
    /// that resyncs from before it is told every UID that is not there as VANISHED (EARLIER), and misses nothing.
    @Test func qresyncAfterTheTombstonesAreGone() async throws {
        let server = try await TestServer.start()
        defer { Task { await server.stop() } }
        let c = try await server.login()
        try await c.expectOK("e", "ENABLE QRESYNC")
        for n in 1...6 { _ = try await c.append("a\(n)", to: "INBOX", Self.message(n)) }
        let selected = try await c.expectOK("s", "SELECT INBOX")
        let validity = try #require(Self.number(after: "[UIDVALIDITY", in: selected))
        let known = try #require(Self.number(after: "[HIGHESTMODSEQ", in: selected))
        try await c.expectOK("d", "UID STORE 2,5 +FLAGS.SILENT (\\Deleted)")
        #expect(try await c.expectOK("x", "EXPUNGE") == ["* VANISHED 2,5"])
        try await c.expectOK("l", "LOGOUT")

        // A year and more later (the tombstones are aged in the database), the collector runs.
        try await server.executeSQL(
            server.storage.isSQLite
                ? "UPDATE expunged SET expunged_at = expunged_at - 400 * 86400"
                : "UPDATE expunged SET expunged_at = now() - interval '400 days'")
        _ = try await server.store.collectGarbage(
            retention: .seconds(86_400), tombstoneRetention: .seconds(365 * 86_400), logger: TestEnvironment.logger)
        let (left, floor) = try await Self.tombstones(server.storage)
        #expect(left == 0 && floor > known, "tombstones left \(left), floor \(floor)")

        let again = try await server.login()
        try await again.expectOK("e", "ENABLE QRESYNC")
        let resync = try await again.expectOK("s", "SELECT INBOX (QRESYNC (\(validity) \(known) 1:6))")
        #expect(resync.contains("* VANISHED (EARLIER) 2,5"), "\(resync)")
        #expect(resync.contains("* 4 EXISTS"), "\(resync)")
        // Without known UIDs: everything below UIDNEXT that is not there.
        let fetched = try await again.expectOK("f", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE \(known) VANISHED)")
        #expect(fetched == ["* VANISHED (EARLIER) 2,5"], "\(fetched)")
        // A client whose modseq is past the floor still gets the exact answer.
        let current = try #require(Self.number(after: "[HIGHESTMODSEQ", in: resync))
        #expect(try await again.expectOK("g", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE \(current) VANISHED)").isEmpty)
    }
}
