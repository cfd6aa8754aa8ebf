import Foundation
import IMAPEngine
import Logging
import StoragePostgres
import StorageSQLite

/// The one place that turns a storage setting into a store (issue #12): `mailhost` and `mailadmin` know the
/// `StoreBackend` protocols and this factory, never a backend's types.
///
/// Accepted settings:
/// - `postgres://…` or `postgresql://…`: PostgreSQL, shared by any number of instances (`PostgresStoreConfiguration`
///   gives the URL's forms and parameters);
/// - `sqlite:PATH`, or a plain path: one SQLite database file for one server process.
public enum Storage {
    /// Where a store is.
    public enum Location: Sendable {
        case postgres(PostgresStoreConfiguration)
        case sqlite(path: String)
    }

    /// Why a storage setting cannot be used.
    public enum SettingError: Error, CustomStringConvertible, Equatable {
        case empty
        case unknownScheme(String)
        case invalid(String)
        /// The store named cannot be opened (a SQLite file another process serves, a directory that does not exist).
        case unusable(String)
        public var description: String {
            switch self {
            case .empty: "the storage setting is empty"
            case .unknownScheme(let scheme):
                "unknown storage scheme \(scheme)://: use postgres://USER@HOST/DATABASE or sqlite:PATH"
            case .invalid(let reason): reason
            case .unusable(let reason): reason
            }
        }
    }

    /// The location a storage setting names, checked for its form (nothing is opened).
    public static func location(_ setting: String) throws(SettingError) -> Location {
        let text = setting.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { throw .empty }
        if let range = text.range(of: "://") {
            let scheme = text[..<range.lowerBound].lowercased()
            guard scheme == "postgres" || scheme == "postgresql" else {
                throw .unknownScheme(String(scheme.prefix(40)))
            }
            do {
                return .postgres(try PostgresStoreConfiguration(url: text))
            } catch {
                throw .invalid(String(describing: error))
            }
        }
        var path = text
        if path.lowercased().hasPrefix("sqlite:") { path = String(path.dropFirst("sqlite:".count)) }
        guard !path.isEmpty else { throw .invalid("sqlite: needs a file path (sqlite:/var/lib/mailhost/mail.db)") }
        guard !path.contains("\u{0}") else { throw .invalid("the SQLite path contains a NUL byte") }
        return .sqlite(path: path)
    }

    /// How a program uses the store.
    public struct Options: Sendable {
        /// The bound on every store call (past it the call fails with `StoreError.unavailable`).
        public var operationTimeout: Duration
        /// Whether a `timeout` the URL itself gives wins over `operationTimeout` (tools whose default is longer than
        /// a server's keep the administrator's choice).
        public var urlTimeoutWins: Bool
        /// SEARCH on a pool of its own (servers), so that heavy searches never fill the pool of every other command.
        public var separateSearchPool: Bool
        /// This process serves IMAP from the store: a SQLite file then refuses a second serving process.
        public var serving: Bool
        public init(
            operationTimeout: Duration, urlTimeoutWins: Bool = false, separateSearchPool: Bool = false,
            serving: Bool = false
        ) {
            self.operationTimeout = operationTimeout
            self.urlTimeoutWins = urlTimeoutWins
            self.separateSearchPool = separateSearchPool
            self.serving = serving
        }
    }

    /// The store a setting names, not yet running (`StoreBackend.run(feed:)` starts it; `schema` works before).
    /// `poolLogger` takes what the connection pools log (a server keeps it at notice and above).
    public static func open(_ setting: String, options: Options, logger: Logger, poolLogger: Logger? = nil)
        throws(SettingError) -> any StoreBackend
    {
        switch try location(setting) {
        case .postgres(var configuration):
            if !(options.urlTimeoutWins && configuration.timeoutFromURL) {
                configuration.operationTimeout = options.operationTimeout
            }
            return PostgresBackend(
                configuration: configuration, separateSearchPool: options.separateSearchPool, logger: logger,
                poolLogger: poolLogger ?? logger)
        case .sqlite(let path):
            do {
                return try SQLiteBackend(
                    path: path, serving: options.serving, operationTimeout: options.operationTimeout, logger: logger)
            } catch {
                throw .unusable(String(describing: error))
            }
        }
    }

    /// The store used when none is configured: `mail.db` (SQLite) in the data directory, which is systemd's
    /// `$STATE_DIRECTORY` under the unit (`StateDirectory=mailhost`: /var/lib/mailhost), else `./mailhost-data`.
    public static func defaultSetting(environment: [String: String]) -> String {
        var directory = environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
        if directory?.isEmpty != false { directory = "./mailhost-data" }
        return "sqlite:" + (directory ?? "./mailhost-data") + "/mail.db"
    }

    /// Creates the directory of a SQLite setting when it does not exist (mode 0700: mail is private); nothing for
    /// other settings. Returns true when it created it.
    @discardableResult
    public static func createDirectory(of setting: String) throws(SettingError) -> Bool {
        guard case .sqlite(let path) = try location(setting) else { return false }
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) else { return false }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .unusable("cannot create the data directory \(directory): \(error.localizedDescription)")
        }
        return true
    }

    /// Whether the setting names a SQLite file (a store of one machine, which tools may create on first use).
    public static func isSQLite(_ setting: String) -> Bool {
        if case .sqlite? = try? location(setting) { return true }
        return false
    }

    /// The setting as logs and `config check` show it: a PostgreSQL URL without its password.
    public static func redacted(_ setting: String) -> String {
        guard case .postgres(let configuration)? = try? location(setting) else { return setting }
        return configuration.description
    }
}
