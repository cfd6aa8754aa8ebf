import IMAPEngine
import Testing

/// Every bad input gets a clear answer, and the server keeps serving everyone else (issue #2, "What it must show").
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct BadInputTests {
    @Test func malformedInputIsAnsweredAndTheConnectionStaysUsable() async throws {
        try await withTestServer { server in
            let bystander = try await server.login()
            try await bystander.expectOK("z1", "SELECT INBOX")
            let c = try await server.connect()
            _ = try await c.readLine()

            // A command in the wrong state.
            #expect(try await c.command("a1", "SELECT INBOX").last?.hasPrefix("a1 BAD SELECT not allowed") == true)
            // An unknown command.
            #expect(try await c.command("a2", "FROBNICATE now").last?.hasPrefix("a2 BAD Unknown command") == true)
            // A 1 MiB line without CRLF, then the rest of it: BAD [TOOBIG], then the next command works.
            try await c.send(String(repeating: "x", count: 1 << 20))
            #expect(try await c.readLine() == "* BAD [TOOBIG] Command line too long")
            try await c.send(String(repeating: "y", count: 1000) + "\r\n")
            #expect(try await c.command("a3", "NOOP") == ["a3 OK NOOP completed"])
            // A literal far over any limit is refused before it is sent.
            #expect(try await c.command("a4", "LOGIN {99999999999}") == ["a4 NO [TOOBIG] Literal too large"])
            // Bytes that are not UTF-8.
            try await c.send([
                0x61, 0x35, 0x20, 0x4C, 0x4F, 0x47, 0x49, 0x4E, 0x20, 0xC3, 0x28, 0xFF, 0x20, 0x78, 0x0D, 0x0A,
            ])
            #expect(try await c.readLine().hasPrefix("a5 BAD Invalid UTF-8"))
            // A second LOGIN after success.
            try await c.expectOK("a6", "LOGIN tim timmy")
            #expect(
                try await c.command("a7", "LOGIN tim timmy").last?.hasPrefix(
                    "a7 BAD LOGIN not allowed: already authenticated") == true)
            try await c.expectOK("a8", "SELECT INBOX")
            // Sequence number 0 and unbalanced parentheses.
            #expect(try await c.command("a9", "FETCH 0:* FLAGS").last?.hasPrefix("a9 BAD") == true)
            #expect(try await c.command("a10", "FETCH 1:* (FLAGS").last?.hasPrefix("a10 BAD") == true)
            #expect(try await c.command("a11", "SEARCH (OR SEEN").last?.hasPrefix("a11 BAD") == true)
            #expect(try await c.command("a12", "FETCH 1 FLAGS)").last?.hasPrefix("a12 BAD") == true)
            // A sequence number beyond the mailbox (empty here).
            #expect(try await c.command("a13", "FETCH 1 FLAGS").last?.hasPrefix("a13 BAD") == true)
            // Mailbox names with wildcards or an empty level; INBOX cannot be created or deleted.
            #expect(try await c.command("a14", "CREATE \"foo*\"").last?.hasPrefix("a14 NO [CANNOT]") == true)
            #expect(try await c.command("a15", "CREATE \"foo%bar\"").last?.hasPrefix("a15 NO [CANNOT]") == true)
            #expect(try await c.command("a15b", "CREATE foo*").last?.hasPrefix("a15b BAD") == true)  // not an astring
            #expect(try await c.command("a16", "CREATE a//b").last?.hasPrefix("a16 NO [CANNOT]") == true)
            #expect(try await c.command("a17", "CREATE INBOX").last?.hasPrefix("a17 NO") == true)
            #expect(try await c.command("a18", "DELETE inbox").last?.hasPrefix("a18 NO") == true)
            // RENAME onto an existing name.
            try await c.expectOK("a19", "CREATE one")
            try await c.expectOK("a20", "CREATE two")
            #expect(try await c.command("a21", "RENAME one two").last?.hasPrefix("a21 NO [ALREADYEXISTS]") == true)
            #expect(try await c.command("a22", "SELECT nosuch").last?.hasPrefix("a22 NO [NONEXISTENT]") == true)
            #expect(try await c.command("a23", "NOOP").last == "a23 OK NOOP completed")

            // A client that disconnects in the middle of a literal leaves nothing behind.
            let quitter = try await server.login()
            try await quitter.send("q1 APPEND INBOX {100+}\r\nSubject: half\r\n")
            await quitter.close()
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await bystander.command("z2", "STATUS INBOX (MESSAGES)").first == "* STATUS INBOX (MESSAGES 0)")
            #expect(try await bystander.command("z3", "NOOP") == ["z3 OK NOOP completed"])
        }
    }

    @Test func garbageBeforeLoginEndsTheConnectionAfterTheLimit() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            _ = try await c.readLine()
            for i in 1...IMAPLimits().maxBadCommands {
                try await c.sendLine("GET / HTTP/1.1 \(i)")
            }
            var lines: [String] = []
            while let line = try? await c.readLine(timeout: .seconds(2)) { lines.append(line) }
            #expect(lines.last == "* BYE Too many invalid commands.")
            #expect(await c.isClosed())
        }
    }

    @Test func wrongPasswordAndUnknownUserFailAlike() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            _ = try await c.readLine()
            var durations: [Duration] = []
            for (tag, user) in [("a1", "tim"), ("a2", "mhnosuchuser")] {
                let started = ContinuousClock.now
                #expect(
                    try await c.command(tag, "LOGIN \(user) wrong") == [
                        "\(tag) NO [AUTHENTICATIONFAILED] Authentication failed."
                    ])
                durations.append(ContinuousClock.now - started)
            }
            // pam_unix's delay is replaced by the server's own uniform one (at least one second for every failure).
            let allSlow = durations.allSatisfy { $0 >= .milliseconds(950) }
            #expect(allSlow, "\(durations)")
            // The connection is still usable and the right password works; the account is created at first login.
            try await c.expectOK("a3", "AUTHENTICATE PLAIN AHRpbQB0aW1teQ==")
            #expect(
                try await c.command("a4", "LIST \"\" INBOX") == [
                    "* LIST (\\HasNoChildren) \"/\" INBOX", "a4 OK LIST completed",
                ])
        }
    }
}
