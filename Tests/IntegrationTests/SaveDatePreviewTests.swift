import Foundation
import IMAPEngine
import PostgresNIO
import StoragePostgres
import Testing

/// Issue #10 §5: SAVEDATE (RFC 8514) and PREVIEW (RFC 8970) over TCP.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SaveDatePreviewTests {
    static func today() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "d-MMM-yyyy"
        return formatter.string(from: Date())
    }

    @Test func saveDates() async throws {
        try await withTestServer { server in
            // Internal dates in 2023; saved today.
            try await server.seed(messages: [testMessage(subject: "one"), testMessage(subject: "two")])
            let c = try await server.login()
            #expect(try await c.expectOK("c", "CAPABILITY").first?.contains(" SAVEDATE") == true)
            try await c.expectOK("m", "CREATE Other")
            try await c.expectOK("s", "SELECT INBOX")
            let fetched = try await c.expectOK("f", "FETCH 1:2 (INTERNALDATE SAVEDATE)")
            #expect(fetched.count == 2, "\(fetched)")
            for line in fetched {
                #expect(line.contains("INTERNALDATE \"14-Nov-2023"), "\(line)")
                // date-day-fixed: a day below 10 has a leading space (RFC 9051 §9).
                let fixed = Self.today().count == 10 ? " " + Self.today() : Self.today()
                #expect(line.contains("SAVEDATE \"\(fixed) "), "\(line)")
                #expect(line.hasSuffix(" +0000\")"), "\(line)")
            }
            let day = Self.today()
            #expect(try await c.expectOK("q1", "SEARCH SAVEDON \(day)") == ["* SEARCH 1 2"])
            #expect(try await c.expectOK("q2", "SEARCH SAVEDBEFORE \(day)") == ["* SEARCH"])
            #expect(try await c.expectOK("q3", "SEARCH SAVEDSINCE 1-Jan-2024 SAVEDATESUPPORTED") == ["* SEARCH 1 2"])
            #expect(try await c.expectOK("q4", "SEARCH ON 14-Nov-2023") == ["* SEARCH 1 2"])
            // A copy is saved anew; a message stored before the save date was kept has none (NIL).
            try await c.expectOK("cp", "COPY 1 Other")
            try await c.expectOK("s2", "EXAMINE Other")
            #expect(try await c.expectOK("f2", "FETCH 1 (SAVEDATE)").first?.contains("SAVEDATE \"") == true)
            try await server.executeSQL("UPDATE messages SET saved_at = NULL")
            #expect(try await c.expectOK("f3", "FETCH 1 (SAVEDATE)") == ["* 1 FETCH (SAVEDATE NIL)"])
            #expect(try await c.expectOK("q5", "SEARCH SAVEDSINCE 1-Jan-2000") == ["* SEARCH"])
            await c.close()
        }
    }

    @Test func previews() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            #expect(try await c.expectOK("c", "CAPABILITY").first?.contains(" PREVIEW") == true)
            let plain = "Subject: plain\r\n\r\nHello there,\r\n\r\nthe  meeting is\tat 10.\r\n"
            let html =
                "Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Grüße <i>aus</i> Köln</p>\r\n"
            let quoted = "Subject: quote\r\n\r\nSays \"hi\" \\ bye\r\n"
            let none = "Subject: empty\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n"
            for (n, message) in [plain, html, quoted, none].enumerated() {
                _ = try await c.append("a\(n)", to: "INBOX", Array(message.utf8))
            }
            try await c.expectOK("s", "SELECT INBOX")
            // RFC 8970 §3: PREVIEW and PREVIEW (LAZY); the text is a string, NIL when there is none.
            #expect(
                try await c.expectOK("f1", "FETCH 1 (PREVIEW)") == [
                    "* 1 FETCH (PREVIEW \"Hello there, the meeting is at 10.\")"
                ])
            let utf8 = try await c.expectOKKeepingLiterals("f2", "FETCH 2 (PREVIEW (LAZY))")
            #expect(utf8 == ["* 2 FETCH (PREVIEW {\("Grüße aus Köln".utf8.count)}\r\nGrüße aus Köln)"], "\(utf8)")
            #expect(
                try await c.expectOK("f3", "UID FETCH 3 (PREVIEW)") == [
                    "* 3 FETCH (UID 3 PREVIEW \"Says \\\"hi\\\" \\\\ bye\")"
                ])
            #expect(try await c.expectOK("f4", "FETCH 4 (PREVIEW)") == ["* 4 FETCH (PREVIEW NIL)"])
            #expect(try await c.command("f5", "FETCH 1 (PREVIEW (EAGER))").last?.hasPrefix("f5 BAD") == true)
            await c.close()
        }
    }
}
