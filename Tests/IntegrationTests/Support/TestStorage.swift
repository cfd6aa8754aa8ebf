import Foundation
import GRDB
import IMAPEngine
import PostgresNIO
import StoragePostgres
import StorageSQLite
import StoreAccounts

/// A fresh store of the run's kind (`TestEnvironment.storeKind`), for spawned `mailhost` and `mailadmin` processes
/// and for in-process servers beside them: a new PostgreSQL database, or a new SQLite file in a directory of its own.
/// Both start with the schema and no default mailboxes; on SQLite the PAM test users also exist as store accounts
/// with the same passwords, so the tests' logins work without PAM.
struct TestStorage: Sendable, CustomStringConvertible {
    enum Backend: Sendable {
        case postgres(PostgresStoreConfiguration)
        case sqlite(directory: URL)
    }

    let backend: Backend

    /// A store with the schema, no default mailboxes and (SQLite) the test logins.
    static func create() async throws -> TestStorage {
        switch TestEnvironment.storeKind {
        case .postgres: return TestStorage(backend: .postgres(try await TestDatabase.create()))
        case .sqlite: return try await sqlite(defaultMailboxes: false)
        }
    }

    /// A store as the server's first start leaves it: the store's own default mailboxes. On PostgreSQL an empty
    /// database (the server or `mailadmin` creates the schema); on SQLite a file with the schema and the test logins
    /// (store accounts, which get the default mailboxes as `mailadmin user add` gives them).
    static func createBlank() async throws -> TestStorage {
        switch TestEnvironment.storeKind {
        case .postgres: return TestStorage(backend: .postgres(try await TestDatabase.createBlank()))
        case .sqlite: return try await sqlite(defaultMailboxes: true)
        }
    }

    private static func sqlite(defaultMailboxes: Bool) async throws -> TestStorage {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mh-store-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let storage = TestStorage(backend: .sqlite(directory: directory))
        let logger = TestEnvironment.logger
        // Not serving: a spawned `mailhost` takes the file's serving lock.
        let backend = try SQLiteBackend(
            path: storage.sqlitePath, serving: false, operationTimeout: .seconds(10), logger: logger)
        _ = try await backend.schema.prepare(logger: logger)
        if !defaultMailboxes { try await backend.administration.setDefaultMailboxes([], logger: logger) }
        for (login, password) in TestEnvironment.storeAccounts {
            try await backend.administration.addAccount(
                login: login, passwordHash: try PasswordHash.hash(password), quotaBytes: nil, quotaMessages: nil,
                logger: logger)
        }
        return storage
    }

    /// The SQLite file ("" on PostgreSQL).
    var sqlitePath: String {
        guard case .sqlite(let directory) = backend else { return "" }
        return directory.appendingPathComponent("mail.db").path
    }

    /// The `--storage` setting of the tools.
    var setting: String {
        switch backend {
        case .postgres(let configuration): configuration.description
        case .sqlite: "sqlite:" + sqlitePath
        }
    }

    var description: String { setting }

    var isSQLite: Bool {
        if case .sqlite = backend { return true }
        return false
    }

    /// The PostgreSQL database, for a test of PostgreSQL itself (its suite runs on PostgreSQL only).
    var postgres: PostgresStoreConfiguration {
        get throws {
            guard case .postgres(let configuration) = backend else {
                throw TestFailure("a PostgreSQL-only test ran on SQLite: mark it TestEnvironment.readyOnPostgres")
            }
            return configuration
        }
    }

    /// `--auth METHODS` and the PAM service for a spawned server. Where the machine has no PAM test service (a SQLite
    /// run without root), `pam` gives way to `db`: the test logins are store accounts there.
    func authArguments(_ methods: String = "db,pam") -> [String] {
        let list = authMethods(methods)
        guard let service = TestEnvironment.pamService else { return ["--auth", list.joined(separator: ",")] }
        return ["--auth", list.joined(separator: ","), "--pam-service", service]
    }

    /// `methods` (`db,pam`) as a list, `pam` given way to `db` where the machine has no PAM test service.
    func authMethods(_ methods: String = "db,pam") -> [String] {
        let given = methods.split(separator: ",").map(String.init)
        guard TestEnvironment.pamService == nil else { return given }
        var stored: [String] = []
        for method in given.map({ $0 == "pam" ? "db" : $0 }) where !stored.contains(method) { stored.append(method) }
        return stored
    }

    /// Runs SQL on the store behind the server's back (both backends share the table and column names the tests
    /// touch).
    func executeSQL(_ sql: String) async throws {
        switch backend {
        case .postgres(let configuration):
            try await configuration.withConnection(logger: TestEnvironment.logger) { connection in
                _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger)
            }
        case .sqlite:
            let database = try DatabaseQueue(path: sqlitePath)
            try await database.write { db in try db.execute(sql: sql) }
        }
    }

    /// The first column of every row of `sql`, as text.
    func queryStrings(_ sql: String) async throws -> [String] {
        switch backend {
        case .postgres(let configuration):
            return try await configuration.withConnection(logger: TestEnvironment.logger) { connection in
                var values: [String] = []
                for try await row in try await connection.query(
                    PostgresQuery(unsafeSQL: sql), logger: TestEnvironment.logger)
                {
                    values.append(try row.decode(String.self))
                }
                return values
            }
        case .sqlite:
            let database = try DatabaseQueue(path: sqlitePath)
            return try await database.read { db in try String.fetchAll(db, sql: sql) }
        }
    }

    func drop() async {
        switch backend {
        case .postgres(let configuration): await TestDatabase.drop(configuration)
        case .sqlite(let directory): try? FileManager.default.removeItem(at: directory)
        }
    }
}
