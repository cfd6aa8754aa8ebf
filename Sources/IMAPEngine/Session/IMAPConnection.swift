import Logging
import NIOCore
import Synchronization

/// Runs one IMAP connection to its end (DESIGN.md §2): one task, one `Session`, client input and control events
/// (change feed, timers, shutdown) merged into one ordered stream.
public enum IMAPConnection {
    /// How often the autologout timer looks at the session.
    static let tickInterval: TimeAmount = .seconds(10)

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
                let events = SessionEventQueue()
                let signals = SessionSignals(wake: { events.wake() })
                let shutdownToken = shutdown?.register { signals.post(.shutdown) }
                defer { if let shutdownToken { shutdown?.unregister(shutdownToken) } }
                // The autologout tick is a timer on the connection's event loop, not a task that sleeps.
                let ticker = channel.channel.eventLoop.scheduleRepeatedTask(
                    initialDelay: tickInterval, delay: tickInterval
                ) { _ in signals.post(.tick) }
                defer { ticker.cancel() }
                _ = await ConnectionLifetime.run(channel: channel.channel, abort: signals.abort) {
                    await serve(
                        inbound: inbound, outbound: outbound, events: events, signals: signals, server: server,
                        info: info, tls: tls, compression: compression, login: login)
                }
            }
        } catch {
            server.logger.debug(
                "connection ended", metadata: ["imap.conn": "\(info.id)", "error": "\(String(describing: error))"])
        }
    }

    /// The session's task: greeting, then client input and signals in order until the session closes or the task is
    /// cancelled (the peer left, or the account was disabled). The session is taken off every count on the way out.
    ///
    /// Each turn (the greeting, one event, the last flush) runs in a child task of its own, which ends with it. A
    /// Swift task keeps the memory of its deepest call chain for as long as it lives: a session that ran LOGIN,
    /// SELECT or FETCH and then idles for hours would otherwise hold that (about 10 KiB) all the while. Between
    /// turns this task holds only its loop, and the session waits in a `SessionHandoff`.
    private static func serve(
        inbound: NIOAsyncChannelInboundStream<FramedInput>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        events: SessionEventQueue, signals: SessionSignals, server: IMAPServerContext, info: ConnectionInfo,
        tls: (any TLSUpgrade)?, compression: (any CompressionUpgrade)?, login: LoginState?
    ) async {
        var handoff = SessionHandoff(
            Session(
                server: server, info: info, out: ResponseSink(writer: outbound), signals: signals, tls: tls,
                compression: compression, login: login))
        func run(_ turn: SessionHandoff.Turn) async throws -> Session.Outcome {
            let current = handoff
            async let step = current.run(turn)
            let done = await step
            handoff = done.next
            return try done.outcome.get()
        }
        await withTaskGroup(of: Void.self) { group in
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
            defer {
                events.finish()
                group.cancelAll()
            }
            do {
                _ = try await run(.greet)
                while let event = try await events.next() {
                    if try await run(.event(event)) == .close { break }
                }
                // Cancelled (the peer left, or the account was disabled mid-command): nothing more can be said.
                guard !Task.isCancelled else { return }
                _ = try await run(.flush)
            } catch {
                server.logger.debug(
                    "session ended", metadata: ["imap.conn": "\(info.id)", "error": "\(String(describing: error))"])
            }
        }
        handoff.take().cleanup()
    }
}

/// A session on its way from one task to the next. A turn takes it out, runs, and hands it on in a new handoff with
/// its outcome, so only one task ever holds it; the compiler checks each hand-over (`sending` into and out of the
/// `Mutex`), and taking it twice stops the process rather than share it.
final class SessionHandoff: Sendable {
    enum Turn: Sendable {
        case greet
        case event(SessionEvent)
        /// Writes what is still buffered, after the last event.
        case flush
    }

    struct Step: Sendable {
        var outcome: Result<Session.Outcome, any Error>
        var next: SessionHandoff
    }

    private let slot: Mutex<Session?>

    init(_ session: sending Session) {
        slot = Mutex(session)
    }

    func take() -> sending Session {
        guard let session = slot.withLock({ $0.take() }) else {
            preconditionFailure("a session was handed on twice")
        }
        return session
    }

    /// Runs `turn` on the session; the step carries the session on, whatever the outcome.
    func run(_ turn: Turn) async -> Step {
        let session = take()
        let outcome: Result<Session.Outcome, any Error>
        do {
            switch turn {
            case .greet:
                try await session.greet()
                outcome = .success(.keepGoing)
            case .event(let event):
                outcome = .success(try await session.handle(event))
            case .flush:
                try await session.out.flush()
                outcome = .success(.close)
            }
        } catch {
            outcome = .failure(error)
        }
        return Step(outcome: outcome, next: SessionHandoff(session))
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
