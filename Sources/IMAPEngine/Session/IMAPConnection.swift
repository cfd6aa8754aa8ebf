import AsyncAlgorithms
import Logging
import NIOCore

/// Runs one IMAP connection to its end (DESIGN.md §2): one task, one `Session`, client input and control events
/// (change feed, timers, shutdown) merged into one ordered stream.
public enum IMAPConnection {
    /// How often the autologout timer looks at the session.
    static let tickInterval: Duration = .seconds(10)

    /// The channel handlers an IMAP connection needs in front of `run` (the caller adds TLS before them).
    public static func makeFrameDecoder(limits: IMAPLimits) -> ByteToMessageHandler<IMAPFrameDecoder> {
        ByteToMessageHandler(IMAPFrameDecoder(limits: limits))
    }

    /// Serves the connection until LOGOUT, autologout, a fatal error, the client leaving, or `shutdown` being
    /// signalled through the returned handle.
    public static func run(
        channel: NIOAsyncChannel<FramedInput, ByteBuffer>, server: IMAPServerContext, info: ConnectionInfo,
        shutdown: ShutdownSignal? = nil
    ) async {
        do {
            try await channel.executeThenClose { inbound, outbound in
                let (control, continuation) = AsyncStream.makeStream(
                    of: ControlEvent.self, bufferingPolicy: .bufferingNewest(32))
                let sink = ResponseSink(writer: outbound)
                let session = Session(server: server, info: info, out: sink, control: continuation)
                defer { session.cleanup() }
                let shutdownToken = shutdown?.register { continuation.yield(.shutdown) }
                defer { if let shutdownToken { shutdown?.unregister(shutdownToken) } }

                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: tickInterval)
                            continuation.yield(.tick)
                        }
                    }
                    defer { group.cancelAll() }
                    try await session.greet()
                    let events = merge(
                        inbound.map { SessionEvent.client($0) }, control.map { SessionEvent.control($0) })
                    for try await event in events {
                        if try await session.handle(event) == .close { break }
                    }
                    try await sink.flush()
                }
            }
        } catch {
            server.logger.debug(
                "connection ended", metadata: ["imap.conn": "\(info.id)", "error": "\(String(describing: error))"])
        }
    }
}

/// Lets the server tell every live session to say BYE and end (graceful shutdown, DESIGN.md §2).
public final class ShutdownSignal: Sendable {
    private let registry = ChangeFeed()
    private static let key = AccountID(rawValue: 0)

    public init() {}

    func register(_ action: @escaping @Sendable () -> Void) -> ChangeFeed.Registration {
        registry.register(account: Self.key) { _ in action() }
    }

    func unregister(_ registration: ChangeFeed.Registration) { registry.unregister(registration) }

    /// Asks every registered session to finish its current command, send BYE and close.
    public func signal() { registry.publishResyncToAll() }

    public var sessionCount: Int { registry.registrationCount }
}
