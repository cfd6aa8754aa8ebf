import Logging
import NIOCore
import Synchronization

/// Runs one IMAP connection to its end (DESIGN.md §2): one task, one `Session`, client input and control events
/// (change feed, timers, shutdown) merged into one ordered stream.
public enum IMAPConnection {
    /// How often the autologout timer looks at the session.
    static let tickInterval: Duration = .seconds(10)

    /// The name the framing decoder must have in the pipeline (COMPRESS=DEFLATE goes in front of it).
    public static let framingHandlerName = "imap-framing"

    /// The framing decoder an IMAP connection needs in front of `run` (TLS, when used, goes before it), to be added
    /// under `framingHandlerName`. Pass the gate of a connection that offers STARTTLS, and the one for COMPRESS.
    public static func makeFrameDecoder(
        limits: IMAPLimits, startTLS: StartTLSGate? = nil, compress: StartTLSGate? = nil, login: LoginState? = nil,
        budget: MessageBudget? = nil
    ) -> ByteToMessageHandler<IMAPFrameDecoder> {
        ByteToMessageHandler(
            IMAPFrameDecoder(limits: limits, startTLS: startTLS, compress: compress, login: login, budget: budget))
    }

    /// Serves the connection until LOGOUT, autologout, a fatal error, the client leaving, or `shutdown`.
    ///
    /// A connection over a limit, or arriving during shutdown, gets a `* BYE` greeting with the reason and is
    /// closed: the "reject connection" edge of RFC 9051 §3.
    public static func run(
        channel: NIOAsyncChannel<FramedInput, ByteBuffer>, server: IMAPServerContext, info: ConnectionInfo,
        shutdown: ShutdownSignal? = nil, tls: (any TLSUpgrade)? = nil, compression: (any CompressionUpgrade)? = nil,
        login: LoginState? = nil
    ) async {
        SessionMetrics.connectionOpened()
        defer { SessionMetrics.connectionClosed() }
        let address = info.remoteAddress ?? "unknown"
        var refusal = server.connections.admit(address: address)
        if refusal == nil, shutdown?.isSignalled == true {
            server.connections.release(address: address, user: nil)
            refusal = "Server shutting down"
        }
        if let refusal {
            server.logger.notice(
                "connection refused",
                metadata: ["imap.conn": "\(info.id)", "imap.peer": "\(address)", "reason": "\(refusal)"])
            try? await channel.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: "* BYE [UNAVAILABLE] \(refusal).\r\n"))
            }
            return
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                let signals = SessionSignals()
                let shutdownToken = shutdown?.register { signals.post(.shutdown) }
                defer { if let shutdownToken { shutdown?.unregister(shutdownToken) } }
                _ = await ConnectionLifetime.run(channel: channel.channel, abort: signals.abort) {
                    await serve(
                        inbound: inbound, outbound: outbound, signals: signals, server: server, info: info, tls: tls,
                        compression: compression, login: login)
                }
            }
        } catch {
            server.logger.debug(
                "connection ended", metadata: ["imap.conn": "\(info.id)", "error": "\(String(describing: error))"])
        }
    }

    /// The session's task: greeting, then client input and signals in order until the session closes or the task is
    /// cancelled (the peer left, or the account was disabled). The session is taken off every count on the way out.
    private static func serve(
        inbound: NIOAsyncChannelInboundStream<FramedInput>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        signals: SessionSignals, server: IMAPServerContext, info: ConnectionInfo, tls: (any TLSUpgrade)?,
        compression: (any CompressionUpgrade)?, login: LoginState?
    ) async {
        let sink = ResponseSink(writer: outbound)
        let session = Session(
            server: server, info: info, out: sink, signals: signals, tls: tls, compression: compression, login: login)
        defer { session.cleanup() }
        let events = SessionEventQueue()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: tickInterval)
                    signals.post(.tick)
                }
            }
            // Client input ends with `.clientClosed`, so the end of the input ends the session even though the
            // signals never finish.
            group.addTask {
                do {
                    for try await input in inbound { await events.deliver(.client(input)) }
                    await events.deliver(.clientClosed)
                } catch {
                    events.finish(throwing: error)
                }
            }
            group.addTask {
                for await _ in signals.wakes { events.wake() }
            }
            defer {
                events.finish()
                group.cancelAll()
            }
            do {
                try await session.greet()
                while let event = try await events.next() {
                    if try await session.handle(event) == .close { break }
                }
                // Cancelled (the peer left, or the account was disabled mid-command): nothing more can be said.
                guard !Task.isCancelled else { return }
                try await sink.flush()
            } catch {
                server.logger.debug(
                    "session ended", metadata: ["imap.conn": "\(info.id)", "error": "\(String(describing: error))"])
            }
        }
    }
}

/// Lets the server tell every live session to say BYE and end (graceful shutdown, DESIGN.md §2).
public final class ShutdownSignal: Sendable {
    private struct State {
        var nextID = 0
        var signalled = false
        var actions: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Registers a session's BYE action; it runs at once when the signal was already given.
    func register(_ action: @escaping @Sendable () -> Void) -> Int {
        let (id, signalled) = state.withLock { state in
            state.nextID += 1
            state.actions[state.nextID] = action
            return (state.nextID, state.signalled)
        }
        if signalled { action() }
        return id
    }

    func unregister(_ id: Int) { state.withLock { _ = $0.actions.removeValue(forKey: id) } }

    /// Asks every registered session to finish its current command, send BYE and close.
    public func signal() {
        let actions = state.withLock { state in
            state.signalled = true
            return Array(state.actions.values)
        }
        for action in actions { action() }
    }

    public var sessionCount: Int { state.withLock { $0.actions.count } }

    public var isSignalled: Bool { state.withLock { $0.signalled } }
}
