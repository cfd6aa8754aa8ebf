import Foundation
import IMAPEngine
import Testing

/// The embedded store as an administrator runs it (issue #12): `mailhost serve` on a SQLite file, with other
/// processes (`mailhost deliver`, `mailadmin`) writing to the same file. Their changes reach the server's sessions
/// through the file's change-feed table; a second server on the file is refused. Needs no PostgreSQL or PAM.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SQLiteServingTests {
    @Test func otherProcessesChangesReachTheSessionsAndASecondServerIsRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-serving-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The data directory does not exist yet: the server makes it.
        let path = directory.appendingPathComponent("data/mail.db").path
        let server = try ServerProcess([
            "serve", "--storage", "sqlite:" + path, "--auth", "db", "--imap", "127.0.0.1:0",
        ])
        defer { server.terminate() }
        let port = try await server.waitUntilListening()
        let added = try await runTool(
            ServerProcess.executable("mailadmin"),
            ["--storage", "sqlite:" + path, "user", "add", "ann", "--password-stdin"],
            stdin: "ann's secret\n")
        #expect(added.status == 0, "\(added.stderr)")

        let idler = try await IMAPTestClient.loggedIn(
            port: port, user: "ann", password: "ann's secret", select: "INBOX")
        try await idler.sendLine("i IDLE")
        #expect(try await idler.readLine() == "+ idling")
        // Delivery by another process: found by the server's poll of the feed table.
        let delivered = try await runTool(
            ServerProcess.executable("mailhost"), ["deliver", "--storage", "sqlite:" + path, "--to", "ann"],
            stdin: testMessage(subject: "piped"))
        #expect(delivered.status == 0, "\(delivered.stderr)")
        var lines: [String] = []
        while !lines.contains("* 1 EXISTS") { lines.append(try await idler.readLine(timeout: .seconds(30))) }
        // Disabling by mailadmin closes the session.
        let disabled = try await runTool(
            ServerProcess.executable("mailadmin"), ["--storage", "sqlite:" + path, "user", "disable", "ann"])
        #expect(disabled.status == 0, "\(disabled.stderr)")
        while !(lines.last?.hasPrefix("* BYE") ?? false) {
            lines.append(try await idler.readLine(timeout: .seconds(30)))
        }

        let second = try ServerProcess(["serve", "--storage", "sqlite:" + path, "--imap", "127.0.0.1:0"])
        #expect(try await second.waitForExit() != 0)
        #expect(second.log.contains("already served by another mailhost (pid"), "\(second.log)")
    }
}
