import ArgumentParser
import AuthPAM
import Foundation
import IMAPEngine
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Storage
import StoreAccounts
import Metrics
import Prometheus
import UnixSignals

/// The options of `mailhost serve` and `mailhost config check`: every key of `ServerConfiguration`, plus `--config`.
/// Options left out fall back to the environment, then the configuration file, then the defaults.
struct ServerOptions: ParsableArguments {
    @Option(help: "Configuration file (key = value lines; every option below is a key).")
    var config: String?
    @Option(name: .customLong("imap"), help: "IMAP listener HOST:PORT (repeatable; port 0 picks a free port).")
    var imap: [String] = []
    @Option(name: .customLong("imaps"), help: "Implicit-TLS IMAP listener HOST:PORT (repeatable).")
    var imaps: [String] = []
    @Option(name: .customLong("imap-proxy"), help: "IMAP listener that requires a PROXY v1/v2 header first.")
    var imapProxy: [String] = []
    @Option(help: "Store URL, e.g. postgres://mailhost@127.0.0.1:5432/mailhost.")
    var storage: String?
    @Option(help: "Password checks, tried in order: pam, db, or a list such as db,pam.")
    var auth: String?
    @Option(name: .customLong("pam-service"), help: "PAM service name (a file in /etc/pam.d).")
    var pamService: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain for IMAPS and STARTTLS.")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of the certificate.")
    var tlsKey: String?
    @Option(name: .customLong("proxy-trusted"), help: "Network (CIDR) allowed to send PROXY headers (repeatable).")
    var proxyTrusted: [String] = []
    @Option(help: "Prometheus /metrics listener HOST:PORT.")
    var metrics: String?
    @ArgumentParser.Flag(
        name: .customLong("allow-plaintext-auth"), inversion: .prefixedNo,
        help: "Accept LOGIN and AUTHENTICATE PLAIN without TLS from non-loopback addresses.")
    var allowPlaintextAuth: Bool?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "logfmt or json.")
    var logFormat: String?
    @Option(name: .customLong("max-connections"), help: ServerConfiguration.help(for: "max-connections"))
    var maxConnections: String?
    @Option(
        name: .customLong("max-connections-per-address"),
        help: ServerConfiguration.help(for: "max-connections-per-address")) var maxConnectionsPerAddress: String?
    @Option(
        name: .customLong("max-connections-per-user"), help: ServerConfiguration.help(for: "max-connections-per-user"))
    var maxConnectionsPerUser: String?
    @Option(name: .customLong("max-line-length"), help: ServerConfiguration.help(for: "max-line-length"))
    var maxLineLength: String?
    @Option(name: .customLong("max-literal-size"), help: ServerConfiguration.help(for: "max-literal-size"))
    var maxLiteralSize: String?
    @Option(name: .customLong("max-append-size"), help: ServerConfiguration.help(for: "max-append-size"))
    var maxAppendSize: String?
    @Option(name: .customLong("max-bad-commands"), help: ServerConfiguration.help(for: "max-bad-commands"))
    var maxBadCommands: String?
    @Option(name: .customLong("max-command-size"), help: ServerConfiguration.help(for: "max-command-size"))
    var maxCommandSize: String?
    @Option(
        name: .customLong("max-line-length-before-login"),
        help: ServerConfiguration.help(for: "max-line-length-before-login"))
    var maxLineLengthBeforeLogin: String?
    @Option(
        name: .customLong("max-literal-size-before-login"),
        help: ServerConfiguration.help(for: "max-literal-size-before-login"))
    var maxLiteralSizeBeforeLogin: String?
    @Option(name: .customLong("max-fetch-items"), help: ServerConfiguration.help(for: "max-fetch-items"))
    var maxFetchItems: String?
    @Option(name: .customLong("max-upload-memory"), help: ServerConfiguration.help(for: "max-upload-memory"))
    var maxUploadMemory: String?
    @Option(name: .customLong("pam-min-uid"), help: ServerConfiguration.help(for: "pam-min-uid"))
    var pamMinUID: String?
    @Option(name: .customLong("auth-cache-size"), help: ServerConfiguration.help(for: "auth-cache-size"))
    var authCacheSize: String?
    @Option(name: .customLong("qresync-retention"), help: ServerConfiguration.help(for: "qresync-retention"))
    var qresyncRetention: String?
    @Option(name: .customLong("idle-timeout"), help: ServerConfiguration.help(for: "idle-timeout")) var idleTimeout:
        String?
    @Option(name: .customLong("login-timeout"), help: ServerConfiguration.help(for: "login-timeout")) var loginTimeout:
        String?
    @Option(name: .customLong("login-penalty-cap"), help: ServerConfiguration.help(for: "login-penalty-cap"))
    var loginPenaltyCap: String?
    @Option(name: .customLong("shutdown-timeout"), help: ServerConfiguration.help(for: "shutdown-timeout"))
    var shutdownTimeout: String?
    @Option(name: .customLong("store-timeout"), help: ServerConfiguration.help(for: "store-timeout")) var storeTimeout:
        String?
    @Option(name: .customLong("lmtp"), help: "LMTP listener HOST:PORT or unix:/path (repeatable).")
    var lmtp: [String] = []
    @Option(name: .customLong("lmtp-domain"), help: "Domain delivered locally (repeatable; none: any domain).")
    var lmtpDomain: [String] = []
    @Option(name: .customLong("lmtp-hostname"), help: ServerConfiguration.help(for: "lmtp-hostname")) var lmtpHostname:
        String?
    @Option(name: .customLong("lmtp-max-recipients"), help: ServerConfiguration.help(for: "lmtp-max-recipients"))
    var lmtpMaxRecipients: String?
    @Option(name: .customLong("lmtp-max-connections"), help: ServerConfiguration.help(for: "lmtp-max-connections"))
    var lmtpMaxConnections: String?
    @Option(name: .customLong("lmtp-timeout"), help: ServerConfiguration.help(for: "lmtp-timeout")) var lmtpTimeout:
        String?
    @ArgumentParser.Flag(
        name: .customLong("lmtp-quota-temporary"), inversion: .prefixedNo,
        help: "Answer over-quota with 452 4.2.2 instead of 552 5.2.2.")
    var lmtpQuotaTemporary: Bool?

    /// What was given on the command line, by configuration key.
    var commandLine: [String: [String]] {
        var values: [String: [String]] = [
            "imap": imap, "imaps": imaps, "imap-proxy": imapProxy, "proxy-trusted": proxyTrusted, "lmtp": lmtp,
            "lmtp-domain": lmtpDomain,
        ]
        let singles: [String: String?] = [
            "storage": storage, "auth": auth, "pam-service": pamService, "tls-cert": tlsCert, "tls-key": tlsKey,
            "metrics": metrics, "log-level": logLevel, "log-format": logFormat,
            "allow-plaintext-auth": allowPlaintextAuth.map { $0 ? "true" : "false" },
            "max-connections": maxConnections, "max-connections-per-address": maxConnectionsPerAddress,
            "max-connections-per-user": maxConnectionsPerUser, "max-line-length": maxLineLength,
            "max-literal-size": maxLiteralSize, "max-append-size": maxAppendSize, "max-bad-commands": maxBadCommands,
            "max-command-size": maxCommandSize, "max-line-length-before-login": maxLineLengthBeforeLogin,
            "max-literal-size-before-login": maxLiteralSizeBeforeLogin, "max-fetch-items": maxFetchItems,
            "max-upload-memory": maxUploadMemory, "pam-min-uid": pamMinUID, "auth-cache-size": authCacheSize,
            "qresync-retention": qresyncRetention,
            "idle-timeout": idleTimeout, "login-timeout": loginTimeout, "login-penalty-cap": loginPenaltyCap,
            "shutdown-timeout": shutdownTimeout, "store-timeout": storeTimeout, "lmtp-hostname": lmtpHostname,
            "lmtp-max-recipients": lmtpMaxRecipients, "lmtp-max-connections": lmtpMaxConnections,
            "lmtp-timeout": lmtpTimeout,
            "lmtp-quota-temporary": lmtpQuotaTemporary.map { $0 ? "true" : "false" },
        ]
        for (key, value) in singles { if let value { values[key] = [value] } }
        return values
    }

    func load() throws -> ServerConfiguration {
        try ServerConfiguration.load(
            commandLine: commandLine, environment: ProcessInfo.processInfo.environment,
            file: config ?? ProcessInfo.processInfo.environment["MAILHOST_CONFIG"])
    }
}

/// `mailhost config check`: prints the effective configuration, or what is wrong with it.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Configuration.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration (command line > environment > file > defaults).",
            discussion: """
                Checks everything it can without starting: each value, the certificate and key (readable, and the \
                key the certificate's), the PAM service file when auth includes pam, and the storage setting; with \
                --connect also that the store answers and its schema suits this version. Exits 1 on any error.
                """)
        @OptionGroup var options: ServerOptions
        @ArgumentParser.Flag(help: "Also connect to the store and check its schema.")
        var connect = false

        func run() async throws {
            let configuration: ServerConfiguration
            do {
                configuration = try options.load()
                if let certificate = configuration.tlsCertificate, let key = configuration.tlsKey {
                    _ = try TLSCertificates(certificatePath: certificate, keyPath: key)
                }
            } catch let problem as ServerConfiguration.Problem {
                FileHandle.standardError.write(Data("configuration error: \(problem.description)\n".utf8))
                throw ExitCode(1)
            }
            print(configuration.description)
            let storage =
                configuration.storage ?? Storage.defaultSetting(environment: ProcessInfo.processInfo.environment)
            do {
                _ = try Storage.location(storage)
            } catch {
                FileHandle.standardError.write(Data("configuration error: storage: \(error)\n".utf8))
                throw ExitCode(1)
            }
            if configuration.storage == nil { print("# storage is not set: the embedded store \(storage)") }
            var failed = false
            func problem(_ text: String) {
                FileHandle.standardError.write(Data("configuration error: \(text)\n".utf8))
                failed = true
            }
            if configuration.auth.contains("pam") {
                let file = "/etc/pam.d/" + configuration.pamService
                if !FileManager.default.fileExists(atPath: file) {
                    problem("pam-service: \(file) does not exist (auth includes pam)")
                }
            }
            if connect, let outcome = await Self.connect(storage, timeout: configuration.storeTimeout) {
                problem("storage \(Storage.redacted(storage)): \(outcome)")
            } else if connect {
                print("# storage \(Storage.redacted(storage)): reachable, schema suits this version")
            }
            if failed { throw ExitCode(1) }
        }

        /// What is wrong with the store at `setting` for this version (nil: nothing). Opened as the tools open it:
        /// a SQLite file that does not exist yet is not made here.
        static func connect(_ setting: String, timeout: Duration) async -> String? {
            if case .sqlite(let path) = try? Storage.location(setting), !FileManager.default.fileExists(atPath: path) {
                return nil  // made on the server's first start
            }
            var logger = Logger(label: "config-check")
            logger.logLevel = .critical
            do {
                let backend = try Storage.open(
                    setting, options: Storage.Options(operationTimeout: timeout), logger: logger)
                switch try await backend.schema.state(logger: logger) {
                case .empty, .current: return nil
                case .behind(let current, let latest):
                    return "schema version \(current) is behind \(latest): run `mailadmin db migrate` first"
                case .ahead(let current, let latest):
                    return "schema version \(current) is newer than this version's \(latest): upgrade mailhost"
                }
            } catch {
                return "cannot connect: \(error)"
            }
        }
    }
}

/// `mailhost serve`: runs the IMAP listeners on a PostgreSQL store (README "Command lines").
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the IMAP server.")

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let settings: ServerConfiguration
        do {
            settings = try options.load()
        } catch let problem as ServerConfiguration.Problem {
            FileHandle.standardError.write(Data("configuration error: \(problem.description)\n".utf8))
            throw ExitCode(2)
        }
        let level = settings.logLevel
        let format: LineLogHandler.Format = settings.logFormat == "json" ? .json : .logfmt
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level, format: format) }
        let logger = Logger(label: "mailhost")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        // Without a storage setting, the embedded store: a SQLite file in the data directory, made on first start.
        let url = settings.storage ?? Storage.defaultSetting(environment: ProcessInfo.processInfo.environment)
        if settings.storage == nil { logger.notice("no storage configured: using \(url)") }
        let backend: any StoreBackend
        var certificates: TLSCertificates?
        var poolLogger = logger
        poolLogger.logLevel = max(level, .notice)
        do {
            if try Storage.createDirectory(of: url) { logger.notice("created the data directory for \(url)") }
            backend = try Storage.open(
                url,
                options: Storage.Options(
                    operationTimeout: settings.storeTimeout, separateSearchPool: true, serving: true),
                logger: logger, poolLogger: poolLogger)
            if let certificate = settings.tlsCertificate, let key = settings.tlsKey {
                certificates = try TLSCertificates(certificatePath: certificate, keyPath: key)
            }
            // Fail fast with a clear message when the database is unreachable or its schema is not ours.
            try await Self.prepareSchema(backend.schema, logger: logger)
        } catch {
            logger.critical("\(String(describing: error))")
            throw ExitCode(2)
        }
        let store = backend.mail
        let feed = ChangeFeed()
        let authenticator = Self.authenticator(
            settings.auth, credentials: backend.credentials, pamService: settings.pamService,
            pamMinimumUID: settings.pamMinimumUID, authCacheSize: settings.authCacheSize,
            logger: logger)
        let server = IMAPServerContext(
            store: store, feed: feed, authenticator: authenticator, limits: settings.limits, logger: logger,
            allowPlaintextAuth: settings.allowPlaintextAuth,
            connections: ConnectionRegistry(limits: settings.connectionLimits),
            penalty: LoginPenalty(cap: settings.loginPenaltyCap),
            messageBudget: MessageBudget(capacity: settings.uploadMemory),
            authenticationFailureTime: Self.authenticationFailureTime)

        // The store first: the group stops services in reverse order, so it outlives everything that uses it.
        var services: [any Service] = [
            StoreService(backend: backend, feed: feed),
            GarbageCollector(
                store: backend.maintenance, tombstoneRetention: .seconds(settings.qresyncRetentionDays * 86_400),
                logger: logger),
        ]
        if let certificates { services.append(CertificateReloader(certificates: certificates, logger: logger)) }
        if let metrics = settings.metrics {
            services.append(MetricsServer(address: metrics, registry: registry, logger: logger, onListening: { _ in }))
        }
        let listeners: [(IMAPListener.Kind, [ListenAddress])] = [
            (.imap, settings.imap), (.imaps, settings.imaps), (.imapProxy, settings.imapProxy),
        ]
        for (kind, addresses) in listeners {
            for address in addresses {
                services.append(
                    IMAPListener(
                        kind: kind, address: address, server: server, logger: logger, certificates: certificates,
                        proxyTrusted: settings.proxyTrusted, onListening: { _ in }))
            }
        }
        let delivery = LocalDelivery(
            store: store, domains: settings.lmtpDomains, provisionSystemUsers: settings.auth.contains("pam"),
            quotaTemporary: settings.lmtpQuotaTemporary, minimumUID: UInt32(clamping: settings.pamMinimumUID),
            logger: logger)
        for address in settings.lmtp {
            services.append(
                LMTPListener(
                    address: address, delivery: delivery,
                    settings: LMTPSession.Settings(
                        hostname: settings.lmtpHostname, maxMessageSize: settings.limits.maxAppendSize,
                        maxRecipients: settings.lmtpMaxRecipients, timeout: settings.lmtpTimeout),
                    maxConnections: settings.lmtpMaxConnections, budget: server.messageBudget, logger: logger,
                    onListening: { _ in }))
        }
        // Last, so that it is the first to hear of graceful shutdown (the group stops services in reverse order).
        services.append(ShutdownDeadline(timeout: settings.shutdownTimeout, logger: logger))
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // Running commands get the shutdown timeout less a second; what still runs is then cancelled, and
        // `ShutdownDeadline` ends the process at the timeout whatever is left.
        groupConfiguration.maximumGracefulShutdownDuration = max(
            .milliseconds(500), settings.shutdownTimeout - .seconds(1))
        groupConfiguration.maximumCancellationDuration = .milliseconds(500)
        try await ServiceGroup(configuration: groupConfiguration).run()
    }

    /// The `--auth` chain with one uniform failure time for all backends.
    static func authenticator(
        _ names: [String], credentials: any CredentialStore, pamService: String, pamMinimumUID: Int = 1000,
        authCacheSize: Int = 10_000, logger: Logger
    ) -> AuthenticatorChain {
        let verified = authCacheSize > 0 ? VerifiedLogins(capacity: authCacheSize) : nil
        let backends: [any Authenticator] = names.map { name -> any Authenticator in
            if name == "db" { return StoreAccountAuthenticator(store: credentials, verified: verified, logger: logger) }
            return PAMAuthentication(
                pam: PAMAuthenticator(
                    service: pamService, minimumFailureTime: .zero, minimumUID: UInt32(clamping: pamMinimumUID)),
                logger: logger)
        }
        return AuthenticatorChain(backends: backends, minimumFailureTime: authenticationFailureTime)
    }

    /// Every failed login takes at least this long, whatever failed (DESIGN.md §5).
    static let authenticationFailureTime: Duration = .seconds(1)

    /// Creates the schema in an empty store; refuses one this build does not match.
    static func prepareSchema(_ schema: any StoreSchema, logger: Logger) async throws {
        switch try await schema.prepare(logger: logger) {
        case (.current, _):
            return
        case (.empty, let applied):
            logger.notice("created the database schema", metadata: ["versions": "\(applied)"])
        case (.behind(let current, _), let applied) where !applied.isEmpty:
            logger.notice("migrated the database schema", metadata: ["from": "\(current)", "versions": "\(applied)"])
        case (.behind(let current, let latest), _):
            throw ServeError(
                "the database schema is at version \(current) but this mailhost needs version \(latest): "
                    + "run `mailadmin --storage URL db migrate` first")
        case (.ahead(let current, let latest), _):
            throw ServeError(
                "the database schema is at version \(current), newer than this mailhost knows (\(latest)): "
                    + "upgrade mailhost")
        }
    }
}

struct ServeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Ends the process `timeout` after graceful shutdown began, whatever is still running: SIGTERM must always stop the
/// server within `--shutdown-timeout` (a session stuck on a dead database once kept it alive for good). A thread, not
/// a task, so that it fires even when every task is stuck.
struct ShutdownDeadline: Service {
    let timeout: Duration
    let logger: Logger

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is ending anyway
        }
        let (timeout, logger) = (self.timeout, self.logger)
        Thread.detachNewThread {
            Thread.sleep(
                forTimeInterval: Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
            logger.warning("shutdown timeout reached with work still running; exiting")
            _exit(0)
        }
    }
}

/// Runs the store's background work (connection pools, the change feed into `feed`) as a service.
struct StoreService: Service {
    let backend: any StoreBackend
    let feed: ChangeFeed?
    func run() async throws {
        await cancelWhenGracefulShutdown { await backend.run(feed: feed) }
    }
}

/// Removes content no longer referenced, once an hour (DESIGN.md §4: content is stored once).
struct GarbageCollector: Service {
    let store: any StoreMaintenance
    /// How long expunges stay recorded for QRESYNC (`qresync-retention`).
    let tombstoneRetention: Duration
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
                    let removed = try await store.collectGarbage(
                        retention: Self.retention, tombstoneRetention: tombstoneRetention, logger: logger)
                    if removed > 0 { logger.info("garbage collected", metadata: ["contents": "\(removed)"]) }
                } catch {
                    logger.warning("garbage collection failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

/// Reloads the TLS certificate on SIGHUP without touching established connections.
struct CertificateReloader: Service {
    let certificates: TLSCertificates
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals { certificates.reload(logger: logger) }
        }
    }
}
