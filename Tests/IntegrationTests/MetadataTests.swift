import Foundation
import IMAPEngine
import Testing

/// Issue #10 §5: METADATA and METADATA-SERVER (RFC 5464) over TCP, following the RFC's examples, with the limits.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct MetadataTests {
    @Test func rfcExamples() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            let capability = try await c.expectOK("c", "CAPABILITY").first ?? ""
            #expect(capability.contains(" METADATA ") && capability.contains(" METADATA-SERVER"), "\(capability)")
            // §4.3: a multi-line value in a literal.
            let comment = "My new comment across\r\ntwo lines.\r\n"
            try await c.sendLine("a SETMETADATA INBOX (/private/comment {\(comment.utf8.count)}")
            #expect(try await c.readLine().hasPrefix("+ "))
            try await c.send(comment + ")\r\n")
            #expect(try await c.readResponse(tag: "a") == ["a OK SETMETADATA completed"])
            let got = try await c.expectOKKeepingLiterals("b", "GETMETADATA \"INBOX\" /private/comment")
            #expect(got == ["* METADATA INBOX (/private/comment {\(comment.utf8.count)}\r\n\(comment))"], "\(got)")
            // §4.2: server entries (mailbox ""), several at once, missing ones NIL; names are case-insensitive.
            try await c.expectOK("d", "SETMETADATA \"\" (/shared/comment \"Shared comment\")")
            #expect(
                try await c.expectOK("e", "GETMETADATA \"\" /Shared/Comment")
                    == ["* METADATA \"\" (/shared/comment \"Shared comment\")"])
            #expect(
                try await c.expectOK("f", "GETMETADATA \"\" (/shared/comment /private/comment)")
                    == ["* METADATA \"\" (/shared/comment \"Shared comment\" /private/comment NIL)"])
            // §4.2.1 MAXSIZE: larger values are left out and the largest is reported.
            let long = String(repeating: "x", count: 2199)
            try await c.expectOK("g", "SETMETADATA INBOX (/shared/comment \"\(long)\")")
            let small = try await c.commandKeepingLiterals(
                "h", "GETMETADATA \"INBOX\" (MAXSIZE 1024) (/shared/comment /private/comment)")
            #expect(small.count == 2 && small[0].hasPrefix("* METADATA INBOX (/private/comment {"), "\(small)")
            #expect(small.last == "h OK [METADATA LONGENTRIES 2199] GETMETADATA completed", "\(small)")
            // §4.2.2 DEPTH: 1 is the entry and its children, infinity everything below.
            try await c.expectOK(
                "i",
                "SETMETADATA INBOX (/private/filters/values/small \"SMALLER 5000\" /private/filters/values/boss \"FROM \\\"boss@example.com\\\"\" /private/filters/values/boss/extra \"x\")"
            )
            #expect(
                try await c.expectOK("j", "GETMETADATA \"INBOX\" (DEPTH 1) (/private/filters/values)") == [
                    "* METADATA INBOX (/private/filters/values/boss \"FROM \\\"boss@example.com\\\"\" /private/filters/values/small \"SMALLER 5000\" /private/filters/values NIL)"
                ])
            let all = try await c.expectOK("k", "GETMETADATA INBOX (DEPTH infinity) /private/filters")
            #expect(all.first?.contains("/private/filters/values/boss/extra \"x\"") == true, "\(all)")
            // NIL removes (§4.3); RENAME keeps a mailbox's entries, DELETE takes them away.
            try await c.expectOK("l", "SETMETADATA INBOX (/private/filters/values/small NIL)")
            #expect(
                try await c.expectOK("m", "GETMETADATA INBOX /private/filters/values/small")
                    == ["* METADATA INBOX (/private/filters/values/small NIL)"])
            try await c.expectOK("n1", "CREATE Work")
            try await c.expectOK("n2", "SETMETADATA Work (/private/comment \"work\")")
            try await c.expectOK("n3", "RENAME Work Job")
            #expect(
                try await c.expectOK("n4", "GETMETADATA Job /private/comment")
                    == ["* METADATA Job (/private/comment \"work\")"])
            try await c.expectOK("n5", "DELETE Job")
            try await c.expectOK("n6", "CREATE Job")
            #expect(
                try await c.expectOK("n7", "GETMETADATA Job /private/comment")
                    == ["* METADATA Job (/private/comment NIL)"])
            await c.close()
        }
    }

    @Test func badInputAndLimits() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            for (n, bad) in [
                "GETMETADATA INBOX /other/comment", "GETMETADATA INBOX /private/*", "GETMETADATA INBOX /private//x",
                "SETMETADATA INBOX (/private \"x\")", "SETMETADATA INBOX (/private/x)",
                "GETMETADATA (DEPTH 2) INBOX /private/x",
                "GETMETADATA (FOO) INBOX /private/x", "SETMETADATA INBOX (/private/a\u{7F} \"x\")",
            ].enumerated() {
                #expect(try await c.command("b\(n)", bad).last?.hasPrefix("b\(n) BAD") == true, "\(bad)")
            }
            #expect(
                try await c.command("x", "GETMETADATA Nowhere /private/comment").last?.hasPrefix("x NO [NONEXISTENT]")
                    == true)
            // One value over the limit: nothing of the command is set (§4.3).
            let big = String(repeating: "y", count: 16 * 1024 + 1)
            try await c.send("y SETMETADATA INBOX (/private/a \"a\" /private/big {\(big.utf8.count)+}\r\n\(big))\r\n")
            let refused = try await c.readResponse(tag: "y")
            #expect(refused.last?.hasPrefix("y NO [METADATA MAXSIZE 16384]") == true, "\(refused)")
            #expect(
                try await c.expectOK("y2", "GETMETADATA INBOX /private/a") == ["* METADATA INBOX (/private/a NIL)"])
            // 1,000 entries per account; the one more is TOOMANY and leaves the rest as they were.
            let thousand = (1...1000).map { "/private/e\($0) \"v\"" }.joined(separator: " ")
            try await c.expectOK("z1", "SETMETADATA \"\" (\(thousand))")
            #expect(
                try await c.command("z2", "SETMETADATA INBOX (/private/one-more \"v\")").last
                    == "z2 NO [METADATA TOOMANY] Too many entries")
            // Replacing or removing is still fine at the limit.
            try await c.expectOK("z3", "SETMETADATA \"\" (/private/e1 \"new\" /private/e2 NIL)")
            try await c.expectOK("z4", "SETMETADATA INBOX (/private/one-more ~{3}\r\na\0b)")
            let binary = try await c.expectOKKeepingLiterals("z5", "GETMETADATA INBOX /private/one-more")
            #expect(binary == ["* METADATA INBOX (/private/one-more ~{3}\r\na\0b)"], "\(binary)")
            await c.close()
        }
    }
}
