import Foundation
import IMAPEngine
import Testing

/// Issue #9 §3: what a client can make the server hold is bounded, whatever it sends. Each attack runs against the
/// built server; its resident memory is sampled while the attack runs and the growth is checked against a bound far
/// below what the attack cost before (the numbers are printed for the record).
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct MemoryBoundsTests {
    /// Resident memory of a process in bytes (VmRSS).
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }

    /// Runs `attack` while sampling the server's memory every 5 ms; returns the peak growth over the start.
    static func peakGrowth(of server: ServerProcess, during attack: () async throws -> Void) async throws -> Int {
        let pid = server.process.processIdentifier
        let before = residentBytes(pid)
        let sampler = Task {
            var peak = 0
            while !Task.isCancelled {
                peak = max(peak, residentBytes(pid))
                try? await Task.sleep(for: .milliseconds(5))
            }
            return peak
        }
        do {
            try await attack()
        } catch {
            sampler.cancel()
            throw error
        }
        sampler.cancel()
        let peak = max(await sampler.value, residentBytes(pid))
        return max(0, peak - before)
    }

    /// `mailhost serve` on `database`; `auth` as `--auth` takes it (`pam` means store accounts where PAM is absent).
    func start(_ database: TestStorage, auth: String = "pam") async throws -> (ServerProcess, Int) {
        let server = try ServerProcess(
            ["serve", "--storage", database.setting, "--imap", "127.0.0.1:0"] + database.authArguments(auth))
        return (server, try await server.waitUntilListening())
    }

    static let mebibyte = 1 << 20

    /// Before login, eight connections each send a 63 MiB APPEND literal (it cost 505 MiB before the pre-login limits).
    @Test
    func largeLiteralsBeforeLoginAreNotHeld() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let (server, port) = try await start(database)
        defer { server.terminate() }
        let size = 63 * Self.mebibyte
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: Self.mebibyte)
        let growth = try await Self.peakGrowth(of: server) {
            try await withThrowingTaskGroup(of: String.self) { group in
                for n in 0..<8 {
                    group.addTask {
                        let client = try await IMAPTestClient.connect(port: port)
                        _ = try await client.readLine()
                        try await client.sendLine("a\(n) APPEND INBOX {\(size)+}")
                        for _ in 0..<(size / chunk.count) { try await client.send(chunk) }
                        try await client.sendLine("")
                        let answer = try await client.readResponse(tag: "a\(n)", timeout: .seconds(120)).last ?? ""
                        await client.close()
                        return answer
                    }
                }
                for try await answer in group { #expect(answer.contains("[TOOBIG]"), "\(answer)") }
            }
        }
        print("pre-login 8 x 63 MiB APPEND literals: server grew \(growth / Self.mebibyte) MiB")
        #expect(growth < 64 * Self.mebibyte)
    }

    /// One FETCH of many whole-message sections over five 1 MB messages (100 of them cost 670 MiB when a batch's
    /// sections were loaded before writing; 30 keep the test short).
    @Test
    func manySectionsOfLargeMessagesAreStreamed() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let seeding = try await TestServer.start(on: database)
        let line = String(repeating: "0123456789", count: 9) + "abcdefgh\r\n"  // 100 bytes
        let body = String(repeating: line, count: 10_000)  // 1,000,000 bytes: just under the chunk size
        try await seeding.seed(messages: (1...5).map { testMessage(subject: "m\($0)", body: body) })
        await seeding.stop()
        let (server, port) = try await start(database)
        defer { server.terminate() }
        let client = try await IMAPTestClient.loggedIn(port: port, select: "INBOX")
        let items = Array(repeating: "BODY.PEEK[]", count: 30).joined(separator: " ")
        var received = 0
        let growth = try await Self.peakGrowth(of: server) {
            try await client.sendLine("f FETCH 1:5 (\(items))")
            let (bytes, tagged) = try await client.drain(untilTagged: "f")
            received = bytes
            #expect(tagged.hasPrefix("f OK"), "\(tagged)")
        }
        print(
            "FETCH 1:5 with 30 BODY.PEEK[] of 1 MB: \(received / Self.mebibyte) MiB sent, server grew \(growth / Self.mebibyte) MiB"
        )
        #expect(received > 150_000_000)
        #expect(growth < 64 * Self.mebibyte)
        // More items than the cap is refused before anything is read.
        let tooMany = Array(repeating: "FLAGS", count: 129).joined(separator: " ")
        #expect(try await client.command("g", "FETCH 1 (\(tooMany))").last?.hasPrefix("g BAD [LIMIT]") == true)
    }

    /// A sequence set that names the whole mailbox thousands of times (`1:*,1:*,…`) costs one pass, not one per
    /// range.
    @Test
    func repeatedRangesAreNormalisedBeforeExpansion() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let seeding = try await TestServer.start(on: database)
        try await seeding.seed(messages: [testMessage(subject: "one")])
        let account = try await seeding.account("tim")
        await seeding.stop()
        let count = 20_000
        // SQL both stores run: copies of the one message at UIDs 2...count.
        try await database.executeSQL(
            """
            WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < \(count - 1))
            INSERT INTO messages (account_id, mailbox_id, uid, content_id, flags, keywords, modseq, internal_date,
                internal_zone, size)
            SELECT account_id, mailbox_id, uid + g.n, content_id, flags, keywords, modseq, internal_date,
                internal_zone, size
            FROM messages, g
            WHERE account_id = \(account.rawValue) AND uid = 1
            """)
        try await database.executeSQL(
            "UPDATE mailboxes SET uidnext = \(count + 1) WHERE account_id = \(account.rawValue)")
        let (server, port) = try await start(database)
        defer { server.terminate() }
        let client = try await IMAPTestClient.loggedIn(port: port, select: "INBOX")
        // 16,000 ranges: 320 million numbers if each were expanded.
        let set = Array(repeating: "1:*", count: 16_000).joined(separator: ",")
        var fetched = 0
        let growth = try await Self.peakGrowth(of: server) {
            try await client.sendLine("f FETCH \(set) (UID)")
            let (bytes, tagged) = try await client.drain(untilTagged: "f")
            fetched = bytes
            #expect(tagged.hasPrefix("f OK"), "\(tagged)")
            let search = try await client.command("s", "SEARCH \(set)")
            #expect(search.last?.hasPrefix("s OK") == true)
            #expect(search.first?.split(separator: " ").count == count + 2, "one number per message")
        }
        print("FETCH and SEARCH of 16,000 x 1:* over \(count) messages: server grew \(growth / Self.mebibyte) MiB")
        #expect(fetched > count * 20)
        #expect(growth < 64 * Self.mebibyte)
    }
}

/// Issue #9 §3: memory for messages being uploaded is one budget for the process (`--max-upload-memory`), IMAP and
/// LMTP together: an upload is reserved as it arrives, and past the budget it is refused with a temporary error
/// instead of taking more memory. The test waits on the `mailhost_upload_memory_bytes` gauge to know the server holds
/// what was sent.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct UploadBudgetTests {
    static let budget = 16 << 20
    /// 6 x 2.5 MB fits the budget (the server refuses a configuration where one largest message would not).
    static let options = [
        "--max-upload-memory", "\(budget)", "--max-append-size", "2500000", "--metrics", "127.0.0.1:0",
    ]
    static let message = Array(("Subject: two megabytes\r\n\r\n" + String(repeating: "y", count: 2_000_000)).utf8)
    static let sentFirst = 1_500_000
    /// What the server reserves at least once it has read `sentFirst` bytes: LMTP may keep up to 64 KiB of a line
    /// unread until more arrives. Either way the 12 MB of a second message do not fit beside it.
    static let heldBySentFirst = Double(MessageBudget.cost(sentFirst - 64 * 1024))

    static func reserved(_ running: LMTPTests.Running) async throws -> Double {
        let port = try await running.server.waitUntilListening("metrics")
        return try await scrapeMetrics(port: port)["mailhost_upload_memory_bytes"] ?? 0
    }

    @Test
    func appendsPastTheBudgetAreRefusedUntilMemoryIsFree() async throws {
        let running = try await LMTPTests.start(Self.options)
        defer { running.stop() }
        let message = Self.message
        let first = try await IMAPTestClient.loggedIn(port: running.imap)
        let second = try await IMAPTestClient.loggedIn(port: running.imap)
        // The first APPEND's literal is accepted; what of it has arrived holds its share (6 x 1.5 MB of 16 MiB).
        try await first.sendLine("a APPEND INBOX {\(message.count)}")
        #expect(try await first.readLine().hasPrefix("+"))
        try await first.send(Array(message[..<Self.sentFirst]))
        try await waitUntil("the first upload holds its memory") {
            try await Self.reserved(running) >= Self.heldBySentFirst
        }
        // A second one of 2 MB would need 12 MB more: refused before it is sent.
        let refused = try await second.command("b", "APPEND INBOX {\(message.count)}")
        #expect(refused.last?.hasPrefix("b NO [LIMIT]") == true, "\(refused)")
        try await first.send(Array(message[Self.sentFirst...]) + [13, 10])
        #expect(try await first.readResponse(tag: "a").last?.hasPrefix("a OK [APPENDUID") == true)
        // Once stored, the memory is free again.
        try await waitUntil("the memory is given back") { try await Self.reserved(running) == 0 }
        #expect(try await second.append("c", to: "INBOX", message).last?.hasPrefix("c OK") == true)
        // A message past max-append-size is too large, whatever the budget holds.
        let large = Array(("Subject: three\r\n\r\n" + String(repeating: "z", count: 3_000_000)).utf8)
        #expect(try await second.append("d", to: "INBOX", large).last?.hasPrefix("d NO [TOOBIG]") == true)
        #expect(try await second.command("e", "NOOP").last == "e OK NOOP completed")
        #expect(try await second.command("f", "STATUS INBOX (MESSAGES)").first == "* STATUS INBOX (MESSAGES 2)")
    }

    @Test
    func lmtpMessagesPastTheBudgetAreDeferred() async throws {
        let running = try await LMTPTests.start(Self.options)
        defer { running.stop() }
        func transaction(_ client: IMAPTestClient) async throws {
            _ = try await client.readLine()
            try await client.send("LHLO mx\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<tim@example.com>\r\nDATA\r\n")
            while try await !client.readLine().hasPrefix("354") {}  // LHLO, MAIL and RCPT answered, then DATA
        }
        let first = try await IMAPTestClient.connect(port: running.lmtp)
        let second = try await IMAPTestClient.connect(port: running.lmtp)
        try await transaction(first)
        try await transaction(second)
        // The first message is half sent and holds its memory; the second, sent whole, does not fit beside it.
        try await first.send(Array(Self.message[..<Self.sentFirst]))
        try await waitUntil("the first delivery holds its memory") {
            try await Self.reserved(running) >= Self.heldBySentFirst
        }
        try await second.send(Self.message + Array("\r\n.\r\n".utf8))
        let deferred = try await second.readLine()
        #expect(deferred.hasPrefix("452 4.3.1"), "\(deferred)")
        try await first.send(Array(Self.message[Self.sentFirst...]) + Array("\r\n.\r\n".utf8))
        #expect(try await first.readLine().hasPrefix("250 "))
        // The MTA tries again later: then it fits.
        try await waitUntil("the memory is given back") { try await Self.reserved(running) == 0 }
        try await second.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<tim@example.com>\r\nDATA\r\n")
        while try await !second.readLine().hasPrefix("354") {}
        try await second.send(Self.message + Array("\r\n.\r\n".utf8))
        #expect(try await second.readLine().hasPrefix("250 "))
    }
}

extension IMAPTestClient {
    /// Reads and discards everything up to the tagged line of `tag`; returns the byte count and the tagged line.
    /// For answers too large to keep in the test's memory.
    func drain(untilTagged tag: String, timeout: Duration = .seconds(300)) async throws -> (Int, String) {
        let deadline = ContinuousClock.now + timeout
        let marker = Array("\r\n\(tag) ".utf8)
        var total = 0
        var tail: [UInt8] = []
        while ContinuousClock.now < deadline {
            let bytes = takeAll()
            if bytes.isEmpty {
                try await Task.sleep(for: .milliseconds(2))
                continue
            }
            total += bytes.count
            let window = tail + bytes
            if let start = window.firstRange(of: marker) {
                var rest = Array(window[start.upperBound...])
                while rest.last != 0x0A { rest += try await readBytes(1) }
                return (total, tag + " " + String(decoding: rest, as: UTF8.self).trimmingCharacters(in: .newlines))
            }
            tail = Array(window.suffix(marker.count))
        }
        throw TestFailure("timed out draining the answer to \(tag)")
    }
}
