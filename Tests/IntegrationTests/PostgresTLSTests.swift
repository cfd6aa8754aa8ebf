import Foundation
import Glibc
import IMAPEngine
import PostgresNIO
@testable import StoragePostgres
import Testing

/// Issue #13 §2: TLS to PostgreSQL as libpq's URL parameters say (`sslmode`, `sslrootcert`), against a real server
/// with `ssl = on` and a certificate the test makes: `verify-full` connects (the tools, and the server's pools), the
/// server reports every MailHost connection as TLS, and a certificate that does not chain to the given root is
/// refused with a message that says so.
@Suite(
    .enabled(if: TestEnvironment.readyOnPostgres && PrivatePostgres.available, TestEnvironment.postgresSkipReason),
    .serialized)
struct PostgresTLSTests {
    /// A private server with TLS on, its certificate (CN and SAN localhost, 127.0.0.1) as its own root.
    static func start() async throws -> (PrivatePostgres, TestCertificate) {
        let certificate = try await TestCertificate.make(commonName: "localhost")
        chmod(certificate.directory.path, 0o755)
        chmod(certificate.certificate.path, 0o644)
        chmod(certificate.key.path, 0o600)
        let owner = try await runTool(
            URL(fileURLWithPath: "/usr/bin/chown"), ["postgres:postgres", certificate.key.path])
        guard owner.status == 0 else { throw TestFailure("chown failed: \(owner.stderr)") }
        let postgres = try await PrivatePostgres.start(settings: [
            "ssl=on", "ssl_cert_file=\(certificate.certificate.path)", "ssl_key_file=\(certificate.key.path)",
        ])
        return (postgres, certificate)
    }

    static func url(_ postgres: PrivatePostgres, host: String = "localhost", mode: String, root: URL?) -> String {
        "postgres://postgres@\(host):\(postgres.port)/mailhost?sslmode=\(mode)"
            + (root.map { "&sslrootcert=\($0.path)" } ?? "")
    }

    @Test func verifyFullConnectsAndAForeignCertificateIsRefused() async throws {
        let (postgres, certificate) = try await Self.start()
        let other = try await TestCertificate.make(commonName: "localhost")
        defer {
            Task { await postgres.remove() }
            certificate.remove()
            other.remove()
        }
        let url = Self.url(postgres, mode: "verify-full", root: certificate.certificate)

        // mailadmin over TLS.
        let status = try await runTool(ServerProcess.executable("mailadmin"), ["--storage", url, "db", "status"])
        #expect(status.status == 0 && status.stdout.contains("schema version"), "\(status)")
        #expect(
            try await runTool(
                ServerProcess.executable("mailadmin"), ["--storage", url, "user", "add", "tls", "--password-stdin"],
                stdin: "pw\n"
            ).status == 0)
        // One connection of our own: the server says it is TLS.
        let configuration = try PostgresStoreConfiguration(url: url)
        let encrypted = try await configuration.withConnection(logger: TestEnvironment.logger) { connection in
            try await connection.query(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: TestEnvironment.logger
            ).collect().first?.decode(Bool.self)
        }
        #expect(encrypted == true)

        // The server's pools over TLS: a session works, and every connection of application `mailhost` is TLS.
        let server = try ServerProcess(["serve", "--storage", url, "--auth", "db", "--imap", "127.0.0.1:0"])
        defer { server.terminate() }
        let port = try await server.waitUntilListening()
        let client = try await IMAPTestClient.loggedIn(port: port, user: "tls", password: "pw", select: "INBOX")
        _ = try await client.append("a", to: "INBOX", Array("Subject: over TLS\r\n\r\nhi\r\n".utf8))
        #expect(try await client.command("f", "FETCH 1 (FLAGS)").last == "f OK FETCH completed")
        let counts = try await configuration.withConnection(logger: TestEnvironment.logger) { connection in
            try await connection.query(
                """
                SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'mailhost'
                """, logger: TestEnvironment.logger
            ).collect().first?.decode((Int64, Int64).self)
        }
        #expect((counts?.0 ?? 0) > 0 && counts?.1 == 0, "\(String(describing: counts))")

        // A pool's guard sits on the plain side of TLS: it counts every statement sent and answered, which a write
        // waits for (on the encrypted side it would see neither).
        let pools = LoopPools(
            connection: configuration.poolConnectionConfiguration, maximumConnections: 1,
            group: MultiThreadedEventLoopGroup.singleton, logger: TestEnvironment.logger)
        let running = Task { await pools.run() }
        do {
            try await Self.countsOverTLS(pools.pools[0])
        } catch {
            running.cancel()
            await running.value
            throw error
        }
        running.cancel()
        await running.value

        // A root the server's certificate does not chain to: refused, and said so.
        let foreign = Self.url(postgres, mode: "verify-full", root: other.certificate)
        let refused = try await runTool(ServerProcess.executable("mailadmin"), ["--storage", foreign, "db", "status"])
        #expect(refused.status != 0, "\(refused)")
        #expect(
            refused.stderr.contains("cannot connect to the database") && refused.stderr.contains("TLS"),
            "\(refused.stderr)")
        let check = try await runTool(
            ServerProcess.executable("mailhost"),
            ["config", "check", "--storage", foreign, "--auth", "db", "--connect"])
        #expect(check.status == 1 && check.stderr.contains("cannot connect"), "\(check)")
    }

    /// Three statements on a pool connection over TLS: exactly three Syncs sent and answered, as the guard counts them.
    static func countsOverTLS(_ pool: LoopPool) async throws {
        try await pool.withConnection { connection, watch in
            let watch = try #require(watch)
            let before = watch.counts
            for _ in 0..<3 {
                _ = try await connection.query("SELECT generate_series(1, 5000)", logger: TestEnvironment.logger)
                    .collect()
                try await watch.allAnswered()
            }
            let after = watch.counts
            #expect(after.sent == before.sent + 3 && after.received == after.sent, "\(before) → \(after)")
        }
    }

    @Test func modesThatCannotBeKeptAreRefusedInWords() async throws {
        let (postgres, certificate) = try await Self.start()
        defer {
            Task { await postgres.remove() }
            certificate.remove()
        }
        // verify-full needs the host's name: an IP address cannot be checked against the certificate here.
        let byAddress = Self.url(postgres, host: "127.0.0.1", mode: "verify-full", root: certificate.certificate)
        let address = try await runTool(
            ServerProcess.executable("mailadmin"), ["--storage", byAddress, "db", "status"])
        #expect(address.status != 0 && address.stderr.contains("name the host as the certificate does"), "\(address)")
        let unknown = try await runTool(
            ServerProcess.executable("mailadmin"),
            ["--storage", Self.url(postgres, mode: "sometimes", root: nil), "db", "status"])
        #expect(unknown.status != 0 && unknown.stderr.contains("sslmode \"sometimes\""), "\(unknown)")
        // require without a root: encrypted, no certificate checked (libpq's meaning).
        let required = try await runTool(
            ServerProcess.executable("mailadmin"),
            ["--storage", Self.url(postgres, host: "127.0.0.1", mode: "require", root: nil), "db", "status"])
        #expect(required.status == 0, "\(required)")
    }
}
