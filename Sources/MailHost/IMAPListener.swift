import Glibc
import IMAPEngine
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ProxyProtocol
import ServiceLifecycle
import Synchronization

/// A host and port to listen on, parsed from `HOST:PORT` (`[::1]:143` for IPv6; port 0 picks a free port).
struct ListenAddress: Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":") else { throw ConfigurationError("expected HOST:PORT, got \(text)") }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigurationError("expected HOST:PORT with a port from 0 to 65535, got \(text)")
        }
        self.host = host
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Accepts IMAP connections on one address and runs each as an `IMAPConnection` (DESIGN.md §2: NIO's epoll event
/// loops for I/O, one task per connection). On graceful shutdown it stops accepting and asks every session to say
/// BYE; it returns once they have all ended.
struct IMAPListener: Service {
    enum Kind: String, Sendable {
        /// Plain IMAP; STARTTLS when a certificate is configured.
        case imap
        /// Implicit TLS (RFC 8314).
        case imaps
        /// Plain IMAP behind a load balancer: a PROXY v1/v2 header first, from a trusted network only.
        case imapProxy = "imap-proxy"
    }

    let kind: Kind
    let address: ListenAddress
    let server: IMAPServerContext
    let logger: Logger
    let certificates: TLSCertificates?
    let proxyTrusted: [NetworkRange]
    let shutdown = ShutdownSignal()
    /// Reports the bound address once listening (port 0 resolves to the real port).
    let onListening: @Sendable (ListenAddress) -> Void

    private static let connectionCounter = Atomic<Int>(0)

    /// What the child channel initializer hands to the accept loop.
    struct Accepted: Sendable {
        var channel: any Channel
        var events: SessionEventQueue
        var proxied: EventLoopFuture<ProxyProtocolHandler.Client>?
        var gate: StartTLSGate?
        var compress: StartTLSGate
        var login: LoginState
    }

    func run() async throws {
        let limits = server.limits
        let budget = server.messageBudget
        let kind = self.kind
        let certificates = self.certificates
        let trusted = proxyTrusted
        let channel = try await ListenFailure.naming(kind.rawValue, address.description) {
            try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                // Each connection keeps its last receive buffer for the next read. Commands are short: start at 512
                // bytes, not NIO's 2,048, which an idle connection would hold for hours; uploads grow it as before.
                .childChannelOption(
                    .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65536)
                )
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        var proxied: EventLoopFuture<ProxyProtocolHandler.Client>?
                        var gate: StartTLSGate?
                        switch kind {
                        case .imaps:
                            if let certificates {
                                try pipeline.addHandler(NIOSSLServerHandler(context: certificates.current))
                            }
                        case .imapProxy:
                            let promise = channel.eventLoop.makePromise(of: ProxyProtocolHandler.Client.self)
                            try pipeline.addHandler(ProxyProtocolHandler(address: promise, trusted: trusted))
                            proxied = promise.futureResult
                            if certificates != nil { gate = StartTLSGate() }
                        case .imap:
                            if certificates != nil { gate = StartTLSGate() }
                        }
                        let login = LoginState()
                        let compress = StartTLSGate()
                        try pipeline.addHandler(
                            IMAPConnection.makeFrameDecoder(
                                limits: limits, startTLS: gate, compress: compress, login: login, budget: budget),
                            name: IMAPConnection.framingHandlerName)
                        let input = SessionInputHandler(eventLoop: channel.eventLoop)
                        try pipeline.addHandler(input)
                        return Accepted(
                            channel: channel, events: input.events, proxied: proxied, gate: gate, compress: compress,
                            login: login)
                    }
                }
        }
        let bound = ListenAddress(host: address.host, port: channel.channel.localAddress?.port ?? address.port)
        logger.info("listening", metadata: [kind.rawValue: "\(bound)"])
        onListening(bound)

        try await withGracefulShutdownHandler {
            try await channel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in inbound {
                        group.addTask { await serve(accepted) }
                    }
                }
            }
        } onGracefulShutdown: {
            logger.info("stopping listener", metadata: [kind.rawValue: "\(bound)"])
            channel.channel.close(promise: nil)
            shutdown.signal()
        }
    }

    /// Kept out of line, and holding only the connection while it runs: the task group's closure would otherwise
    /// carry a larger frame for the connection's whole life (see `IMAPConnection`).
    @inline(never)
    private func serve(_ accepted: Accepted) async {
        guard let connection = await connection(for: accepted) else { return }
        await connection.run()
    }

    /// The connection for `accepted`, once its PROXY header (if it needs one) has named the client; nil when the
    /// header was refused.
    @inline(never)
    private func connection(for accepted: Accepted) async -> IMAPConnection? {
        let id = Self.connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        guard let proxied = accepted.proxied else { return connection(accepted, id: id, client: nil) }
        guard let client = await proxyClient(proxied, accepted: accepted, id: id) else { return nil }
        return connection(accepted, id: id, client: client)
    }

    /// The client a PROXY header names, or nil (logged, and the connection closed) when the header is refused.
    private func proxyClient(
        _ proxied: EventLoopFuture<ProxyProtocolHandler.Client>, accepted: Accepted, id: Int
    ) async -> ProxyProtocolHandler.Client? {
        do {
            return try await proxied.get()
        } catch {
            refused(accepted, id: id, error: error)
            return nil
        }
    }

    private func refused(_ accepted: Accepted, id: Int, error: any Error) {
        logger.log(
            level: error is ProxyProtocolHandler.ClosedSilently ? .debug : .notice,
            "PROXY header refused",
            metadata: [
                "imap.conn": "\(id)", "imap.peer": "\(accepted.channel.remoteAddress?.ipAddress ?? "-")",
                "error": "\(error)",
            ])
        accepted.channel.close(promise: nil)
    }

    /// The connection for `accepted`: made here, synchronously, so that none of this lands in the frames of the
    /// connection's long-lived task (see `IMAPConnection`).
    private func connection(
        _ accepted: Accepted, id: Int, client: ProxyProtocolHandler.Client?
    ) -> IMAPConnection {
        let peer = accepted.channel.remoteAddress
        var remote = peer?.ipAddress
        var loopback = Self.isLoopback(peer)
        var secure = kind == .imaps
        if let client {
            if let address = client.address {
                remote = address
                loopback = address.hasPrefix("127.") || address == "::1"
            }
            secure = client.tls
        }
        var upgrade: (any TLSUpgrade)?
        if let gate = accepted.gate, let certificates {
            upgrade = StartTLSUpgrade(channel: accepted.channel, gate: gate, certificates: certificates)
        }
        return IMAPConnection(
            channel: accepted.channel, events: accepted.events, server: server,
            info: ConnectionInfo(id: String(id), remoteAddress: remote, isLoopback: loopback, isSecure: secure),
            shutdown: shutdown, tls: upgrade,
            compression: DeflateUpgrade(channel: accepted.channel, gate: accepted.compress), login: accepted.login)
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let ip = address?.ipAddress else { return address?.pathname != nil }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}

/// A listener that could not bind, in words: which listener, which address, and why (NIO's error names only the
/// system call).
struct ListenFailure: Error, CustomStringConvertible {
    var kind: String
    var address: String
    var error: any Error

    var description: String {
        guard let io = error as? IOError else { return "cannot listen on \(kind)=\(address): \(error)" }
        var reason = String(cString: strerror(io.errnoCode))
        switch io.errnoCode {
        case EACCES: reason += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        case EADDRINUSE: reason += " (another process listens there)"
        case EADDRNOTAVAIL: reason += " (no interface of this machine has that address)"
        default: break
        }
        return "cannot listen on \(kind)=\(address): \(reason)"
    }

    /// Runs `bind`, naming the listener and its address in any error.
    static func naming<T>(_ kind: String, _ address: String, _ bind: () async throws -> T) async throws -> T {
        do {
            return try await bind()
        } catch {
            throw ListenFailure(kind: kind, address: address, error: error)
        }
    }
}
