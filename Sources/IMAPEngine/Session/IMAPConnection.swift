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

    /// How long a session whose account was disabled may take to end by itself (between commands it says BYE at
    /// once) before its command is cancelled and the connection closed.
    static let abortGrace: TimeAmount = .milliseconds(250)

    /// Serves the connection until LOGOUT, autologout, a fatal error, the client leaving, or `shutdown`, then closes
    /// it. `events` must be the queue of the `SessionInputHandler` at the tail of the channel's pipeline, after the
    /// framing decoder.
    ///
    /// A connection over a limit, or arriving during shutdown, gets a `* BYE` greeting with the reason and is
    /// closed: the "reject connection" edge of RFC 9051 §3.
    ///
    /// One task serves the connection, the caller's: a Swift task keeps the memory of its deepest call chain for as
    /// long as it lives, and an idle connection should cost little more than its socket. So the connection is read
    /// by `SessionInputHandler` on the event loop, not by a task; its close and an account being disabled are watched by
    /// callbacks; and each turn of the session (the greeting, one event, the last flush) runs in a task of its own
    /// that ends with it (about 10 KiB of frames for LOGIN or SELECT), while this task holds only its loop.
    public static func run(
        channel: any Channel, events: SessionEventQueue, server: IMAPServerContext, info: ConnectionInfo,
        shutdown: ShutdownSignal? = nil, tls: (any TLSUpgrade)? = nil, compression: (any CompressionUpgrade)? = nil,
        login: LoginState? = nil
    ) async {
        SessionMetrics.connectionOpened()
        defer { SessionMetrics.connectionClosed() }
        do {
            try await events.active?.get()
        } catch {
            try? await channel.close()
            return
        }
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
            try? await channel.writeAndFlush(ByteBuffer(string: "* BYE [UNAVAILABLE] \(refusal).\r\n"))
            try? await channel.close()
            return
        }
        let signals = SessionSignals(wake: { events.wake() })
        let shutdownToken = shutdown?.register { signals.post(.shutdown) }
        defer { if let shutdownToken { shutdown?.unregister(shutdownToken) } }
        // The autologout tick is a timer on the connection's event loop, not a task that sleeps.
        let ticker = channel.eventLoop.scheduleRepeatedTask(initialDelay: tickInterval, delay: tickInterval) { _ in
            signals.post(.tick)
        }
        defer { ticker.cancel() }
        // The peer left (FIN or RST: remote half-closure is not enabled, so the end of input is the end): whatever
        // the session waits for, the store, a write or the next command, it stops now (DESIGN.md §7).
        let turns = TurnCancellation()
        channel.closeFuture.whenComplete { _ in
            turns.cancel()
            events.finish()
        }
        // Disabled or deleted account: a session between commands says BYE at once (a wake-up); one in the middle of
        // a command has `abortGrace` to end, then is cancelled and its connection closed.
        let loop = channel.eventLoop
        signals.abort.whenOpen {
            loop.scheduleTask(in: abortGrace) {
                turns.cancel()
                channel.close(promise: nil)
            }
        }
        await serve(
            channel: channel, events: events, signals: signals, turns: turns, server: server, info: info, tls: tls,
            compression: compression, login: login)
        try? await channel.close()
    }

    /// Greeting, then client input and signals in order until the session closes, the peer leaves, or the task is
    /// cancelled. The session is taken off every count on the way out.
    private static func serve(
        channel: any Channel, events: SessionEventQueue, signals: SessionSignals, turns: TurnCancellation,
        server: IMAPServerContext, info: ConnectionInfo, tls: (any TLSUpgrade)?,
        compression: (any CompressionUpgrade)?, login: LoginState?
    ) async {
        var handoff = SessionHandoff(
            Session(
                server: server, info: info, out: ResponseSink(channel: channel), signals: signals, tls: tls,
                compression: compression, login: login))
        func run(_ turn: SessionHandoff.Turn) async throws -> Session.Outcome {
            let current = handoff
            let task = Task { await current.run(turn) }
            turns.begin(task)
            let done = await withTaskCancellationHandler {
                await task.value
            } onCancel: {
                task.cancel()
            }
            turns.end()
            handoff = done.next
            return try done.outcome.get()
        }
        do {
            _ = try await run(.greet)
            while let event = try await events.next() {
                if try await run(.event(event)) == .close { break }
            }
            // The peer left, or the account was disabled mid-command: nothing more can be said.
            if !turns.isCancelled, !Task.isCancelled {
                _ = try await run(.flush)
            }
        } catch {
            server.logger.debug(
                "session ended", metadata: ["imap.conn": "\(info.id)", "error": "\(String(describing: error))"])
        }
        events.finish()
        handoff.take().cleanup()
    }
}

/// The task running the session's current turn, for the callbacks that stop it (the peer left, the account was
/// disabled). Once cancelled, every later turn is cancelled as it starts.
final class TurnCancellation: Sendable {
    private struct State {
        var cancelled = false
        var current: Task<SessionHandoff.Step, Never>?
    }

    private let state = Mutex(State())

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func begin(_ task: Task<SessionHandoff.Step, Never>) {
        let cancelled = state.withLock { state -> Bool in
            state.current = task
            return state.cancelled
        }
        if cancelled { task.cancel() }
    }

    func end() {
        state.withLock { $0.current = nil }
    }

    func cancel() {
        let current = state.withLock { state -> Task<SessionHandoff.Step, Never>? in
            state.cancelled = true
            return state.current
        }
        current?.cancel()
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
