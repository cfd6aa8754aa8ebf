import IMAPEngine
import Logging
import NIOCore
import NIOPosix
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
/// loops for I/O, one task per connection). On graceful shutdown it stops accepting and asks every session to say BYE.
struct IMAPListener: Service {
    let address: ListenAddress
    let server: IMAPServerContext
    let logger: Logger
    let shutdown = ShutdownSignal()
    /// Reports the bound address once listening (port 0 resolves to the real port).
    let onListening: @Sendable (ListenAddress) -> Void

    private static let connectionCounter = Atomic<Int>(0)

    func run() async throws {
        let limits = server.limits
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IMAPConnection.makeFrameDecoder(limits: limits))
                    return try NIOAsyncChannel<FramedInput, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let bound = ListenAddress(host: address.host, port: channel.channel.localAddress?.port ?? address.port)
        logger.info("listening", metadata: ["imap": "\(bound)"])
        onListening(bound)

        try await withGracefulShutdownHandler {
            try await channel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        let id = Self.connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
                        let remote = connection.channel.remoteAddress
                        let info = ConnectionInfo(
                            id: String(id), remoteAddress: remote?.ipAddress, isLoopback: Self.isLoopback(remote),
                            isSecure: false)
                        group.addTask {
                            await IMAPConnection.run(
                                channel: connection, server: server, info: info, shutdown: shutdown)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            logger.info("stopping listener", metadata: ["imap": "\(bound)"])
            channel.channel.close(promise: nil)
            shutdown.signal()
        }
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let ip = address?.ipAddress else { return address?.pathname != nil }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}
