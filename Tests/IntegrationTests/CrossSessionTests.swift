import IMAPEngine
import PostgresNIO
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

    /// A STORE, FETCH \\Seen, EXPUNGE or APPEND that was the only change since the session's view is taken in without
    /// a pull (`Session.onlyChange`); one that follows another change is not, and that change is announced with it.
    @Test func ownChangesAreToldOnceAndOthersChangesWithThem() async throws {
        try await withTestServer { server in
            try await server.seed(messages: (1...3).map { testMessage(subject: "m\($0)") })
            let one = try await server.login()
            let two = try await server.login()
            try await one.expectOK("a1", "SELECT INBOX")
            try await two.expectOK("b1", "SELECT INBOX")
            #expect(
                try await one.command("a2", "STORE 1 +FLAGS (\\Flagged)") == [
                    "* 1 FETCH (FLAGS (\\Flagged \\Recent))", "a2 OK STORE completed",
                ])
            #expect(try await one.command("a3", "NOOP") == ["a3 OK NOOP completed"])
            let fetch = try await one.command("a4", "FETCH 2 (BODY[])")
            #expect(fetch.contains(" FLAGS (\\Seen \\Recent))") && fetch.last == "a4 OK FETCH completed")
            #expect(try await one.command("a5", "NOOP") == ["a5 OK NOOP completed"])

            try await two.expectOK("b2", "STORE 3 +FLAGS (\\Answered)")
            let store = try await one.command("a6", "STORE 1 -FLAGS (\\Flagged)")
            #expect(store.contains("* 1 FETCH (FLAGS (\\Recent))"))
            #expect(store.contains("* 3 FETCH (UID 3 FLAGS (\\Answered \\Recent))"))
            #expect(store.last == "a6 OK STORE completed")
            #expect(try await one.command("a7", "NOOP") == ["a7 OK NOOP completed"])

            // Another instance's change whose notification has not arrived yet (the feed is behind): only
            // HIGHESTMODSEQ tells session one of it, and its STORE must pull.
            let account = try await server.account()
            try await Self.setDraftUnannounced(server, account: account, uid: 2)
            let late = try await one.command("a8", "STORE 1 +FLAGS (\\Flagged)")
            #expect(late.contains("* 2 FETCH (UID 2 FLAGS (\\Seen \\Draft \\Recent))"))
            #expect(late.contains("* 1 FETCH (FLAGS (\\Flagged \\Recent))") && late.last == "a8 OK STORE completed")

            // EXPUNGE likewise: its own expunge is told once, and a change before it is pulled with it.
            try await one.expectOK("a9", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            #expect(try await one.command("a10", "EXPUNGE") == ["* 1 EXPUNGE", "a10 OK EXPUNGE completed"])
            #expect(try await one.command("a11", "NOOP") == ["a11 OK NOOP completed"])
            try await one.expectOK("a12", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            try await Self.setDraftUnannounced(server, account: account, uid: 3)
            let expunge = try await one.command("a13", "EXPUNGE")
            #expect(expunge.contains("* 2 FETCH (UID 3 FLAGS (\\Answered \\Draft \\Recent))"))
            #expect(expunge.contains("* 1 EXPUNGE") && expunge.last == "a13 OK EXPUNGE completed")
            #expect(try await one.command("a14", "NOOP") == ["a14 OK NOOP completed"])

            // APPEND to the selected mailbox likewise; the new message is this IMAP4rev1 session's \Recent.
            try await one.sendLine("a15 APPEND INBOX {23+}")
            try await one.sendLine("Subject: second\r\n\r\nhi\r\n")
            let append = try await one.readResponse(tag: "a15")
            #expect(Array(append.dropLast()) == ["* 2 EXISTS", "* 2 RECENT"])
            #expect(append.last?.hasPrefix("a15 OK [APPENDUID ") == true)
            #expect(try await one.command("a16", "NOOP") == ["a16 OK NOOP completed"])
            #expect(
                try await one.command("a17", "FETCH 2 (UID FLAGS)") == [
                    "* 2 FETCH (UID 4 FLAGS (\\Recent))", "a17 OK FETCH completed",
                ])
            try await Self.setDraftUnannounced(server, account: account, uid: 4)
            try await one.sendLine("a18 APPEND INBOX {23+}")
            try await one.sendLine("Subject: third!\r\n\r\nhi\r\n")
            let after = try await one.readResponse(tag: "a18")
            #expect(after.contains("* 2 FETCH (UID 4 FLAGS (\\Draft \\Recent))") && after.contains("* 3 EXISTS"))
            #expect(after.last?.hasPrefix("a18 OK [APPENDUID ") == true)
            #expect(try await one.command("a19", "NOOP") == ["a19 OK NOOP completed"])
        }
    }

    /// Another instance's change whose notification has not arrived yet: \Draft on `uid`, with a new modseq, and no
    /// NOTIFY.
    static func setDraftUnannounced(_ server: TestServer, account: AccountID, uid: Int64) async throws {
        // Two statements both stores run: a new modseq for INBOX, and the message changed at it.
        let inbox = "account_id = \(account.rawValue) AND name = 'INBOX'"
        try await server.executeSQL("UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE \(inbox)")
        try await server.executeSQL(
            """
            UPDATE messages SET flags = flags | 16,
                modseq = (SELECT highestmodseq FROM mailboxes WHERE \(inbox))
            WHERE account_id = \(account.rawValue) AND uid = \(uid)
                AND mailbox_id = (SELECT mailbox_id FROM mailboxes WHERE \(inbox))
            """)
    }

    /// A change another session made is taken in from its notification, which describes it (`FeedBacklog`): the
    /// session does not read the mailbox. To tell the two apart, the message row is then altered behind the store's
    /// back (no modseq, no notification): only a read would show that.
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func aDescribedChangeIsTakenInWithoutReadingTheMailbox() async throws {
        try await withTestServer { server in
            try await server.seed(messages: (1...3).map { testMessage(subject: "m\($0)") })
            let (one, idler) = try await Self.toldOfAnswered(3, server: server, select: "SELECT INBOX")
            let account = try await server.account()
            _ = try await server.client.query(
                """
                UPDATE messages SET flags = flags | 16
                WHERE account_id = \(account.rawValue) AND uid = 3
                    AND mailbox_id = (SELECT mailbox_id FROM mailboxes WHERE account_id = \(account.rawValue) AND name = 'INBOX')
                """, logger: TestEnvironment.logger)
            let told = try await one.command("a2", "FETCH 1 (UID)")
            #expect(told.contains("* 3 FETCH (UID 3 FLAGS (\\Answered \\Recent))"), "\(told)")
            #expect(!told.joined().contains("Draft"))
            try await idler.sendLine("DONE")
            #expect(try await idler.readLine() == "i2 OK IDLE terminated")
        }
    }

    /// Session one runs `select`; a second session sets \Answered on message `seq`, and an IDLE client hears of it.
    /// The feed fans a notification out to every session at once: the idler's push means session one holds it too.
    static func toldOfAnswered(_ seq: Int, server: TestServer, select: String) async throws
        -> (one: IMAPTestClient, idler: IMAPTestClient)
    {
        let one = try await server.login()
        try await one.expectOK("a1", select)
        let idler = try await server.login()
        try await idler.expectOK("i1", "EXAMINE INBOX")
        try await idler.sendLine("i2 IDLE")
        #expect(try await idler.readLine() == "+ idling")
        let two = try await server.login()
        try await two.expectOK("b1", "SELECT INBOX")
        try await two.expectOK("b2", "STORE \(seq) +FLAGS (\\Answered)")
        #expect(try await idler.readLine(timeout: .seconds(30)) == "* \(seq) FETCH (UID \(seq) FLAGS (\\Answered))")
        return (one, idler)
    }

    /// A FETCH shows messages as they are now; the feed's deltas that stop short of that must not be replayed over
    /// it (flags and MODSEQ would go back in time): the session reads the changes instead.
    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func deltasNeverTakeAMessageBackBehindWhatAFetchShowed() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "m1")])
            let (one, idler) = try await Self.toldOfAnswered(1, server: server, select: "SELECT INBOX (CONDSTORE)")
            // A later change whose notification is still on its way.
            try await Self.setDraftUnannounced(server, account: try await server.account(), uid: 1)
            let fetched = try await one.command("a2", "FETCH 1 (FLAGS MODSEQ)")
            let lines = fetched.filter { $0.hasPrefix("* 1 FETCH") }
            #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("\\Draft") }, "\(fetched)")
            try await idler.sendLine("DONE")
            #expect(try await idler.readLine() == "i2 OK IDLE terminated")
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
