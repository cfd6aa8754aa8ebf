import Foundation
import IMAPEngine
import Testing

/// Issue #9 §5: quota counts what an account really occupies. Content kept for expunged messages (24 hours, for
/// sessions not yet told) and content of deleted mailboxes counts too, and is released at once when the account
/// needs the room: an APPEND/EXPUNGE loop stays within the quota plus one message, and never locks the user out.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct QuotaOccupancyTests {
    static let quota = 10_000_000
    static let message = Array(("Subject: big\r\n\r\n" + String(repeating: "0123456789", count: 300_000)).utf8)

    /// Bytes of stored content of the account, counted from the table and as the trigger keeps it.
    static func occupied(_ database: TestStorage, login: String) async throws -> (Int64, Int64) {
        let row = try await database.queryStrings(
            """
            SELECT (SELECT coalesce(sum(size), 0) FROM contents c WHERE c.account_id = a.account_id) || ' '
                || a.stored_bytes
            FROM accounts a WHERE login = '\(login)'
            """
        ).first?.split(separator: " ").compactMap { Int64($0) }
        guard let row, row.count == 2 else { return (-1, -1) }
        return (row[0], row[1])
    }

    @Test
    func appendExpungeLoopsAndDeletedMailboxesStayWithinTheQuota() async throws {
        let running = try await LMTPTests.start()
        defer { running.stop() }
        let added = try await running.admin(
            "user", "add", "quota", "--password-stdin", "--quota", "\(Self.quota)", stdin: "pw\n")
        #expect(added.status == 0, "\(added.stderr)")
        let client = try await IMAPTestClient.loggedIn(
            port: running.imap, user: "quota", password: "pw", select: "INBOX")
        var peak: Int64 = 0
        for round in 0..<8 {
            let appended = try await client.append("a\(round)", to: "INBOX", Self.message)
            #expect(appended.last?.hasPrefix("a\(round) OK") == true, "round \(round): \(appended)")
            try await client.expectOK("d\(round)", "STORE 1:* +FLAGS.SILENT (\\Deleted)")
            try await client.expectOK("e\(round)", "EXPUNGE")
            let (stored, counted) = try await Self.occupied(running.database, login: "quota")
            #expect(stored == counted, "the trigger's count is the table's")
            peak = max(peak, stored)
        }
        // Content of a deleted mailbox is released too when the room is needed.
        try await client.expectOK("c", "CREATE Old")
        for n in 0..<3 { _ = try await client.append("o\(n)", to: "Old", Self.message) }
        try await client.expectOK("x", "DELETE Old")
        let after = try await client.append("n", to: "INBOX", Self.message)
        #expect(after.last?.hasPrefix("n OK") == true, "\(after)")
        let (stored, counted) = try await Self.occupied(running.database, login: "quota")
        #expect(stored == counted)
        peak = max(peak, stored)
        print("APPEND/EXPUNGE x8 and a deleted mailbox, 3 MB messages, quota 10 MB: at most \(peak) bytes stored")
        #expect(peak <= Int64(Self.quota + Self.message.count))
        // Past the quota for real, APPEND is refused.
        for n in 0..<3 { _ = try await client.append("f\(n)", to: "INBOX", Self.message) }
        let refused = try await client.append("g", to: "INBOX", Self.message)
        #expect(refused.last?.hasPrefix("g NO [OVERQUOTA]") == true, "\(refused)")
    }
}
