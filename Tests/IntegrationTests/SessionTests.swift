import Foundation
import IMAPEngine
import Testing

/// The session around the mailbox commands (RFC 9051 §3, §6.1, §6.2, §6.3.1–2): greeting and CAPABILITY, ID
/// (RFC 2971), NAMESPACE (RFC 2342), ENABLE IMAP4rev2, AUTHENTICATE with and without SASL-IR (RFC 4959), state
/// errors, SELECT / EXAMINE, autologout, LOGOUT and pipelining.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SessionTests {
    /// The capability names of a `* CAPABILITY …` line or of a `[CAPABILITY …]` response code.
    static func capabilities(_ line: String) -> Set<String>? {
        if line.hasPrefix("* CAPABILITY ") {
            return Set(line.dropFirst("* CAPABILITY ".count).split(separator: " ").map { $0.uppercased() })
        }
        guard let start = line.range(of: "[CAPABILITY "), let end = line[start.upperBound...].firstIndex(of: "]")
        else { return nil }
        return Set(line[start.upperBound..<end].split(separator: " ").map { $0.uppercased() })
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// Whether a tagged line is a failure of a command issued in the wrong state: BAD or NO (RFC 9051 §3).
    static func refused(_ lines: [String], _ tag: String) -> Bool {
        lines.count == 1 && (lines[0].hasPrefix("\(tag) BAD") || lines[0].hasPrefix("\(tag) NO"))
    }

    @Test func greetingAndCapabilities() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            let greeting = try await c.readLine()
            #expect(greeting.hasPrefix("* OK [CAPABILITY "), "\(greeting)")
            let before = Self.capabilities(greeting) ?? []
            // Both revisions, and PLAIN because loopback counts as a safe channel (README; RFC 9051 §6.2.2).
            #expect(before.isSuperset(of: ["IMAP4REV1", "IMAP4REV2", "AUTH=PLAIN"]), "\(greeting)")
            #expect(!before.contains("LOGINDISABLED"))
            let capability = try await c.expectOK("c1", "CAPABILITY")
            #expect(capability.count == 1 && Self.capabilities(capability[0]) == before, "\(capability)")

            // After login the list grows by the extensions that only make sense once authenticated.
            let login = try await c.command("c2", "LOGIN tim timmy")
            #expect(login.last?.hasPrefix("c2 OK") == true)
            let after = try await c.expectOK("c3", "CAPABILITY")
            #expect(after.count == 1)
            let afterSet = Self.capabilities(after.first ?? "") ?? []
            #expect(
                afterSet.isSuperset(of: [
                    "IMAP4REV1", "IMAP4REV2", "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "ESEARCH",
                    "SEARCHRES", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "BINARY", "STATUS=SIZE", "IDLE",
                    "ENABLE", "ID", "SASL-IR",
                ]), "\(after)")
            let beforeWithoutAuth = before.filter { !$0.hasPrefix("AUTH=") && $0 != "SASL-IR" }
            #expect(afterSet.isStrictSuperset(of: beforeWithoutAuth))
            // A CAPABILITY code on the tagged OK of LOGIN, if sent, is the same list (RFC 9051 §7.1).
            if let code = login.last.flatMap(Self.capabilities) { #expect(code == afterSet) }
        }
    }

    /// RFC 8437 UNAUTHENTICATE: the connection goes back to not authenticated (TLS aside, nothing of the first
    /// login stays: selection, ENABLEd extensions), and a pipelined LOGIN as someone else works at once.
    @Test func unauthenticateResetsTheSessionForTheNextLogin() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            #expect(Self.capabilities(try await c.expectOK("c", "CAPABILITY")[0])?.contains("UNAUTHENTICATE") == true)
            try await c.expectOK("e", "ENABLE QRESYNC")
            try await c.expectOK("s", "SELECT INBOX")
            // No expunge events or anything else: just the tagged OK, then the LOGIN pipelined behind it.
            try await c.send("u UNAUTHENTICATE\r\nl LOGIN mhtest2 \"secret two\"\r\n")
            #expect(try await c.readLine() == "u OK UNAUTHENTICATE completed")
            #expect(try await c.readResponse(tag: "l").last?.hasPrefix("l OK") == true)
            // The second user's own INBOX, and QRESYNC is no longer on.
            let status = try await c.expectOK("t", "STATUS INBOX (MESSAGES)")
            #expect(status == ["* STATUS INBOX (MESSAGES 0)"], "\(status)")
            #expect(try await c.command("q", "SELECT INBOX (QRESYNC (1 1))").last?.hasPrefix("q BAD") == true)
            try await c.expectOK("u2", "UNAUTHENTICATE")
            // Not authenticated again: mailbox commands are refused, login capabilities are back.
            #expect(Self.refused(try await c.command("x", "SELECT INBOX"), "x"))
            let capabilities = Self.capabilities(try await c.expectOK("c2", "CAPABILITY")[0]) ?? []
            #expect(capabilities.contains("AUTH=PLAIN") && !capabilities.contains("UNAUTHENTICATE"))
            #expect(Self.refused(try await c.command("y", "UNAUTHENTICATE"), "y"))
            try await c.expectOK("l2", "LOGIN tim timmy")
            try await c.expectOK("s2", "SELECT INBOX")
        }
    }

    @Test func idInEveryState() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            _ = try await c.readLine()
            // RFC 2971 §3.1: ID works in any state; the answer is "* ID" with NIL or a list of string pairs.
            let before = try await c.expectOK("i1", "ID NIL")
            let first = before.first ?? ""
            #expect(before.count == 1 && (first == "* ID NIL" || first.hasPrefix("* ID (\"")), "\(before)")
            try await c.expectOK("i2", "LOGIN tim timmy")
            let after = try await c.expectOK("i3", "ID (\"name\" \"MailHostTests\" \"version\" \"1.0\")")
            let id = after.first ?? ""
            #expect(after.count == 1 && (id == "* ID NIL" || id.hasPrefix("* ID (\"")), "\(after)")
            if id.hasPrefix("* ID (") {
                #expect(id.hasSuffix(")"))
                #expect(id.components(separatedBy: "\"").count % 4 == 1, "pairs of quoted strings: \(after)")
            }
        }
    }

    @Test func namespace() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            // One personal namespace, no prefix, "/" delimiter; no other users' or shared ones (RFC 2342 §5).
            #expect(try await c.expectOK("n1", "NAMESPACE") == ["* NAMESPACE ((\"\" \"/\")) NIL NIL"])
        }
    }

    @Test func enableIMAP4rev2ChangesSelect() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "one"), testMessage(subject: "two")])
            let c = try await server.login()
            try await c.expectOK("x0", "CREATE Other")
            #expect(try await c.expectOK("e1", "ENABLE IMAP4rev2") == ["* ENABLED IMAP4rev2"])
            let select = try await c.expectOK("s1", "SELECT INBOX")
            // IMAP4rev2 has no RECENT response (RFC 9051 Appendix E) and SELECT MUST return a LIST for the mailbox
            // (RFC 9051 §6.3.2).
            let recent = select.filter { $0.hasSuffix(" RECENT") }
            #expect(recent.isEmpty, "\(select)")
            #expect(select.contains("* LIST () \"/\" INBOX"), "\(select)")
            #expect(select.contains("* 2 EXISTS"))
            // Selecting another mailbox closes the first: [CLOSED] comes first (RFC 9051 §6.3.2, §7.1).
            let other = try await c.expectOK("s2", "SELECT Other")
            #expect(other.first?.hasPrefix("* OK [CLOSED]") == true, "\(other)")
            #expect(other.contains("* 0 EXISTS"))
            // Enabling again is harmless; ENABLED lists only what was newly enabled (RFC 5161 §3.1).
            let again = try await c.expectOK("e2", "ENABLE IMAP4rev2")
            #expect(again == ["* ENABLED"] || again == ["* ENABLED IMAP4rev2"], "\(again)")
        }
    }

    @Test func authenticatePlainWithAContinuation() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            _ = try await c.readLine()
            try await c.sendLine("a1 AUTHENTICATE PLAIN")
            // An empty challenge is "+ " (RFC 9051 §7.6: "+" SP, then base64 or text).
            #expect(try await c.readLine().hasPrefix("+ "))
            try await c.sendLine(Self.base64("\u{0}tim\u{0}timmy"))
            let done = try await c.readResponse(tag: "a1")
            #expect(done.count == 1 && done[0].hasPrefix("a1 OK"), "\(done)")
            try await c.expectOK("a2", "SELECT INBOX")
        }
    }

    @Test func authenticatePlainWithAnInitialResponse() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            _ = try await c.readLine()
            // RFC 4959: the response on the command line, no continuation.
            let lines = try await c.command("a1", "AUTHENTICATE PLAIN \(Self.base64("\u{0}tim\u{0}timmy"))")
            #expect(lines.count == 1 && lines[0].hasPrefix("a1 OK"), "\(lines)")
            // An authorization identity equal to the user is the same login.
            let other = try await server.connect()
            _ = try await other.readLine()
            let same = try await other.command("b1", "AUTHENTICATE PLAIN \(Self.base64("tim\u{0}tim\u{0}timmy"))")
            #expect(same.last?.hasPrefix("b1 OK") == true, "\(same)")
        }
    }

    @Test func authenticateCancelledOrMalformedIsBad() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            _ = try await c.readLine()
            // RFC 9051 §6.2.2: "*" cancels, and invalid base64 is rejected; both with a tagged BAD.
            try await c.sendLine("a1 AUTHENTICATE PLAIN")
            #expect(try await c.readLine().hasPrefix("+ "))
            try await c.sendLine("*")
            #expect(try await c.readResponse(tag: "a1").last?.hasPrefix("a1 BAD") == true)
            try await c.sendLine("a2 AUTHENTICATE LOGIN")
            #expect(try await c.readLine().hasPrefix("+ "))
            try await c.sendLine("*")
            #expect(try await c.readResponse(tag: "a2").last?.hasPrefix("a2 BAD") == true)
            try await c.sendLine("a3 AUTHENTICATE PLAIN")
            #expect(try await c.readLine().hasPrefix("+ "))
            try await c.sendLine("!!not base64!!")
            #expect(try await c.readResponse(tag: "a3").last?.hasPrefix("a3 BAD") == true)
            // A mechanism the server does not have is refused; the connection is still not authenticated.
            let unknown = try await c.command("a4", "AUTHENTICATE X-UNKNOWN")
            #expect(unknown.last?.hasPrefix("a4 NO") == true || unknown.last?.hasPrefix("a4 BAD") == true)
            #expect(Self.refused(try await c.command("a5", "SELECT INBOX"), "a5"))
            try await c.expectOK("a6", "LOGIN tim timmy")
        }
    }

    @Test func authenticateLogin() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            _ = try await c.readLine()
            try await c.sendLine("a1 AUTHENTICATE LOGIN")
            #expect(try await c.readLine().hasPrefix("+ "))
            try await c.sendLine(Self.base64("tim"))
            #expect(try await c.readLine().hasPrefix("+ "))
            try await c.sendLine(Self.base64("timmy"))
            #expect(try await c.readResponse(tag: "a1").last?.hasPrefix("a1 OK") == true)
            // With the user name as initial response (SASL-IR), only the password is asked for.
            let d = try await server.connect()
            _ = try await d.readLine()
            try await d.sendLine("b1 AUTHENTICATE LOGIN \(Self.base64("mhtest2"))")
            #expect(try await d.readLine().hasPrefix("+ "))
            try await d.sendLine(Self.base64("secret two"))
            #expect(try await d.readResponse(tag: "b1").last?.hasPrefix("b1 OK") == true)
            // A wrong password fails with NO [AUTHENTICATIONFAILED] (RFC 5530).
            let e = try await server.connect()
            _ = try await e.readLine()
            let wrong = try await e.command("c1", "AUTHENTICATE PLAIN \(Self.base64("\u{0}tim\u{0}wrong"))")
            #expect(wrong.count == 1 && wrong[0].hasPrefix("c1 NO [AUTHENTICATIONFAILED]"), "\(wrong)")
        }
    }

    @Test func commandsInTheWrongState() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "one")])
            let c = try await server.connect()
            _ = try await c.readLine()
            // Not authenticated: commands of the later states are refused (RFC 9051 §3: BAD or NO). Fewer than
            // IMAPLimits.maxBadCommands in a row, which would end the connection.
            for (i, command) in [
                "SELECT INBOX", "EXAMINE INBOX", "CREATE x", "RENAME x y", "LIST \"\" *", "STATUS INBOX (MESSAGES)",
                "NAMESPACE", "ENABLE IMAP4rev2", "FETCH 1 FLAGS", "UID STORE 1 +FLAGS (\\Seen)", "SEARCH ALL",
                "EXPUNGE", "UNSELECT", "IDLE",
            ].enumerated() {
                #expect(Self.refused(try await c.command("n\(i)", command), "n\(i)"), "\(command) before login")
            }
            try await c.expectOK("l1", "LOGIN tim timmy")
            // Authenticated: no second login, and no message commands without a selected mailbox.
            #expect(Self.refused(try await c.command("a1", "LOGIN tim timmy"), "a1"))
            #expect(
                Self.refused(try await c.command("a2", "AUTHENTICATE PLAIN \(Self.base64("\u{0}tim\u{0}timmy"))"), "a2")
            )
            for (i, command) in [
                "FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL", "COPY 1 INBOX", "MOVE 1 INBOX", "EXPUNGE",
                "CLOSE", "UNSELECT", "UID FETCH 1 FLAGS", "UID SEARCH ALL", "UID EXPUNGE 1",
            ].enumerated() {
                #expect(Self.refused(try await c.command("s\(i)", command), "s\(i)"), "\(command) without a mailbox")
            }
            // Selected: still no second login.
            try await c.expectOK("x1", "SELECT INBOX")
            #expect(Self.refused(try await c.command("x2", "LOGIN tim timmy"), "x2"))
            try await c.expectOK("x3", "FETCH 1 (UID)")
        }
    }

    @Test func selectExamineAndSwitching() async throws {
        try await withTestServer { server in
            try await server.seed(messages: (1...3).map { testMessage(subject: "in \($0)") })
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE Other")
            try await server.seed(mailbox: "Other", messages: [testMessage(subject: "other 1")])
            let inbox = try await c.command("s1", "SELECT INBOX")
            #expect(inbox.last?.hasPrefix("s1 OK [READ-WRITE]") == true)
            #expect(inbox.contains("* 3 EXISTS"))
            // Selecting another mailbox switches to it: sequence numbers now refer to Other.
            let other = try await c.command("s2", "EXAMINE Other")
            // RFC 9051 §6.3.3: EXAMINE answers [READ-ONLY].
            #expect(other.last?.hasPrefix("s2 OK [READ-ONLY]") == true, "\(other)")
            #expect(other.contains("* 1 EXISTS"))
            let subject = try await c.command("f1", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            #expect(subject.contains("Subject: other 1"), "\(subject)")
            #expect(try await c.command("f2", "FETCH 2 (UID)").last?.hasPrefix("f2 BAD") == true)
            // A failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2).
            #expect(try await c.command("s3", "SELECT nosuch").last?.hasPrefix("s3 NO") == true)
            #expect(Self.refused(try await c.command("f3", "FETCH 1 (UID)"), "f3"))
            #expect(try await c.command("s4", "SELECT inbox").last?.hasPrefix("s4 OK [READ-WRITE]") == true)
        }
    }

    @Test func autologoutSaysByeAndCloses() async throws {
        var limits = IMAPLimits()
        limits.unauthenticatedTimeout = .seconds(1)
        limits.authenticatedTimeout = .seconds(1)
        let server = try await TestServer.start(limits: limits)
        do {
            let anonymous = try await server.connect()
            _ = try await anonymous.readLine()
            // LOGIN and SELECT sent together: a pause between them, on a loaded machine, could outlast the 1-second
            // timeout and meet the timer's check first.
            let idle = try await server.connect()
            try await idle.send("l LOGIN tim timmy\r\ns1 SELECT INBOX\r\n")
            _ = try await idle.readLine()  // greeting
            #expect(try await idle.readResponse(tag: "l").last?.hasPrefix("l OK") == true)
            #expect(try await idle.readResponse(tag: "s1").last?.hasPrefix("s1 OK") == true)
            // The session looks at its timers every 10 s (RFC 9051 §5.4: BYE, then close).
            for client in [anonymous, idle] {
                let bye = try await client.readLine(timeout: .seconds(16))
                #expect(bye.hasPrefix("* BYE"), "\(bye)")
                #expect(await client.isClosed())
            }
            await server.stopAndDrop()
        } catch {
            await server.stopAndDrop()
            throw error
        }
    }

    @Test func logoutSaysByeThenOKThenCloses() async throws {
        try await withTestServer { server in
            for login in [false, true] {
                let c = login ? try await server.login() : try await server.connect()
                if !login { _ = try await c.readLine() }
                let lines = try await c.command("z1", "LOGOUT")
                // RFC 9051 §6.1.3: BYE first, then the tagged OK, then the server closes.
                #expect(lines.count == 2, "\(lines)")
                #expect(lines.first?.hasPrefix("* BYE") == true)
                #expect(lines.last?.hasPrefix("z1 OK") == true)
                #expect(await c.isClosed())
            }
        }
    }

    @Test func pipelinedCommandsAreAnsweredInOrder() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "one"), testMessage(subject: "two")])
            let c = try await server.connect()
            _ = try await c.readLine()
            // Several commands in one write, with a state change (LOGIN, SELECT) and a LITERAL+ in the middle.
            let message = "Subject: three\r\n\r\nthree\r\n"
            try await c.send(
                "p1 LOGIN tim timmy\r\np2 SELECT INBOX\r\np3 FETCH 1:2 (UID)\r\n"
                    + "p4 APPEND INBOX {\(message.utf8.count)+}\r\n\(message)\r\np5 NOOP\r\np6 UID SEARCH ALL\r\np7 LOGOUT\r\n"
            )
            var lines: [String] = []
            while !(lines.last?.hasPrefix("p7 ") ?? false) { lines.append(try await c.readLine()) }
            let tagged = lines.filter { $0.hasPrefix("p") }
            let results = tagged.map { String($0.prefix(5)) }
            #expect(results == ["p1 OK", "p2 OK", "p3 OK", "p4 OK", "p5 OK", "p6 OK", "p7 OK"], "\(lines)")
            guard tagged.count == 7 else { return }
            // Each untagged response comes before the tagged reply of its own command.
            let index = { (line: String) in lines.firstIndex(of: line) ?? -1 }
            let p2 = index(tagged[1])
            let p3 = index(tagged[2])
            let p5 = index(tagged[4])
            let p6 = index(tagged[5])
            #expect(index("* 1 FETCH (UID 1)") > p2 && index("* 2 FETCH (UID 2)") < p3)
            #expect(index("* 3 EXISTS") > p3 && index("* 3 EXISTS") < p5, "\(lines)")
            #expect(index("* SEARCH 1 2 3") > p5 && index("* SEARCH 1 2 3") < p6, "\(lines)")
            #expect(await c.isClosed())
        }
    }
}
