import IMAPEngine
import Testing

/// The session from the slides the project started from (issue #2), against the real server, PostgreSQL and PAM.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SlideSessionTests {
    static let header =
        "Date: Wed, 19 May 2003 02:23:25 -0700 (PDT)\r\n" + "From: christiane <christiane@schmidt.de>\r\n"
        + "Subject: weekend planning\r\n" + "To: steffen <steffen@grunwald.de>\r\n"
        + "cc: steffen <steffen@diehl.de>\r\n" + "Message-Id: <B27397-0100000@TIM01.de>\r\n" + "MIME-Version: 1.0\r\n"
        + "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n" + "\r\n"

    @Test func slideSession() async throws {
        try await withTestServer { server in
            // INBOX: 18 messages, 1–16 seen and already seen as recent by an earlier session, 17–18 new.
            var messages = (1...16).map { testMessage(subject: "message \($0)") }
            messages[11] = Self.header + "See you on Saturday.\r\n"
            try await server.seed(messages: messages, flags: Array(repeating: MessageFlags(system: .seen), count: 16))
            let earlier = try await server.login()
            try await earlier.expectOK("e1", "SELECT INBOX")
            try await earlier.expectOK("e2", "LOGOUT")
            try await server.seed(messages: [testMessage(subject: "new 17"), testMessage(subject: "new 18")])

            let c = try await server.connect()
            #expect(try await c.readLine().hasPrefix("* OK [CAPABILITY IMAP4rev1 "))
            let login = try await c.command("a001", "login TIM timmy")
            #expect(login.last?.hasPrefix("a001 OK") == true)

            let select = try await c.command("a002", "select inbox")
            #expect(select.contains("* 18 EXISTS"))
            #expect(select.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"))
            #expect(select.contains("* 2 RECENT"))
            #expect(select.contains("* OK [UNSEEN 17] Message 17 is the first unseen message"))
            let hasUIDValidity = select.contains { $0.hasPrefix("* OK [UIDVALIDITY ") }
            #expect(hasUIDValidity)
            #expect(select.last == "a002 OK [READ-WRITE] SELECT completed")

            try await c.sendLine("a003 fetch 12 body[header]")
            #expect(try await c.readLine() == "* 12 FETCH (BODY[HEADER] {\(Self.header.utf8.count)}")
            let literal = try await c.readBytes(Self.header.utf8.count)
            #expect(String(decoding: literal, as: UTF8.self) == Self.header)
            #expect(try await c.readLine() == ")")
            #expect(try await c.readLine() == "a003 OK FETCH completed")

            #expect(
                try await c.command("a004", "store 12 flags \\deleted") == [
                    "* 12 FETCH (FLAGS (\\Deleted))", "a004 OK STORE completed",
                ])
            #expect(
                try await c.command("a005", "store 12 +flags \\seen") == [
                    "* 12 FETCH (FLAGS (\\Deleted \\Seen))", "a005 OK STORE completed",
                ])
            #expect(try await c.command("a006", "logout") == ["* BYE Logging out", "a006 OK LOGOUT completed"])
            #expect(await c.isClosed())
        }
    }
}
