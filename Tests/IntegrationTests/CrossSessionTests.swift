import IMAPEngine
import Testing

/// Two sessions on one mailbox (RFC 9051 §5.5, §7.5.1): each sees the other's APPENDs, flag changes and expunges
/// exactly when the rules allow, through the change feed.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct CrossSessionTests {
    @Test func expungeIsWithheldDuringSequenceFetchAndToldAtNoop() async throws {
        try await withTestServer { server in
            try await server.seed(messages: (1...3).map { testMessage(subject: "m\($0)") })
            let one = try await server.login()
            let two = try await server.login()
            try await one.expectOK("a1", "SELECT INBOX")
            try await two.expectOK("b1", "SELECT INBOX")
            #expect(try await two.command("b2", "STORE 2 +FLAGS.SILENT (\\Deleted)") == ["b2 OK STORE completed"])
            #expect(try await two.command("b3", "EXPUNGE") == ["* 2 EXPUNGE", "b3 OK EXPUNGE completed"])
            try await Task.sleep(for: .milliseconds(200))  // the change feed has told session one
            // A FETCH by sequence number must not announce the expunge; message 2 stays fetchable.
            let fetch = try await one.command("a2", "FETCH 1:3 (UID)")
            let expunges = fetch.filter { $0.contains("EXPUNGE") }
            #expect(expunges.isEmpty)
            #expect(fetch.contains("* 2 FETCH (UID 2)"))
            #expect(fetch.last == "a2 OK FETCH completed")
            let noop = try await one.command("a3", "NOOP")
            #expect(noop.contains("* 2 EXPUNGE"))
            #expect(
                try await one.command("a4", "FETCH 1:* (UID)") == [
                    "* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "a4 OK FETCH completed",
                ])
        }
    }

    @Test func uidFetchMayAnnounceExpunges() async throws {
        try await withTestServer { server in
            try await server.seed(messages: (1...3).map { testMessage(subject: "m\($0)") })
            let one = try await server.login()
            let two = try await server.login()
            try await one.expectOK("a1", "SELECT INBOX")
            try await two.expectOK("b1", "SELECT INBOX")
            try await two.expectOK("b2", "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
            try await two.expectOK("b3", "UID EXPUNGE 1")
            try await Task.sleep(for: .milliseconds(200))
            let fetch = try await one.command("a2", "UID FETCH 1:* (FLAGS)")
            #expect(fetch.contains("* 1 EXPUNGE"))
            #expect(fetch.last == "a2 OK FETCH completed")
        }
    }

    @Test func appendsAndFlagChangesAreAnnounced() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "first")])
            let one = try await server.login()
            let two = try await server.login()
            try await one.expectOK("a1", "SELECT INBOX")
            try await two.expectOK("b1", "SELECT INBOX")
            try await two.expectOK("b2", "STORE 1 +FLAGS (\\Flagged)")
            try await two.sendLine("b3 APPEND INBOX (\\Seen) {23+}")
            try await two.sendLine("Subject: second\r\n\r\nhi\r\n")
            #expect(try await two.readResponse(tag: "b3").last?.hasPrefix("b3 OK [APPENDUID ") == true)
            let noop = try await one.command("a2", "NOOP")
            // Session one selected first, so it owns message 1 as \Recent (RFC 3501 §2.3.2).
            #expect(noop.contains("* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"))
            #expect(noop.contains("* 2 EXISTS"))
            #expect(noop.last == "a2 OK NOOP completed")
            // Nothing is repeated at the next sync point.
            #expect(try await one.command("a3", "NOOP") == ["a3 OK NOOP completed"])
        }
    }

    /// The push latency itself is measured by benchmarks; here a generous wait only tells a push from none.
    @Test func idleIsToldOfChanges() async throws {
        try await withTestServer { server in
            let idler = try await server.login()
            try await idler.expectOK("a1", "SELECT INBOX")
            try await idler.sendLine("a2 IDLE")
            #expect(try await idler.readLine() == "+ idling")
            let writer = try await server.login()
            let started = ContinuousClock.now
            try await writer.sendLine("b1 APPEND INBOX {19+}")
            try await writer.sendLine("Subject: x\r\n\r\nbody\r\n")
            _ = try await writer.readResponse(tag: "b1")
            #expect(try await idler.readLine(timeout: .seconds(30)) == "* 1 EXISTS")
            #expect(try await idler.readLine(timeout: .seconds(30)) == "* 1 RECENT")
            print("IDLE told of an APPEND after \((ContinuousClock.now - started).milliseconds) ms")
            try await writer.expectOK("b2", "SELECT INBOX")
            try await writer.expectOK("b3", "STORE 1 +FLAGS (\\Answered)")
            #expect(try await idler.readLine(timeout: .seconds(30)) == "* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))")
            try await idler.sendLine("DONE")
            #expect(try await idler.readLine() == "a2 OK IDLE terminated")
        }
    }

    @Test func recentIsSeenByExactlyOneSession() async throws {
        try await withTestServer { server in
            let one = try await server.login()
            let two = try await server.login()
            try await one.expectOK("a1", "SELECT INBOX")
            try await two.expectOK("b1", "SELECT INBOX")
            try await server.seed(messages: [testMessage(subject: "new")])
            let first = try await one.command("a2", "NOOP")
            let second = try await two.command("b2", "NOOP")
            #expect(first.contains("* 1 EXISTS") && second.contains("* 1 EXISTS"))
            let recentCounts = [first, second].map { lines in lines.first { $0.hasSuffix(" RECENT") } ?? "" }
            #expect(recentCounts.sorted() == ["* 0 RECENT", "* 1 RECENT"])
        }
    }

    @Test func messageExpungedElsewhereStaysFetchable() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "going", body: "still here\r\n")])
            let one = try await server.login()
            let two = try await server.login()
            try await one.expectOK("a1", "SELECT INBOX")
            try await two.expectOK("b1", "SELECT INBOX")
            try await two.expectOK("b2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            try await two.expectOK("b3", "EXPUNGE")
            try await Task.sleep(for: .milliseconds(200))
            let fetch = try await one.command("a2", "FETCH 1 (BODY.PEEK[TEXT])")
            #expect(fetch.contains("still here"))
            #expect(fetch.last == "a2 OK FETCH completed")
        }
    }
}
