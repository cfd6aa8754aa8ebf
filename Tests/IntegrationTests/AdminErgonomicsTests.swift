import Foundation
import IMAPEngine
import Testing

/// Issue #13 §3 and §5: the tools say what they are and what went wrong, in words. `--version` on both tools;
/// `mailadmin --config` reads the server's file; `mailhost config check` checks the PAM service file, the certificate
/// against its key, and with `--connect` the store; a listener that cannot bind names its address; quota sizes that
/// look like options are refused as sizes; JSON keeps keys without a value as null; `deliver --help` shows its own
/// options; a load balancer's TCP health check is no notice in the log.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct AdminErgonomicsTests {
    static func mailhost(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await runTool(ServerProcess.executable("mailhost"), arguments, environment: environment)
    }

    @Test func bothToolsTellTheirVersion() async throws {
        let server = try await Self.mailhost(["--version"])
        #expect(server.status == 0 && server.stdout == MailHostVersion.current + "\n", "\(server)")
        let admin = try await runTool(ServerProcess.executable("mailadmin"), ["--version"])
        #expect(admin.status == 0 && admin.stdout == MailHostVersion.current + "\n", "\(admin)")
    }

    @Test func mailadminReadsTheStorageOfTheServersConfigurationFile() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("mailhost.conf")
        try Data("# the server's file\nimap = 127.0.0.1:1143\nstorage = \"\(database.setting)\"\n".utf8).write(to: file)
        let admin = ServerProcess.executable("mailadmin")

        let added = try await runTool(
            admin, ["user", "add", "conf", "--password-stdin", "--config", file.path], stdin: "pw\n")
        #expect(added.status == 0, "\(added.stderr)")
        // The same store through --storage, and through MAILHOST_CONFIG.
        #expect(try await mailadmin(database, "user", "show", "conf").status == 0)
        let viaEnvironment = try await runTool(
            admin, ["user", "show", "conf"], environment: ["MAILHOST_CONFIG": file.path])
        #expect(viaEnvironment.status == 0, "\(viaEnvironment.stderr)")
        // --storage wins over the file, as on the server's command line.
        let elsewhere = "sqlite:" + directory.appendingPathComponent("other.db").path
        let overridden = try await runTool(
            admin, ["--config", file.path, "--storage", elsewhere, "user", "show", "conf"])
        #expect(overridden.status != 0 && overridden.stderr.contains("no such user: conf"), "\(overridden)")
        // A file that cannot be read is named.
        let missing = try await runTool(admin, ["--config", "/nonexistent/mailhost.conf", "user", "list"])
        #expect(
            missing.status != 0 && missing.stderr.contains("cannot read configuration file /nonexistent/mailhost.conf"),
            "\(missing)")
        // Subcommand help names the options every subcommand takes.
        let help = try await runTool(admin, ["user", "add", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--storage <url>") && help.stdout.contains("--config <file>"))
    }

    @Test func configCheckChecksThePAMServiceTheCertificateAndTheStore() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let one = try await TestCertificate.make()
        let two = try await TestCertificate.make()
        defer {
            one.remove()
            two.remove()
        }
        func check(_ arguments: [String]) async throws -> CommandResult {
            try await Self.mailhost(["config", "check", "--imap", "127.0.0.1:1143"] + arguments)
        }
        let good = try await check(["--storage", database.setting, "--auth", "db", "--connect"])
        #expect(good.status == 0 && good.stdout.contains("reachable, schema suits this version"), "\(good)")

        let pam = try await check(["--storage", database.setting, "--auth", "db,pam", "--pam-service", "no-such-svc"])
        #expect(
            pam.status == 1 && pam.stderr.contains("pam-service: /etc/pam.d/no-such-svc does not exist"), "\(pam)")

        let mismatched = try await check([
            "--storage", database.setting, "--auth", "db", "--tls-cert", one.certificate.path, "--tls-key",
            two.key.path,
        ])
        #expect(
            mismatched.status == 1
                && mismatched.stderr.contains("the private key \(two.key.path) does not go with the certificate"),
            "\(mismatched)")

        let unreachable = try await check([
            "--storage", "postgres://mailhost@127.0.0.1:1/mail", "--auth", "db", "--connect",
        ])
        #expect(
            unreachable.status == 1 && unreachable.stderr.contains("storage postgres://mailhost@127.0.0.1:1/mail")
                && unreachable.stderr.contains("Connection refused (is PostgreSQL running and listening there?)"),
            "\(unreachable)")
        // Without --connect the setting is only read.
        let unconnected = try await check(["--storage", "postgres://mailhost@127.0.0.1:1/mail", "--auth", "db"])
        #expect(unconnected.status == 0, "\(unconnected)")

        // The cache of verified logins: on by default, 0 turns it off, anything else is refused with the key named.
        #expect(good.stdout.contains("auth-cache-size = 10000 "), "\(good)")
        let off = try await check(["--storage", database.setting, "--auth", "db", "--auth-cache-size", "0"])
        #expect(off.status == 0 && off.stdout.contains("auth-cache-size = 0 "), "\(off)")
        let refused = try await check(["--storage", database.setting, "--auth", "db", "--auth-cache-size", "lots"])
        #expect(
            refused.status == 1 && refused.stderr.contains("auth-cache-size")
                && refused.stderr.contains("lots is not a whole number from 0 to 10000000"), "\(refused)")
    }

    @Test func aListenerThatCannotBindNamesItsAddress() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let port = try freePort()
        let holder = try ServerProcess(
            ["serve", "--storage", database.setting, "--imap", "127.0.0.1:\(port)"] + database.authArguments("db"))
        defer { holder.terminate() }
        _ = try await holder.waitUntilListening()
        // A second server asked to listen on the same address (on a store of its own).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("mh-bind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: file, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: file) }
        let second = try ServerProcess([
            "serve", "--storage", "sqlite:" + file.appendingPathComponent("mail.db").path, "--auth", "db", "--imap",
            "127.0.0.1:\(port)",
        ])
        defer { second.terminate() }
        #expect(try await second.waitForExit() != 0)
        #expect(
            second.log.contains("cannot listen on imap=127.0.0.1:\(port): Address already in use"), "\(second.log)")
    }

    @Test func quotaSizesThatLookLikeOptionsAreRefusedAsSizesAndJSONKeepsNulls() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        #expect(try await mailadmin(database, "user", "add", "demo", "--password-stdin", stdin: "pw\n").status == 0)
        let negative = try await mailadmin(database, "quota", "set", "demo", "-5M")
        #expect(negative.status != 0 && negative.stderr.contains("invalid size \"-5M\""), "\(negative)")
        let missing = try await mailadmin(database, "quota", "set", "demo")
        #expect(missing.status != 0 && missing.stderr.contains("give the storage limit"), "\(missing)")
        let option = try await mailadmin(
            database, "user", "add", "neg", "--password-stdin", "--quota", "-5M", stdin: "pw\n")
        #expect(option.status != 0 && option.stderr.contains("invalid size \"-5M\""), "\(option)")

        let shown = try await mailadmin(database, "user", "show", "demo", "--json")
        #expect(
            shown.stdout.contains("\"quotaBytes\":null") && shown.stdout.contains("\"quotaMessages\":null"), "\(shown)")
        let quota = try await mailadmin(database, "quota", "show", "demo", "--json")
        #expect(quota.stdout.contains("\"limitBytes\":null"), "\(quota)")
        #expect(try await mailadmin(database, "quota", "set", "demo", "5M").status == 0)
        let limited = try await mailadmin(database, "quota", "show", "demo", "--json")
        #expect(limited.stdout.contains("\"limitBytes\":5242880"), "\(limited)")
    }

    @Test func deliverHelpShowsItsOwnOptions() async throws {
        let help = try await Self.mailhost(["deliver", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--to <to>"), "\(help)")
        #expect(!help.stdout.contains("--imap-proxy") && help.stdout.contains("--storage URL"), "\(help.stdout)")
    }

    @Test func aHealthCheckThatSendsNothingIsNoNotice() async throws {
        let database = try await TestStorage.create()
        defer { Task { await database.drop() } }
        let server = try ServerProcess(
            ["serve", "--storage", database.setting, "--imap-proxy", "127.0.0.1:0", "--log-level", "debug"]
                + database.authArguments("db"))
        defer { server.terminate() }
        let port = try await server.waitUntilListening("imap-proxy")
        // What HAProxy's `check` does: connect, and close.
        let probe = try await IMAPTestClient.connect(port: port)
        await probe.close()
        #expect(await server.logEventuallyContains("connection closed before sending anything"), "\(server.log)")
        let line = server.log.split(separator: "\n").first { $0.contains("connection closed before sending anything") }
        #expect(line?.contains("level=debug") == true, "\(line ?? "")")
    }
}
