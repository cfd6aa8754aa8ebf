import Foundation
import Glibc
import IMAPEngine
import LMTPProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Where LMTP listens: `HOST:PORT` or `unix:/path`.
enum LMTPAddress: Sendable, CustomStringConvertible {
    case tcp(ListenAddress)
    case unix(String)

    init(parsing text: String) throws {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { throw ConfigurationError("expected unix:/absolute/path, got \(text)") }
            self = .unix(path)
        } else {
            self = .tcp(try ListenAddress(parsing: text))
        }
    }

    var description: String {
        switch self {
        case .tcp(let address): address.description
        case .unix(let path): "unix:\(path)"
        }
    }
}

/// Accepts LMTP connections from the MTA (RFC 2033) on the same event loops as IMAP.
struct LMTPListener: Service {
    let address: LMTPAddress
    let delivery: LocalDelivery
    let settings: LMTPSession.Settings
    let maxConnections: Int
    /// The process's memory for messages being received, shared with IMAP APPEND.
    let budget: MessageBudget?
    let logger: Logger
    let onListening: @Sendable (String) -> Void

    struct Accepted: Sendable {
        var channel: NIOAsyncChannel<LMTPInput, ByteBuffer>
        var framer: LMTPFramerControl
    }

    func run() async throws {
        let maxSize = settings.maxMessageSize
        let budget = self.budget
        let timeout = TimeAmount.nanoseconds(Int64(settings.timeout.components.seconds) * 1_000_000_000)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Accepted> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let framer = LMTPFramer(maxMessageSize: maxSize, budget: budget)
                try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: timeout))
                try channel.pipeline.syncOperations.addHandler(framer)
                let wrapped = try NIOAsyncChannel<LMTPInput, ByteBuffer>(wrappingChannelSynchronously: channel)
                return Accepted(
                    channel: wrapped,
                    framer: LMTPFramerControl(framer: NIOLoopBound(framer, eventLoop: channel.eventLoop)))
            }
        }
        let channel: NIOAsyncChannel<Accepted, Never>
        switch address {
        case .tcp(let tcp):
            channel = try await ListenFailure.naming("lmtp", address.description) {
                try await bootstrap.bind(host: tcp.host, port: tcp.port, childChannelInitializer: initializer)
            }
        case .unix(let path):
            try? FileManager.default.removeItem(atPath: path)  // a stale socket from an earlier run
            channel = try await ListenFailure.naming("lmtp", address.description) {
                try await bootstrap.bind(
                    unixDomainSocketPath: path, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            }
            // Connecting needs write permission: open it to the MTA's user as Dovecot does (mode 0666); who may reach
            // it is decided by the directory it sits in.
            chmod(path, 0o666)
        }
        var bound = address.description
        if case .tcp(let tcp) = address {
            bound = ListenAddress(host: tcp.host, port: channel.channel.localAddress?.port ?? tcp.port).description
        }
        logger.info("listening", metadata: ["lmtp": "\(bound)"])
        onListening(bound)
        let open = OpenConnections()
        try await withGracefulShutdownHandler {
            try await channel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await accepted in inbound {
                        let count = open.add(1)
                        group.addTask {
                            defer { _ = open.add(-1) }
                            await serve(accepted, refuse: count > maxConnections)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            channel.channel.close(promise: nil)
        }
    }

    private func serve(_ accepted: Accepted, refuse: Bool) async {
        let peer = accepted.channel.channel.remoteAddress?.ipAddress
        var logger = self.logger
        logger[metadataKey: "lmtp.peer"] = "\(peer ?? "local")"
        do {
            try await accepted.channel.executeThenClose { inbound, outbound in
                if refuse {
                    try await outbound.write(ByteBuffer(string: "421 4.3.2 Too many connections, try again later\r\n"))
                    return
                }
                // The session ends as soon as the client does, even in the middle of a delivery (whose result then
                // has nobody to go to: the MTA retries, as RFC 5321 §6.1 expects of a lost reply).
                let (delivery, settings, framer, logger) = (self.delivery, self.settings, accepted.framer, logger)
                _ = await ConnectionLifetime.run(channel: accepted.channel.channel) {
                    let session = LMTPSession(
                        delivery: delivery, settings: settings, out: outbound, framer: framer, peer: peer,
                        logger: logger)
                    do {
                        try await session.greet()
                        for try await input in inbound {
                            if try await session.handle(input) == .close { break }
                        }
                    } catch {
                        logger.debug("LMTP session ended", metadata: ["error": "\(error)"])
                    }
                }
                logger.debug("LMTP disconnect")
            }
        } catch {
            logger.debug("LMTP connection ended", metadata: ["error": "\(error)"])
        }
    }
}

/// The number of open LMTP connections.
final class OpenConnections: Sendable {
    private let count = Mutex(0)
    func add(_ delta: Int) -> Int {
        count.withLock { count in
            count += delta
            return count
        }
    }
}
