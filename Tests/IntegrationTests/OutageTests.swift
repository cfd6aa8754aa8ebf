import Foundation
import IMAPEngine
import StoragePostgres
import Testing

/// The database going away and coming back (issue #2 §6): commands answer `NO [UNAVAILABLE]` within the store
/// timeout instead of hanging, other connections are not affected, and the server recovers by itself.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct OutageTests {
    @Test func unavailableWhileTheDatabaseIsAwayAndRecoveredAfter() async throws {
        let server = try await TestServer.start(operationTimeout: .seconds(2))
        defer { Task { await server.stopAndDrop() } }
        try await server.seed(messages: [testMessage(subject: "before")])
        let c = try await server.login()
        try await c.expectOK("a1", "SELECT INBOX")

        try await TestDatabase.setAvailable(false, server.configuration)
        let started = ContinuousClock.now
        let failed = try await c.command("a2", "FETCH 1 (FLAGS)")
        #expect(failed.last?.hasPrefix("a2 NO [UNAVAILABLE]") == true)
        #expect(ContinuousClock.now - started < .seconds(8))
        #expect(try await c.command("a3", "STATUS INBOX (MESSAGES)").last?.hasPrefix("a3 NO [UNAVAILABLE]") == true)
        #expect(try await c.command("a4", "NOOP").last?.hasPrefix("a4 NO [UNAVAILABLE]") == true)
        // A command that needs no database still works.
        #expect(try await c.command("a5", "CAPABILITY").last == "a5 OK CAPABILITY completed")

        try await TestDatabase.setAvailable(true, server.configuration)
        var recovered = false
        for attempt in 0..<40 where !recovered {
            let lines = try await c.command("r\(attempt)", "FETCH 1 (FLAGS)")
            recovered = lines.last?.hasPrefix("r\(attempt) OK") == true
            if !recovered { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(recovered)
        // The change feed came back too: another session's append reaches an IDLE client.
        try await c.sendLine("a6 IDLE")
        #expect(try await c.readLine() == "+ idling")
        try await server.seed(messages: [testMessage(subject: "after")])
        var lines: [String] = []
        while !lines.contains("* 2 EXISTS") { lines.append(try await c.readLine(timeout: .seconds(5))) }
        try await c.sendLine("DONE")
        #expect(try await c.readResponse(tag: "a6").last == "a6 OK IDLE terminated")
    }
}
