import Foundation
import IMAPEngine
import Testing

/// Issue #10 §3: COMPRESS=DEFLATE (RFC 4978) over TCP: a whole session compressed, Python's zlib as an independent
/// peer inside TLS, bad compressed data, and a compressed "bomb" that must not be inflated ahead of demand.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct CompressTests {
    /// Every kind of command and response (literals both ways, a 2 MB message, IDLE pushes, errors) over one
    /// compressed connection, checked byte for byte.
    @Test func wholeSessionOverDeflate() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            #expect(try await c.expectOK("c1", "CAPABILITY").first?.contains(" COMPRESS=DEFLATE") == true)
            #expect(try await c.startCompression(tag: "z1") == "z1 OK DEFLATE active")
            // RFC 4978 §3: not offered again once active.
            let capability = try await c.expectOK("c2", "CAPABILITY").first ?? ""
            #expect(capability.hasPrefix("* CAPABILITY IMAP4rev1") && !capability.contains("COMPRESS"))

            let selected = try await c.expectOK("s", "SELECT INBOX")
            #expect(selected.contains("* 0 EXISTS"))
            // Small messages with synchronizing literals (the server's "+" goes out compressed), then one large
            // message that spans many inflated pieces both ways.
            for n in 1...5 {
                let (continuation, lines) = try await c.commandWithLiteral(
                    "a\(n)", "APPEND INBOX (\\Flagged) ", literal: Array(testMessage(subject: "small \(n)").utf8))
                #expect(continuation.hasPrefix("+ "))
                #expect(lines.last?.hasPrefix("a\(n) OK [APPENDUID") == true, "\(lines)")
            }
            var large = Array("From: Big <big@example.com>\r\nSubject: large\r\n\r\n".utf8)
            var generator = SystemRandomNumberGenerator()
            while large.count < 2_000_000 {
                // Text with some randomness, so that it neither compresses to nothing nor fails to compress.
                let word = (0..<(4 + Int(generator.next() % 8))).map { _ in
                    UInt8(ascii: "a") + UInt8(generator.next() % 26)
                }
                large += word + (generator.next() % 12 == 0 ? [13, 10] : [32])
            }
            large += [13, 10]
            let appended = try await c.append("a6", to: "INBOX", large)
            #expect(appended.last?.hasPrefix("a6 OK [APPENDUID") == true, "\(appended)")

            let fetched = try await c.expectOKKeepingLiterals("f1", "FETCH 6 (RFC822.SIZE BODY.PEEK[])")
            let expectedPrefix = "* 6 FETCH (RFC822.SIZE \(large.count) BODY[] {\(large.count)}\r\n"
            #expect(fetched.count == 1 && fetched[0] == expectedPrefix + String(decoding: large, as: UTF8.self) + ")")
            let envelopes = try await c.expectOK("f2", "FETCH 1:5 (FLAGS ENVELOPE)")
            #expect(envelopes.count == 5 && envelopes.allSatisfy { $0.contains("\\Flagged") }, "\(envelopes)")

            #expect(try await c.expectOK("t", "STORE 2 +FLAGS.SILENT (\\Deleted)").isEmpty)
            #expect(try await c.expectOK("q", "SEARCH DELETED") == ["* SEARCH 2"])
            #expect(try await c.expectOK("o", "SORT (REVERSE SUBJECT) UTF-8 ALL") == ["* SORT 5 4 3 2 1 6"])
            #expect(try await c.expectOK("e", "EXPUNGE") == ["* 2 EXPUNGE"])

            // Pushed responses in IDLE arrive compressed as well.
            try await c.sendLine("i IDLE")
            #expect(try await c.readLine().hasPrefix("+ "))
            let other = try await server.login()
            _ = try await other.append("x", to: "INBOX", Array(testMessage(subject: "while idle").utf8))
            await other.close()
            #expect(try await c.readLine() == "* 6 EXISTS")
            try await c.sendLine("DONE")
            #expect(try await c.readResponse(tag: "i").last?.hasPrefix("i OK") == true)

            // Errors: a bad command, a second COMPRESS (RFC 4978 §3), a too-long line; the stream survives them all.
            #expect(try await c.command("b", "FROBNICATE").last?.hasPrefix("b BAD") == true)
            #expect(
                try await c.command("z2", "COMPRESS DEFLATE").last
                    == "z2 NO [COMPRESSIONACTIVE] DEFLATE is already active")
            try await c.sendLine("l NOOP " + String(repeating: "x", count: 70_000))
            #expect(try await c.readLine().contains("[TOOBIG]"))
            #expect(try await c.expectOK("n", "NOOP").isEmpty)

            let bye = try await c.command("g", "LOGOUT")
            #expect(bye == ["* BYE Logging out", "g OK LOGOUT completed"])
            #expect(await c.isClosed())
        }
    }

    /// COMPRESS in the wrong state or with a mechanism other than DEFLATE is refused, and input goes on uncompressed.
    @Test func refusals() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            let greeting = try await c.readLine()
            #expect(!greeting.contains("COMPRESS"))
            #expect(try await c.command("a", "COMPRESS DEFLATE").last?.hasPrefix("a BAD") == true)
            try await c.expectOK("l", "LOGIN tim timmy")
            #expect(try await c.command("b", "COMPRESS GZIP").last == "b BAD Unknown compression mechanism")
            #expect(try await c.command("c", "COMPRESS").last?.hasPrefix("c BAD") == true)
            #expect(try await c.expectOK("n", "NOOP").isEmpty)
            #expect(try await c.startCompression() == "z OK DEFLATE active")
            #expect(try await c.expectOK("n2", "NOOP").isEmpty)
            await c.close()
        }
    }

    /// Bytes that are not a DEFLATE stream end that connection (nothing is executed), and only that one.
    @Test func invalidCompressedDataClosesTheConnection() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            try await c.sendLine("z COMPRESS DEFLATE")
            #expect(try await c.readLine() == "z OK DEFLATE active")
            // 0xFF starts a block of reserved type 3: invalid at once.
            try await c.send([0xFF, 0xFF, 0xFF, 0xFF] + Array("a LOGOUT\r\n".utf8))
            #expect(await c.isClosed(within: .seconds(60)))
            let other = try await server.login()
            #expect(try await other.expectOK("n", "NOOP").isEmpty)
            await other.close()
        }
    }

    /// Python's zlib (an independent DEFLATE implementation, 32 KiB window, as most clients) inside TLS: RFC 4978
    /// §4 has compression under TLS, so STARTTLS first, then LOGIN, then COMPRESS.
    @Test func pythonZlibInsideTLS()
        async throws
    {
        let running = try await TLSTests.start()
        defer { running.stop() }
        let run = try await python(
            TLSTests.reader + #"""
                import zlib
                raw = socket.create_connection(("127.0.0.1", port))
                out, buf = lines_until(raw, "*")
                raw.sendall(b"a STARTTLS\r\n")
                out, buf = lines_until(raw, "a", buf)
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(b"b LOGIN tim timmy\r\n")
                out, buf = lines_until(s, "b")
                print(out[-1][:4], "COMPRESS=DEFLATE" in out[-1])
                s.sendall(b"c COMPRESS DEFLATE\r\n")
                out, buf = lines_until(s, "c")
                print(out[-1])
                comp = zlib.compressobj(9, zlib.DEFLATED, -15)
                decomp = zlib.decompressobj(-15)
                def send(data):
                    s.sendall(comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH))
                def lines(tag):
                    text = b""
                    while not any(l.startswith(tag.encode() + b" ") for l in text.split(b"\r\n")):
                        data = s.recv(65536)
                        if not data:
                            break
                        text += decomp.decompress(data)
                    return [l.decode() for l in text.split(b"\r\n") if l]
                message = b"Subject: zlib\r\n\r\n" + b"0123456789" * 50000 + b"\r\n"
                send(b"d APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
                print(lines("d")[-1].startswith("d OK [APPENDUID "))
                send(b"e SELECT INBOX\r\nf UID FETCH 1 (BODY.PEEK[TEXT])\r\n")
                got = lines("f")
                print(got[-1][:4], sum(len(l) for l in got if l.startswith("0123")))
                send(b"g LOGOUT\r\n")
                print(lines("g")[-1])
                """#, environment: ["PORT": "\(running.imap)", "CA": running.certificate.certificate.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            run.stdout.split(separator: "\n").map(String.init) == [
                "b OK True", "c OK DEFLATE active", "True", "f OK 500000",
                "g OK LOGOUT completed",
            ], "\(run.stdout)")
    }

    /// A line of 256 MiB compressed to about 256 KiB: the server inflates it a piece at a time as the framing
    /// decoder asks for input, so it never holds more than a few pieces of it (inflating a read's worth at once would
    /// hold about 64 MiB per read).
    @Test func compressedBombIsNotInflatedAheadOfDemand() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let (server, port) = try await MemoryBoundsTests().start(database)
        defer { server.terminate() }
        let c = try await IMAPTestClient.loggedIn(port: port)
        #expect(try await c.startCompression() == "z OK DEFLATE active")
        #expect(try await c.expectOK("n1", "NOOP").isEmpty)
        // The client's handler compresses the 256 MiB as it goes out, 1 MiB at a time (about 1 KiB each).
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        let growth = try await MemoryBoundsTests.peakGrowth(of: server) {
            for _ in 0..<256 { try await c.send(chunk) }
            try await c.sendLine("")
            try await c.sendLine("n2 NOOP")
            let lines = try await c.readResponse(tag: "n2", timeout: .seconds(300))
            #expect(lines.first?.contains("[TOOBIG]") == true && lines.last == "n2 OK NOOP completed", "\(lines)")
        }
        print("COMPRESS bomb: a 256 MiB line compressed; server grew \(growth / MemoryBoundsTests.mebibyte) MiB")
        #expect(growth < 32 * MemoryBoundsTests.mebibyte)
        await c.close()
    }
}
