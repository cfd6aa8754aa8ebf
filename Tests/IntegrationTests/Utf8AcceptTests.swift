import Foundation
import IMAPEngine
import Testing

/// Issue #10 §5: UTF8=ACCEPT (RFC 6855) over TCP.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct Utf8AcceptTests {
    @Test func enableUtf8Accept() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            #expect(try await c.expectOK("c", "CAPABILITY").first?.contains(" UTF8=ACCEPT") == true)
            try await c.expectOK("m", "CREATE \"Entwürfe\"")
            // Before ENABLE: modified UTF-7 names (RFC 3501 §5.1.3).
            #expect(try await c.expectOK("l1", "LIST \"\" Entw*") == ["* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe"])
            #expect(try await c.expectOK("e", "ENABLE UTF8=ACCEPT") == ["* ENABLED UTF8=ACCEPT"])
            // Enabled once: a second ENABLE lists nothing (RFC 5161 §3.1).
            #expect(try await c.expectOK("e2", "ENABLE UTF8=ACCEPT") == ["* ENABLED"])
            let listed = try await c.expectOK("l2", "LIST \"\" Entw*")
            #expect(listed == ["* LIST (\\HasNoChildren) \"/\" \"Entwürfe\""], "\(listed)")
            // §4: a message with UTF-8 headers through the UTF8 data extension.
            let message = Array("Subject: Grüße aus Köln\r\nFrom: Jörg <j@example.com>\r\n\r\nHallo\r\n".utf8)
            try await c.send(
                Array("a APPEND \"Entwürfe\" (\\Draft) UTF8 (~{\(message.count)+}\r\n".utf8) + message
                    + Array(")\r\n".utf8))
            #expect(try await c.readResponse(tag: "a").last?.hasPrefix("a OK [APPENDUID") == true)
            let selected = try await c.expectOK("s", "SELECT \"Entwürfe\"")
            #expect(selected.contains("* 1 EXISTS"))
            #expect(try await c.expectOK("q", "SEARCH SUBJECT \"grüße\"") == ["* SEARCH 1"])
            // §3: SEARCH with a CHARSET after ENABLE UTF8=ACCEPT is BAD.
            #expect(try await c.command("q2", "SEARCH CHARSET UTF-8 SUBJECT x").last?.hasPrefix("q2 BAD") == true)
            // The UTF8 extension takes a literal8 only.
            #expect(
                try await c.command("a2", "APPEND INBOX UTF8 ({3+}\r\nabc)").last?.hasPrefix("a2 BAD") == true)
            let body = try await c.expectOKKeepingLiterals("f", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            #expect(body.first?.contains("Subject: Grüße aus Köln") == true, "\(body)")
            await c.close()
        }
    }
}
