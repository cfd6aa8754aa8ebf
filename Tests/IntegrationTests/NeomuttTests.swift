import Foundation
import Testing

/// neomutt and tmux are installed (always under CI, where their absence fails the test instead of skipping it).
let neomuttAvailable =
    TestEnvironment.isCI
    || (FileManager.default.isExecutableFile(atPath: "/usr/bin/neomutt")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"))

/// Issue #13: stock neomutt (Debian's, its system configuration, no user configuration) reads an INBOX over STARTTLS
/// from a server set up as `scripts/demo` sets it up (a self-signed certificate for localhost, a store account), after
/// the user accepts the certificate once. Driven in tmux, as a person would: each prompt is waited for on the screen.
@Suite(.enabled(if: TestEnvironment.ready && neomuttAvailable, "needs neomutt and tmux (Debian packages)"))
struct NeomuttTests {
    @Test func neomuttReadsTheInboxOverSTARTTLS() async throws {
        let database = try await TestStorage.create()
        let certificate = try await TestCertificate.make(commonName: "localhost")
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("mh-neomutt-\(UUID().uuidString)")
        // ~/Mail exists, so neomutt does not ask to create it.
        try FileManager.default.createDirectory(
            at: home.appendingPathComponent("Mail"), withIntermediateDirectories: true)
        let socket = "mh-neomutt-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            Task {
                _ = try? await runTool(
                    URL(fileURLWithPath: "/usr/bin/env"),
                    [
                        "python3", "-c",
                        "import subprocess, sys; subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL)",
                        "/usr/bin/tmux", "-L", socket, "kill-server",
                    ])
                await database.drop()
            }
            certificate.remove()
            try? FileManager.default.removeItem(at: home)
        }
        #expect(
            try await mailadmin(database, "user", "add", "demo", "--password-stdin", stdin: "demo pass 42\n").status
                == 0)
        let mbox = home.appendingPathComponent("one.mbox")
        try Data(
            """
            From alice@example.org Mon Nov 30 10:00:00 2026
            From: Alice <alice@example.org>
            To: demo@localhost
            Subject: Hello from the MailHost demo
            Date: Mon, 30 Nov 2026 10:00:00 +0000

            It works.

            """.utf8
        ).write(to: mbox)
        #expect(try await mailadmin(database, "import", "mbox", "demo", mbox.path).status == 0)
        let server = try ServerProcess([
            "serve", "--storage", database.setting, "--auth", "db", "--imap", "127.0.0.1:0", "--tls-cert",
            certificate.certificate.path, "--tls-key", certificate.key.path, "--log-level", "debug",
        ])
        defer { server.terminate() }
        let port = try await server.waitUntilListening()

        // Through Python's subprocess, which closes every inherited descriptor: the tmux server that the first call
        // leaves running would otherwise hold one of Foundation's open, and that call would never be seen to end.
        func tmux(_ arguments: [String]) async throws -> CommandResult {
            try await runTool(
                URL(fileURLWithPath: "/usr/bin/env"),
                [
                    "python3", "-c",
                    "import subprocess, sys; r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, "
                        + "capture_output=True, text=True); print(r.stdout, end=''); "
                        + "print(r.stderr, end='', file=sys.stderr); sys.exit(r.returncode)",
                    "/usr/bin/tmux", "-L", socket,
                ] + arguments, environment: ["HOME": home.path, "TERM": "xterm"])
        }
        func screen() async throws -> String { try await tmux(["capture-pane", "-t", "neo", "-p"]).stdout }
        func waitFor(_ text: String) async throws {
            var shown = ""
            do {
                try await waitUntil("neomutt shows \(text)") {
                    shown = try await screen()
                    return shown.contains(text)
                }
            } catch {
                throw TestFailure("\(error): the screen was:\n\(shown)\nserver: \(server.log)")
            }
        }
        let started = try await tmux([
            "new-session", "-d", "-s", "neo", "-x", "160", "-y", "40",
            "env HOME=\(home.path) TERM=xterm neomutt -F /dev/null -f imap://demo@127.0.0.1:\(port)/INBOX",
        ])
        #expect(started.status == 0, "\(started.stderr)")
        try await waitFor("(r)eject, accept (o)nce")
        _ = try await tmux(["send-keys", "-t", "neo", "o"])
        try await waitFor("Password for demo@127.0.0.1")
        _ = try await tmux(["send-keys", "-t", "neo", "demo pass 42", "Enter"])
        try await waitFor("Hello from the MailHost demo")
        _ = try await tmux(["send-keys", "-t", "neo", "Enter"])
        try await waitFor("It works.")
        // The login came after STARTTLS on the same connection.
        let log = server.log
        var ordered = false
        if let tls = log.range(of: "msg=\"STARTTLS done\""), let login = log.range(of: "msg=login") {
            ordered = tls.lowerBound < login.lowerBound
        }
        #expect(ordered, "\(log)")
        _ = try await tmux(["send-keys", "-t", "neo", "q", "q"])
        // The tmux server would outlive the test (the deferred one is only a fallback for a failure above).
        _ = try await tmux(["kill-server"])
    }
}
