import ArgumentParser
import AuthPAM
import Foundation
import IMAPEngine
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import StoragePostgres
import UnixSignals

/// `mailhost serve`: runs the IMAP listeners on a PostgreSQL store (README "Command lines").
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the IMAP server.")

    @Option(name: .customLong("imap"), help: "IMAP listener address HOST:PORT (repeatable; port 0 picks a free port).")
    var imap: [String] = []

    @Option(help: "Store URL, e.g. postgres://mailhost@127.0.0.1:5432/mailhost (default: $MAILHOST_STORAGE).")
    var storage: String?

    @Option(help: "Authentication backends, tried in order: pam, db, or a list such as db,pam.")
    var auth: String = "pam"

    @Option(name: .customLong("pam-service"), help: "PAM service name (a file in /etc/pam.d).")
    var pamService: String = "mailhost"

    @ArgumentParser.Flag(
        name: .customLong("allow-plaintext-auth"), help: "Accept plaintext LOGIN on non-loopback, non-TLS connections.")
    var allowPlaintextAuth = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        LoggingSystem.bootstrap { label in LogfmtLogHandler(label: label, level: level) }
        let logger = Logger(label: "mailhost")

        guard let url = storage ?? ProcessInfo.processInfo.environment["MAILHOST_STORAGE"] else {
            throw ValidationError("no store configured: pass --storage postgres://… or set MAILHOST_STORAGE")
        }
        let storeConfiguration = try PostgresStoreConfiguration(url: url)
        let addresses = try (imap.isEmpty ? ["127.0.0.1:1143"] : imap).map(ListenAddress.init(parsing:))
        let backendNames = auth.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard !backendNames.isEmpty, backendNames.allSatisfy({ ["pam", "db"].contains($0) }) else {
            throw ValidationError("unknown --auth \(auth); use pam, db, or a list such as db,pam")
        }

        // Fail fast with a clear message when the database is unreachable or its schema is not ours.
        do {
            try await Self.prepareSchema(storeConfiguration, logger: logger)
        } catch let error as ServeError {
            logger.critical("\(error.description)")
            throw ExitCode(2)
        } catch {
            logger.critical("\(String(describing: error))")
            throw ExitCode(2)
        }

        var postgresLogger = logger
        postgresLogger.logLevel = max(level, .notice)
        let client = PostgresClient(
            configuration: storeConfiguration.clientConfiguration, backgroundLogger: postgresLogger)
        let store = PostgresMailStore(client: client, operationTimeout: storeConfiguration.operationTimeout)
        let feed = ChangeFeed()
        let authenticator = Self.authenticator(
            backendNames, store: store, pamService: pamService, logger: logger)
        let server = IMAPServerContext(
            store: store, feed: feed, authenticator: authenticator, logger: logger,
            allowPlaintextAuth: allowPlaintextAuth)

        var services: [any Service] = [
            client, ChangeFeedService(feed: PostgresChangeFeed(client: client, feed: feed, logger: logger)),
        ]
        services.append(GarbageCollector(store: store, logger: logger))
        for address in addresses {
            services.append(IMAPListener(address: address, server: server, logger: logger, onListening: { _ in }))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// The `--auth` chain with one uniform failure time for all backends.
    static func authenticator(
        _ names: [String], store: PostgresMailStore, pamService: String, logger: Logger
    ) -> AuthenticatorChain {
        let backends: [any Authenticator] = names.map { name -> any Authenticator in
            if name == "db" { return PostgresPasswordAuthenticator(store: store, logger: logger) }
            return PAMAuthentication(
                pam: PAMAuthenticator(service: pamService, minimumFailureTime: .zero), logger: logger)
        }
        return AuthenticatorChain(backends: backends, minimumFailureTime: .seconds(1))
    }

    static func prepareSchema(_ configuration: PostgresStoreConfiguration, logger: Logger) async throws {
        try await configuration.withConnection(logger: logger) { connection in
            switch try await PostgresSchema.state(connection, logger: logger) {
            case .current:
                return
            case .empty:
                let applied = try await PostgresSchema.migrate(connection, logger: logger)
                logger.notice("created the database schema", metadata: ["versions": "\(applied)"])
            case .behind(let current, let latest):
                throw ServeError(
                    "the database schema is at version \(current) but this mailhost needs version \(latest): "
                        + "run `mailadmin --storage URL db migrate` first")
            case .ahead(let current, let latest):
                throw ServeError(
                    "the database schema is at version \(current), newer than this mailhost knows (\(latest)): "
                        + "upgrade mailhost")
            }
        }
    }
}

struct ServeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs the PostgreSQL LISTEN loop as a service.
struct ChangeFeedService: Service {
    let feed: PostgresChangeFeed
    func run() async throws {
        await cancelWhenGracefulShutdown { await feed.run() }
    }
}

/// Removes content no longer referenced, once an hour (DESIGN.md §4: content is stored once).
struct GarbageCollector: Service {
    let store: PostgresMailStore
    let logger: Logger
    static let interval: Duration = .seconds(3600)
    static let retention: Duration = .seconds(24 * 3600)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: Self.interval)
                } catch {
                    return
                }
                do {
                    let removed = try await store.collectGarbage(retention: Self.retention, logger: logger)
                    if removed > 0 { logger.info("garbage collected", metadata: ["contents": "\(removed)"]) }
                } catch {
                    logger.warning("garbage collection failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
