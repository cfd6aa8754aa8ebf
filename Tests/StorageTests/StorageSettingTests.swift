import Foundation
import IMAPEngine
import Logging
import Storage
import StoragePostgres
import Testing

/// The factory's reading of storage settings (issue #12): which backend a setting names, and a clear error for
/// every setting it cannot use.
@Suite struct StorageSettingTests {
    @Test func postgresURLsNamePostgres() throws {
        for setting in ["postgres://mail@db.example/mailhost", "POSTGRESQL://mail@db.example:6432/mailhost"] {
            guard case .postgres(let configuration) = try Storage.location(setting) else {
                Issue.record("\(setting) is not PostgreSQL")
                continue
            }
            #expect(configuration.database == "mailhost")
            #expect(configuration.username == "mail")
        }
    }

    @Test func sqliteSettingsAndPlainPathsNameAFile() throws {
        let cases = [
            ("sqlite:/var/lib/mailhost/mail.db", "/var/lib/mailhost/mail.db"),
            ("SQLite:mail.db", "mail.db"),
            ("/srv/mail/store.sqlite", "/srv/mail/store.sqlite"),
            ("  ./mailhost-data/mail.db ", "./mailhost-data/mail.db"),
        ]
        for (setting, path) in cases {
            guard case .sqlite(let found) = try Storage.location(setting) else {
                Issue.record("\(setting) is not SQLite")
                continue
            }
            #expect(found == path)
        }
    }

    @Test func unusableSettingsSayWhy() {
        #expect(throws: Storage.SettingError.unknownScheme("mysql")) { try Storage.location("mysql://x") }
        #expect(throws: Storage.SettingError.empty) { try Storage.location("  ") }
        #expect(throws: Storage.SettingError.self) { try Storage.location("sqlite:") }
        #expect(throws: Storage.SettingError.self) { try Storage.location("postgres://u@h:99999/d") }
        #expect(throws: Storage.SettingError.self) { try Storage.location("/tmp/a\u{0}b") }
        let message = String(describing: Storage.SettingError.unknownScheme("mysql"))
        #expect(message.contains("mysql://") && message.contains("postgres://") && message.contains("sqlite:"))
    }

    /// A server's timeout applies unless a tool lets the URL's own `timeout` win.
    @Test func theOperationTimeoutFollowsTheOptions() throws {
        let url = "postgres://mail@db.example/mailhost?timeout=7"
        let server = try Storage.open(
            url, options: Storage.Options(operationTimeout: .seconds(15)), logger: .init(label: "test"))
        #expect((server as? PostgresBackend)?.configuration.operationTimeout == .seconds(15))
        let tool = try Storage.open(
            url, options: Storage.Options(operationTimeout: .seconds(120), urlTimeoutWins: true),
            logger: .init(label: "test"))
        #expect((tool as? PostgresBackend)?.configuration.operationTimeout == .seconds(7))
        let plain = try Storage.open(
            "postgres://mail@db.example/mailhost",
            options: Storage.Options(operationTimeout: .seconds(120), urlTimeoutWins: true),
            logger: .init(label: "test"))
        #expect((plain as? PostgresBackend)?.configuration.operationTimeout == .seconds(120))
    }

    @Test func theRedactedSettingHasNoPassword() {
        let shown = Storage.redacted("postgres://mail:s3cret@db.example/mailhost")
        #expect(!shown.contains("s3cret"))
        #expect(shown.contains("db.example"))
        #expect(Storage.redacted("sqlite:/var/lib/mailhost/mail.db") == "sqlite:/var/lib/mailhost/mail.db")
    }
}

/// Opening SQLite files through the factory.
@Suite struct SQLiteOpeningTests {
    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mh-open-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// One serving process per file: a second one is refused, naming the holder; tools may open it meanwhile.
    @Test func aSecondServingProcessIsRefused() throws {
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let setting = "sqlite:" + directory.appendingPathComponent("mail.db").path
        let logger = Logger(label: "test")
        let first = try Storage.open(
            setting, options: Storage.Options(operationTimeout: .seconds(5), serving: true), logger: logger)
        // flock locks belong to the open file description, so a second open in this process conflicts as a second
        // process would.
        do {
            _ = try Storage.open(
                setting, options: Storage.Options(operationTimeout: .seconds(5), serving: true), logger: logger)
            Issue.record("a second serving open succeeded")
        } catch {
            let message = String(describing: error)
            #expect(message.contains("already served by another mailhost (pid \(getpid()))"))
            #expect(message.contains("postgres://"))
        }
        _ = try Storage.open(setting, options: Storage.Options(operationTimeout: .seconds(5)), logger: logger)
        withExtendedLifetime(first) {}
    }

    @Test func aMissingDirectoryIsNamed() {
        let setting = "sqlite:/nonexistent-\(UInt32.random(in: 0...UInt32.max))/mail.db"
        #expect {
            _ = try Storage.open(
                setting, options: Storage.Options(operationTimeout: .seconds(5)), logger: .init(label: "t"))
        } throws: { error in
            String(describing: error).contains("cannot open the SQLite store /nonexistent-")
        }
    }
}
