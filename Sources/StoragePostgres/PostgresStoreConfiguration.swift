import Foundation
import Logging
import PostgresNIO

/// Where the store lives, parsed from a `postgres://` URL (the `--storage` option and `MAILHOST_STORAGE`).
///
/// Accepted forms:
/// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` over TCP (TLS off: loopback or a private network);
/// - `postgres://USER@/DATABASE?host=/run/postgresql` — a unix socket directory, as libpq's `host=` parameter;
///   the socket file is `<dir>/.s.PGSQL.<port>` (port 5432 unless given as `?port=` or in the authority).
public struct PostgresStoreConfiguration: Sendable, CustomStringConvertible {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String
    /// Upper bound for every store call; past it the call fails with `StoreError.unavailable`.
    public var operationTimeout: Duration = .seconds(15)
    /// The URL set `timeout` itself (tools with longer defaults keep it then).
    public private(set) var timeoutFromURL = false
    /// The main pool: every command but SEARCH (and the change feed's LISTEN connection).
    public var maximumConnections = 20
    /// The SEARCH pool (`searchClientConfiguration`): how many searches run at once per instance.
    public var searchConnections = 4

    public enum ParseError: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String {
            switch self {
            case .invalid(let reason): "invalid storage URL: \(reason)"
            }
        }
    }

    public init(endpoint: Endpoint, username: String, password: String?, database: String) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    public init(url text: String) throws {
        guard let components = URLComponents(string: text) else { throw ParseError.invalid("not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw ParseError.invalid("the scheme must be postgres://")
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let user = components.user.flatMap { $0.removingPercentEncoding } ?? query["user"] ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding } ?? query["password"]
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        database = database.removingPercentEncoding ?? database
        if database.isEmpty { database = query["dbname"] ?? user }
        let port = components.port ?? query["port"].flatMap(Int.init) ?? 5432
        guard (1...65535).contains(port) else { throw ParseError.invalid("port out of range") }
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            endpoint = .unixSocket(path: socketDirectory + "/.s.PGSQL.\(port)")
        } else if let host = components.host, !host.isEmpty {
            endpoint = .tcp(host: host, port: port)
        } else {
            endpoint = .unixSocket(path: "/var/run/postgresql/.s.PGSQL.\(port)")
        }
        username = user
        self.password = password
        self.database = database
        if let timeout = query["timeout"].flatMap(Int.init), timeout > 0 {
            operationTimeout = .seconds(timeout)
            timeoutFromURL = true
        }
        if let pool = query["pool_size"] {
            guard let size = Int(pool), (2...1000).contains(size) else { throw ParseError.invalid("pool_size 2-1000") }
            maximumConnections = size
        }
        if let pool = query["search_pool_size"] {
            guard let size = Int(pool), (1...1000).contains(size) else {
                throw ParseError.invalid("search_pool_size 1-1000")
            }
            searchConnections = size
        }
    }

    public var description: String {
        switch endpoint {
        case .tcp(let host, let port): "postgres://\(username)@\(host):\(port)/\(database)"
        case .unixSocket(let path): "postgres://\(username)@/\(database)?socket=\(path)"
        }
    }

    public var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .tcp(let host, let port):
            configuration = .init(
                host: host, port: port, username: username, password: password, database: database, tls: .disable)
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: username, password: password, database: database)
        }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        // The server stops what the store would give up on (a transaction left open by a call that timed out, a
        // statement running long), so an abandoned query never holds a lock or a backend for long. Statements stop
        // a little before the store's own deadline: a write stuck on a lock then fails with the server's definite
        // answer (nothing committed: NO) rather than at the deadline with an unknown outcome.
        let milliseconds = max(1000, operationTimeout.components.seconds * 1000)
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", "\(max(500, milliseconds * 4 / 5))"),
            ("idle_in_transaction_session_timeout", "\(milliseconds)"), ("application_name", "mailhost"),
        ]
        return configuration
    }

    /// The SEARCH pool: the same server and timeouts, `searchConnections` connections.
    public var searchClientConfiguration: PostgresClient.Configuration {
        var configuration = clientConfiguration
        configuration.options.maximumConnections = searchConnections
        configuration.options.minimumConnections = 0
        // SORT of a 100,000-message mailbox sorts 100,000 keys: with the default 4 MB they spill to disk. 32 MB per
        // search connection (4 by default, so 128 MB at most) keeps them in memory.
        configuration.options.additionalStartupParameters.append(("work_mem", "32MB"))
        return configuration
    }

    public var connectionConfiguration: PostgresConnection.Configuration {
        switch endpoint {
        case .tcp(let host, let port):
            .init(host: host, port: port, username: username, password: password, database: database, tls: .disable)
        case .unixSocket(let path):
            .init(unixSocketPath: path, username: username, password: password, database: database)
        }
    }
}

extension PostgresStoreConfiguration {
    /// Opens one plain connection for start-up work (schema checks, migrations, admin commands). Unlike
    /// `PostgresClient`, which retries forever, this fails fast with the server's or the socket's error.
    @discardableResult
    public func withConnection<T: Sendable>(
        logger: Logger, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        var configuration = connectionConfiguration
        configuration.options.connectTimeout = .seconds(5)
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        } catch {
            throw StartupError.unreachable(self.description, Self.describe(error))
        }
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// A short human reason for a connection failure (PSQLError hides details from `description`).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return String(describing: underlying) }
            return String(describing: error.code)
        }
        return String(describing: error)
    }

    public enum StartupError: Error, CustomStringConvertible {
        case unreachable(String, String)
        public var description: String {
            switch self {
            case .unreachable(let target, let reason): "cannot connect to the database \(target): \(reason)"
            }
        }
    }
}
