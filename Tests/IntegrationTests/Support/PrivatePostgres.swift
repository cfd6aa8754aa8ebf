import Foundation
import Glibc
import PostgresNIO
import StoragePostgres
import Synchronization

/// A PostgreSQL server of a test's own (initdb in a temporary directory, run as the `postgres` system user), for
/// tests that stop and start the whole server, or kill it, without disturbing the tests that share the main one.
/// Needs root (as `scripts/test` and `.ci/run` are) and Debian's PostgreSQL server programs.
final class PrivatePostgres: Sendable {
    let directory: URL
    let port: Int
    let bin: URL
    /// Server settings beyond the defaults (`name=value`), kept across restarts.
    let settings: [String]

    static var available: Bool {
        getuid() == 0 && binDirectory != nil
    }

    static var binDirectory: URL? {
        if let dir = ProcessInfo.processInfo.environment["PGTEST_BIN"] { return URL(fileURLWithPath: dir) }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let latest = versions.compactMap(Int.init).max() else { return nil }
        return URL(fileURLWithPath: "/usr/lib/postgresql/\(latest)/bin")
    }

    /// A migrated database `mailhost` on a new server.
    var configuration: PostgresStoreConfiguration {
        PostgresStoreConfiguration(
            endpoint: .tcp(host: "127.0.0.1", port: port), username: "postgres", password: nil, database: "mailhost")
    }

    private init(directory: URL, port: Int, bin: URL, settings: [String]) {
        self.directory = directory
        self.port = port
        self.bin = bin
        self.settings = settings
    }

    /// Creates and starts a server with durable settings (fsync on: crash tests rely on it) and a database
    /// `mailhost` with MailHost's schema. `settings` are extra server settings, `name=value`.
    static func start(settings: [String] = []) async throws -> PrivatePostgres {
        guard let bin = binDirectory else { throw TestFailure("PostgreSQL server programs not found") }
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mh-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        Self.leftovers.register(directory.path)
        chmod(directory.path, 0o755)
        _ = try await runTool(URL(fileURLWithPath: "/usr/bin/chown"), ["postgres:postgres", directory.path])
        let initdb = try await asPostgres(
            bin.appendingPathComponent("initdb").path,
            [
                "-D", directory.appendingPathComponent("data").path, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-instructions",
            ])
        guard initdb.status == 0 else { throw TestFailure("initdb failed: \(initdb.stderr)") }
        let server = PrivatePostgres(directory: directory, port: try freePort(), bin: bin, settings: settings)
        try await server.startServer()
        let admin = PostgresStoreConfiguration(
            endpoint: .tcp(host: "127.0.0.1", port: server.port), username: "postgres", password: nil,
            database: "postgres")
        try await admin.withConnection(logger: TestEnvironment.logger) { connection in
            _ = try await connection.query("CREATE DATABASE mailhost", logger: TestEnvironment.logger)
        }
        try await server.configuration.withConnection(logger: TestEnvironment.logger) { connection in
            try await PostgresSchema.migrate(connection, logger: TestEnvironment.logger)
        }
        return server
    }

    /// Starts the server again after `stop` (same data, same port).
    func startServer() async throws {
        let result = try await Self.asPostgres(
            bin.appendingPathComponent("pg_ctl").path,
            [
                "-D", directory.appendingPathComponent("data").path, "-l", directory.appendingPathComponent("log").path,
                "-w", "-t", "60", "start", "-o",
                (["-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c max_connections=200"]
                    + settings.map { "-c \($0)" }).joined(separator: " "),
            ])
        guard result.status == 0 else {
            let log = (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
            throw TestFailure("pg_ctl start failed: \(result.stderr) \(log)")
        }
    }

    /// `pg_ctl stop -m immediate`: every backend is killed at once, as in a crash or a hard restart.
    func stopImmediately() async throws {
        let result = try await Self.asPostgres(
            bin.appendingPathComponent("pg_ctl").path,
            ["-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        guard result.status == 0 else { throw TestFailure("pg_ctl stop failed: \(result.stderr)") }
    }

    func remove() async {
        _ = try? await stopImmediately()
        try? FileManager.default.removeItem(at: directory)
        Self.leftovers.unregister(directory.path)
    }

    /// The servers not removed yet, stopped when the test process exits: tests remove theirs from a `defer` through an
    /// unstructured task, which the process may end before running (`swift test` used to leave servers running).
    static let leftovers = Leftovers()

    final class Leftovers: Sendable {
        private let directories = Mutex<Set<String>>([])
        /// Installed once, by the first server (a static constant is initialised once, on first use).
        private static let exitHook: Void = { atexit { PrivatePostgres.leftovers.stopAll() } }()

        func register(_ directory: String) {
            Self.exitHook
            directories.withLock { _ = $0.insert(directory) }
        }

        func unregister(_ directory: String) {
            directories.withLock { _ = $0.remove(directory) }
        }

        /// Immediate shutdown of each server (SIGQUIT to its postmaster), then its directory goes.
        func stopAll() {
            let all = directories.withLock { $0 }
            for directory in all {
                let pidFile = directory + "/data/postmaster.pid"
                if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                    let pid = text.split(separator: "\n").first.flatMap({ Int32($0) })
                {
                    kill(pid, SIGQUIT)
                    // The postmaster removes its pid file once its children are gone (a second at most here).
                    for _ in 0..<200 where FileManager.default.fileExists(atPath: pidFile) { usleep(10_000) }
                }
                // The test's own removal may be running on another thread: what one misses, the next try takes.
                for _ in 0..<5 where FileManager.default.fileExists(atPath: directory) {
                    try? FileManager.default.removeItem(atPath: directory)
                    usleep(20_000)
                }
            }
        }
    }

    /// Runs `program` as the postgres user. Through Python's subprocess, which closes every inherited descriptor:
    /// the server that `pg_ctl start` leaves running would otherwise keep one of Foundation's open, and `Process`
    /// would never see `pg_ctl` finish.
    private static func asPostgres(_ program: String, _ arguments: [String]) async throws -> CommandResult {
        try await runTool(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "python3", "-c",
                "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL).returncode)",
                "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", program,
            ] + arguments)
    }
}
