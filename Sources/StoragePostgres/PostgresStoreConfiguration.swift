import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// Where the store lives, parsed from a `postgres://` URL (the `--storage` option and `MAILHOST_STORAGE`).
///
/// Accepted forms:
/// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` over TCP;
/// - `postgres://USER@/DATABASE?host=/run/postgresql` — a unix socket directory, as libpq's `host=` parameter;
///   the socket file is `<dir>/.s.PGSQL.<port>` (port 5432 unless given as `?port=` or in the authority).
///
/// TLS over TCP as libpq's parameters say: `sslmode=disable|allow|prefer|require|verify-ca|verify-full` and
/// `sslrootcert=FILE` (PEM). Unlike libpq, the default is `disable` (a database on loopback or a private network);
/// set `verify-full` for one across a network. `require` checks no certificate unless `sslrootcert` is given (then
/// it verifies the chain, as libpq does); `verify-full` also the host name, so the URL must name the host as its
/// certificate does (not an IP address). Without `sslrootcert` the system's trusted roots are used.
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
    /// The SEARCH pool (`searchPoolConnectionConfiguration`): how many searches run at once per instance.
    public var searchConnections = 4
    /// How long a pooled connection may stay unused before it is closed (one per pool stays open); nil: never.
    public var poolIdleTimeout: Duration? = .seconds(60)

    /// libpq's `sslmode` values.
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var sslMode: SSLMode = .disable
    /// PEM file of the roots the server's certificate must chain to (`sslrootcert`).
    public var sslRootCertificate: String?

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
        if let idle = query["pool_idle_timeout"] {
            guard let seconds = Int(idle), (0...86_400).contains(seconds) else {
                throw ParseError.invalid("pool_idle_timeout 0-86400 (seconds; 0: never)")
            }
            poolIdleTimeout = seconds == 0 ? nil : .seconds(seconds)
        }
        if let mode = query["sslmode"] {
            guard let parsed = SSLMode(rawValue: mode) else {
                throw ParseError.invalid(
                    "sslmode \(mode.debugDescription): one of "
                        + SSLMode.allCases.map(\.rawValue).joined(separator: ", "))
            }
            sslMode = parsed
        }
        if let root = query["sslrootcert"] {
            guard FileManager.default.isReadableFile(atPath: root) else {
                throw ParseError.invalid("sslrootcert \(root) cannot be read")
            }
            sslRootCertificate = root
        }
        if sslMode == .verifyFull, case .tcp(let host, _) = endpoint, host.isIPAddress {
            throw ParseError.invalid(
                "sslmode=verify-full checks the host name against the certificate: name the host as the "
                    + "certificate does, not \(host)")
        }
    }

    public var description: String {
        switch endpoint {
        case .tcp(let host, let port):
            var tls: [String] = []
            if sslMode != .disable { tls.append("sslmode=\(sslMode.rawValue)") }
            if let root = sslRootCertificate { tls.append("sslrootcert=\(root)") }
            return "postgres://\(username)@\(host):\(port)/\(database)"
                + (tls.isEmpty ? "" : "?" + tls.joined(separator: "&"))
        case .unixSocket(let path): return "postgres://\(username)@/\(database)?socket=\(path)"
        }
    }

    /// The TLS the connections ask for (nil: none, or a unix socket).
    var tlsConfiguration: TLSConfiguration? {
        guard case .tcp = endpoint, sslMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        switch sslMode {
        case .verifyFull: tls.certificateVerification = .fullVerification
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .require where sslRootCertificate != nil: tls.certificateVerification = .noHostnameVerification
        default: tls.certificateVerification = .none
        }
        if let root = sslRootCertificate { tls.trustRoots = .file(root) }
        return tls
    }

    /// `allow` and `prefer` fall back to plain text when the server has no TLS; the other modes refuse then.
    private var tlsFallsBack: Bool { sslMode == .allow || sslMode == .prefer }

    public var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch endpoint {
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS =
                if let settings = tlsConfiguration { tlsFallsBack ? .prefer(settings) : .require(settings) } else {
                    .disable
                }
            configuration = .init(
                host: host, port: port, username: username, password: password, database: database, tls: tls)
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: username, password: password, database: database)
        }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(Self.connectSeconds)
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// How long opening a connection may take, for every kind of connection.
    static let connectSeconds: Int64 = 5

    /// The settings every pool connection starts with.
    var startupParameters: [(String, String)] {
        // The server stops what the store would give up on (a transaction left open by a call that timed out, a
        // statement running long), so an abandoned query never holds a lock or a backend for long. Statements stop
        // a little before the store's own deadline: a write stuck on a lock then fails with the server's definite
        // answer (nothing committed: NO) rather than at the deadline with an unknown outcome.
        let milliseconds = max(1000, operationTimeout.components.seconds * 1000)
        return [
            ("statement_timeout", "\(max(500, milliseconds * 4 / 5))"),
            ("idle_in_transaction_session_timeout", "\(milliseconds)"), ("application_name", "mailhost"),
            // TCP keepalives from the server on idle connections (ignored over a Unix socket): they keep a
            // firewall's or NAT's state for the connection alive, and the server notices a vanished client.
            ("tcp_keepalives_idle", "60"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "6"),
        ]
    }

    /// The SEARCH pools' connections (`searchConnections` of them): as the main pools', with more sort memory.
    public var searchPoolConnectionConfiguration: Result<PostgresConnection.Configuration, any Error> {
        poolConnectionConfiguration.map { configuration in
            var configuration = configuration
            // SORT of a 100,000-message mailbox sorts 100,000 keys: with the default 4 MB they spill to disk. 32 MB per
            // search connection (4 by default, so 128 MB at most) keeps them in memory.
            configuration.options.additionalStartupParameters.append(("work_mem", "32MB"))
            return configuration
        }
    }

    /// The command pools' connections when SEARCH has pools of its own: `poolConnectionConfiguration`, with every
    /// statement planned generically from its first execution (`plan_cache_mode`).
    ///
    /// PostgreSQL plans a prepared statement for its values five times on each connection before it may keep a
    /// generic plan, and never switches when the value-specific plans look cheaper. Under the 50-client mix that
    /// planning was 3.4–3.6 s of about 20 s of PostgreSQL's CPU in 20 s (pg_stat_statements with track_planning);
    /// with generic plans from the start it was 0.35–0.41 s, and PostgreSQL's CPU per command went from 0.54 / 0.49
    /// to 0.48 / 0.45 ms (the mix's rate did not change measurably on two saturated cores). The command
    /// statements are written for generic plans (their bounds are found through the keys whatever the values;
    /// PlannerTests, PreparedStatementTests). SEARCH, SORT and THREAD, whose compiled statements do depend on their
    /// values, run on the search pools, which keep PostgreSQL's choice.
    public var commandPoolConnectionConfiguration: Result<PostgresConnection.Configuration, any Error> {
        poolConnectionConfiguration.map { configuration in
            var configuration = configuration
            configuration.options.additionalStartupParameters.append(("plan_cache_mode", "force_generic_plan"))
            return configuration
        }
    }

    /// The main pools' connections (`LoopPools`): `connectionConfiguration` with the connect timeout and
    /// `startupParameters`. A TLS setting that cannot be made into a context fails every connection with its error.
    public var poolConnectionConfiguration: Result<PostgresConnection.Configuration, any Error> {
        Result {
            var configuration = try connectionConfiguration
            configuration.options.connectTimeout = .seconds(Self.connectSeconds)
            configuration.options.additionalStartupParameters = startupParameters
            return configuration
        }
    }

    public var connectionConfiguration: PostgresConnection.Configuration {
        get throws {
            switch endpoint {
            case .tcp(let host, let port):
                var tls = PostgresConnection.Configuration.TLS.disable
                if let settings = tlsConfiguration {
                    let context = try NIOSSLContext(configuration: settings)
                    tls = tlsFallsBack ? .prefer(context) : .require(context)
                }
                return .init(
                    host: host, port: port, username: username, password: password, database: database, tls: tls)
            case .unixSocket(let path):
                return .init(unixSocketPath: path, username: username, password: password, database: database)
            }
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
        let connection: PostgresConnection
        do {
            var configuration = try connectionConfiguration
            configuration.options.connectTimeout = .seconds(Self.connectSeconds)
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
            if let underlying = error.underlying { return describe(underlying) }
            if error.code == .sslUnsupported { return "the server does not offer TLS (sslmode asks for it)" }
            return String(describing: error.code)
        }
        if let error = error as? NIOConnectionError {
            // NIO's own text lists each attempt with its internals: say what the socket said, once per reason.
            if let failure = error.dnsAError ?? error.dnsAAAAError, error.connectionErrors.isEmpty {
                return "cannot resolve \(error.host): \(failure)"
            }
            let reasons = error.connectionErrors.map { describe($0.error) }
            let distinct = reasons.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            return distinct.isEmpty ? "cannot reach \(error.host):\(error.port)" : distinct.joined(separator: "; ")
        }
        if let error = error as? IOError {
            var reason = String(cString: strerror(error.errnoCode))
            if error.errnoCode == ECONNREFUSED { reason += " (is PostgreSQL running and listening there?)" }
            return reason
        }
        if let error = error as? NIOSSLError {
            return "TLS: the server's certificate was not accepted or the handshake failed (\(error))"
        }
        if let error = error as? BoringSSLError {
            return "TLS: the server's certificate was not accepted (\(error))"
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

extension String {
    /// Whether this is an IPv4 or IPv6 address rather than a host name.
    var isIPAddress: Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }
}
