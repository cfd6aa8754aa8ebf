import Foundation
import IMAPEngine
import Testing

/// Issue #10 §5 (and imaptest's catenate groups): CATENATE (RFC 4469) over TCP, with IMAP URLs (RFC 5092) into the
/// account's own mailboxes.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct CatenateTests {
    static let source =
        "From: Fred <fred@example.com>\r\nSubject: Hello\r\n\r\nThe body\r\n"

    /// Sends `tag APPEND mailbox CATENATE (parts)` where each `TEXT` part is a non-synchronizing literal.
    static func command(_ tag: String, _ mailbox: String, _ parts: [(String, String)], more: String = "") -> [UInt8] {
        var bytes = Array("\(tag) APPEND \(mailbox) CATENATE (".utf8)
        for (i, (kind, value)) in parts.enumerated() {
            if i > 0 { bytes += Array(" ".utf8) }
            if kind == "TEXT" {
                bytes += Array("TEXT {\(value.utf8.count)+}\r\n\(value)".utf8)
            } else {
                bytes += Array("URL \"\(value)\"".utf8)
            }
        }
        bytes += Array(")\(more)\r\n".utf8)
        return bytes
    }

    @Test func catenatesTextAndURLs() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [Self.source])
            let c = try await server.login()
            #expect(try await c.expectOK("c", "CAPABILITY").first?.contains(" CATENATE") == true)
            let validity = try #require(
                try await c.expectOK("v", "STATUS INBOX (UIDVALIDITY)").first?.split(separator: " ").last?
                    .dropLast())
            try await c.expectOK("m", "CREATE Drafts")
            // RFC 4469 §6's shape: new header text, then the body of a stored message by URL, then more text.
            try await c.send(
                Self.command(
                    "a1", "Drafts",
                    [
                        ("TEXT", "From: Me <me@example.com>\r\nSubject: Fwd: Hello\r\n\r\n"),
                        ("URL", "/INBOX;UIDVALIDITY=\(validity)/;UID=1/;SECTION=TEXT"),
                        ("TEXT", "-- \r\nsig\r\n"),
                    ]))
            #expect(try await c.readResponse(tag: "a1").last?.hasPrefix("a1 OK [APPENDUID") == true)
            // The whole message by URL (absolute form, with this user), a header by section, a partial.
            try await c.send(
                Self.command("a2", "Drafts", [("URL", "imap://tim@localhost/INBOX/;UID=1")]))
            #expect(try await c.readResponse(tag: "a2").last?.hasPrefix("a2 OK") == true)
            try await c.send(
                Self.command(
                    "a3", "Drafts",
                    [
                        ("URL", "/INBOX/;uid=1/;section=HEADER.FIELDS%20(SUBJECT)"), ("TEXT", "x\r\n"),
                        ("URL", "/INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=4.4"),
                    ]))
            #expect(try await c.readResponse(tag: "a3").last?.hasPrefix("a3 OK") == true)
            try await c.expectOK("s", "SELECT Drafts")
            let fetched = try await c.expectOKKeepingLiterals("f", "FETCH 1:3 (BODY.PEEK[])")
            let expected = [
                "From: Me <me@example.com>\r\nSubject: Fwd: Hello\r\n\r\nThe body\r\n-- \r\nsig\r\n",
                Self.source,
                "Subject: Hello\r\n\r\nx\r\nbody",
            ]
            #expect(fetched.count == 3)
            for (n, text) in expected.enumerated() {
                #expect(
                    fetched[n] == "* \(n + 1) FETCH (BODY[] {\(text.utf8.count)}\r\n\(text))", "\(fetched[n])")
            }
            // The source was read with PEEK: still unseen.
            try await c.expectOK("s2", "SELECT INBOX")
            let flags = try await c.expectOK("f2", "FETCH 1 (FLAGS)")
            #expect(flags.count == 1 && flags.first?.contains("\\Seen") == false, "\(flags)")
            await c.close()
        }
    }

    @Test func unusableURLsAndLimits() async throws {
        var limits = IMAPLimits()
        limits.maxAppendSize = 100_000
        let server = try await TestServer.start(limits: limits)
        do {
            try await server.seed(messages: [
                Self.source, "Subject: big\r\n\r\n" + String(repeating: "x", count: 60_000),
            ])
            let c = try await server.login()
            try await c.expectOK("x", "SELECT INBOX")
            try await c.expectOK("x2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            for (n, url) in [
                "/INBOX;UIDVALIDITY=1/;UID=2",  // wrong UIDVALIDITY
                "/INBOX/;UID=9",  // no such message
                "/Nowhere/;UID=1",  // no such mailbox
                "imap://someone@localhost/INBOX/;UID=2",  // another user
                "/INBOX/;UID=2/;URLAUTH=anonymous",  // URLAUTH is not offered
                "/INBOX/;UID=2/;SECTION=5",  // no such part
                "INBOX/;UID=2",  // not a path
                "/INBOX/;UID=2]x",  // not a number; "]" must not end the response code
            ].enumerated() {
                try await c.send(Self.command("b\(n)", "INBOX", [("TEXT", "A: b\r\n\r\n"), ("URL", url)]))
                let reply = try await c.readResponse(tag: "b\(n)").last ?? ""
                #expect(reply.hasPrefix("b\(n) NO [BADURL "), "\(url): \(reply)")
                #expect(!reply.dropFirst(12).contains("]x"), "\(reply)")
            }
            // RFC 4469 §5: a missing destination is TRYCREATE before any URL is looked at.
            try await c.send(Self.command("t", "Nowhere", [("URL", "/INBOX;UIDVALIDITY=1/;UID=1")]))
            #expect(try await c.readResponse(tag: "t").last?.hasPrefix("t NO [TRYCREATE]") == true)
            // Over APPENDLIMIT once put together: TOOBIG, nothing stored.
            try await c.send(
                Self.command("g", "INBOX", [("URL", "/INBOX/;UID=2"), ("URL", "/INBOX/;UID=2")]))
            #expect(try await c.readResponse(tag: "g").last?.hasPrefix("g NO [TOOBIG]") == true)
            // A message expunged by this session's EXPUNGE is gone for URLs too.
            try await c.expectOK("e", "EXPUNGE")
            try await c.send(Self.command("d", "INBOX", [("URL", "/INBOX/;UID=1")]))
            #expect(try await c.readResponse(tag: "d").last?.hasPrefix("d NO [BADURL") == true)
            // Syntax: empty part list, unknown part, literal8 outside UTF8.
            #expect(try await c.command("s1", "APPEND INBOX CATENATE ()").last?.hasPrefix("s1 BAD") == true)
            #expect(try await c.command("s2", "APPEND INBOX CATENATE (FOO x)").last?.hasPrefix("s2 BAD") == true)
            // MULTIAPPEND with a CATENATE message: both stored, in one transaction.
            try await c.send(
                Array("m APPEND INBOX {8+}\r\nA: b\r\n\r\n".utf8)
                    + Self.command("", "", [("TEXT", "C: d\r\n\r\n"), ("URL", "/INBOX/;UID=2/;SECTION=HEADER")])
                    .dropFirst(" APPEND ".utf8.count))
            let multi = try await c.readResponse(tag: "m")
            #expect(multi.last?.hasPrefix("m OK [APPENDUID ") == true, "\(multi)")
            #expect((multi + (try await c.expectOK("n", "NOOP"))).contains("* 3 EXISTS"), "\(multi)")
            let stored = try await c.expectOKKeepingLiterals("f", "FETCH 3 (BODY.PEEK[])")
            #expect(stored.first?.contains("C: d\r\n\r\nSubject: big\r\n\r\n)") == true, "\(stored)")
            await c.close()
            await server.stopAndDrop()
        } catch {
            await server.stopAndDrop()
            throw error
        }
    }
}
