import Logging
import NIOCore
import Synchronization

/// One IMAP connection, run to its end by `run` (DESIGN.md §2): one task, one `Session`, client input and control
/// events (change feed, timers, shutdown) merged into one ordered stream.
///
/// The connection's state lives in this object rather than in its task's frames. The task that runs `run` lives as
/// long as the connection, and a Swift task keeps the stack slabs of its deepest chain of frames until it ends. So the
/// async functions on the way down to `SessionEventQueue.next` hold next to nothing across their suspensions (each
/// async frame is 48 to 256 bytes, read from the binary; the work between them is synchronous), and an idle
/// connection's task fits in about one slab of 1 KiB instead of five.
public final class IMAPConnection {
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

    private let channel: any Channel
    private let events: SessionEventQueue
    private let server: IMAPServerContext
    private let info: ConnectionInfo
    private let shutdown: ShutdownSignal?
    private let turns = TurnCancellation()
    private let signals: SessionSignals
    /// What the session is made with once the connection is admitted.
    private var upgrades: (tls: (any TLSUpgrade)?, compression: (any CompressionUpgrade)?, login: LoginState?)
    private var handoff: SessionHandoff?
    private var shutdownToken: Int?
    private var ticker: RepeatedTask?
    /// Where the connection's task and its turns run: the channel's event loop.
    private let executor: EventLoopTaskExecutor

    /// A connection to `run`. `events` must be the queue of the `SessionInputHandler` at the tail of the channel's
    /// pipeline, after the framing decoder.
    public init(
        channel: any Channel, events: SessionEventQueue, server: IMAPServerContext, info: ConnectionInfo,
        shutdown: ShutdownSignal? = nil, tls: (any TLSUpgrade)? = nil, compression: (any CompressionUpgrade)? = nil,
        login: LoginState? = nil
    ) {
        self.channel = channel
        self.events = events
        self.server = server
        self.info = info
        self.shutdown = shutdown
        self.upgrades = (tls, compression, login)
        executor = EventLoopTaskExecutor(channel.eventLoop)
        signals = SessionSignals(wake: { events.wake() })
    }

    /// Serves the connection until LOGOUT, autologout, a fatal error, the client leaving, or `shutdown`, then closes
    /// it.
    ///
    /// A connection over a limit, or arriving during shutdown, gets a `* BYE` greeting with the reason and is
    /// closed: the "reject connection" edge of RFC 9051 §3.
    ///
    /// The connection is read by `SessionInputHandler` on the event loop, not by a task; its close and an account
    /// being disabled are watched by callbacks; and each turn of the session (the greeting, one event, the last
    /// flush) runs in a task of its own that ends with it (about 10 KiB of frames for LOGIN or SELECT), while this
    /// task holds only its loop.
    public func run() async {
        SessionMetrics.connectionOpened()
        guard await becameActive(), admit() else {
            SessionMetrics.connectionClosed()
            return
        }
        start()
        // The task cancelled (the listener's group, on a forced stop): the current turn and every later one are
        // cancelled, and the loop ends. One handler here, not one per turn, keeps each turn's frames small.
        let (turns, events) = (self.turns, self.events)
        await withTaskCancellationHandler {
            await withTaskExecutorPreference(executor) { await serve() }
        } onCancel: {
            turns.cancel()
            events.finish()
        }
        stop()
        try? await channel.close()
    }

    /// Waits for `channelActive`: an accepted channel can reach its task before it is active, and a write fails then.
    private func becameActive() async -> Bool {
        guard let active = events.active else { return true }
        do {
            try await active.get()
            return true
        } catch {
            channel.close(promise: nil)
            return false
        }
    }

    /// Takes the connection into the counts, or refuses it with a `* BYE` greeting saying why and closes it.
    private func admit() -> Bool {
        let address = info.remoteAddress ?? "unknown"
        var refusal = server.connections.admit(address: address)
        if refusal == nil, shutdown?.isSignalled == true {
            server.connections.release(address: address, user: nil)
            refusal = "Server shutting down"
        }
        guard let refusal else { return true }
        server.logger.notice(
            "connection refused",
            metadata: ["imap.conn": "\(info.id)", "imap.peer": "\(address)", "reason": "\(refusal)"])
        let channel = self.channel
        channel.writeAndFlush(ByteBuffer(string: "* BYE [UNAVAILABLE] \(refusal).\r\n")).whenComplete { _ in
            channel.close(promise: nil)
        }
        return false
    }

    /// Makes the session and wires up what stops or wakes it.
    private func start() {
        let (signals, turns, events, channel) = (self.signals, self.turns, self.events, self.channel)
        shutdownToken = shutdown?.register { signals.post(.shutdown) }
        // The autologout tick is a timer on the connection's event loop, not a task that sleeps.
        ticker = channel.eventLoop.scheduleRepeatedTask(
            initialDelay: IMAPConnection.tickInterval, delay: IMAPConnection.tickInterval
        ) { _ in signals.post(.tick) }
        // The peer left (FIN or RST: remote half-closure is not enabled, so the end of input is the end): whatever
        // the session waits for, the store, a write or the next command, it stops now (DESIGN.md §7).
        channel.closeFuture.whenComplete { _ in
            turns.cancel()
            events.finish()
        }
        // Disabled or deleted account: a session between commands says BYE at once (a wake-up); one in the middle of
        // a command has `abortGrace` to end, then is cancelled and its connection closed. A session between commands
        // that has not come round to its BYE by then (a loaded machine) gets it said here: with no turn running,
        // nothing is half-written. One already saying it has longer to finish, for a client that does not read.
        let loop = channel.eventLoop
        signals.abort.whenOpen {
            loop.scheduleTask(in: IMAPConnection.abortGrace) {
                if signals.abortAnswered.isOpen {
                    loop.scheduleTask(in: IMAPConnection.abortGrace * 20) {
                        turns.cancel()
                        channel.close(promise: nil)
                    }
                    return
                }
                if !turns.isRunning {
                    channel.writeAndFlush(
                        channel.allocator.buffer(string: SessionSignals.disabledBye + "\r\n"), promise: nil)
                }
                turns.cancel()
                channel.close(promise: nil)
            }
        }
        handoff = SessionHandoff(
            Session(
                server: server, info: info, out: ResponseSink(channel: channel), signals: signals,
                tls: upgrades.tls, compression: upgrades.compression, login: upgrades.login))
        upgrades = (nil, nil, nil)
    }

    /// Greeting, then client input and signals in order until the session closes, the peer leaves, or the task is
    /// cancelled.
    private func serve() async {
        do {
            _ = try await turn(.greet)
            while let event = try await events.next() {
                if try await turn(.event(event)) == .close { break }
            }
            // The peer left, or the account was disabled mid-command: nothing more can be said.
            if !turns.isCancelled, !Task.isCancelled {
                _ = try await turn(.flush)
            }
        } catch {
            ended(by: error)
        }
    }

    /// Runs one turn of the session in a task of its own, so that its frames are freed when it ends.
    private func turn(_ turn: SessionHandoff.Turn) async throws -> Session.Outcome {
        guard let current = handoff else { return .close }
        let task = Task(executorPreference: executor) { await current.run(turn) }
        turns.begin(task)
        let done = await task.value
        turns.end()
        handoff = done.next
        return try done.outcome.get()
    }

    private func ended(by error: any Error) {
        server.logger.debug(
            "session ended", metadata: ["imap.conn": "\(info.id)", "error": "\(String(describing: error))"])
    }

    /// Takes the session off every count and stops its timer and watchers. The connection leaves the gauge before the
    /// session logs its disconnect line, so that whoever sees the line sees the counts without it.
    private func stop() {
        events.finish()
        SessionMetrics.connectionClosed()
        handoff?.take().cleanup()
        handoff = nil
        ticker?.cancel()
        if let shutdownToken { shutdown?.unregister(shutdownToken) }
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

    /// Whether a turn is running (between commands, none is: everything said has been flushed).
    var isRunning: Bool { state.withLock { $0.current != nil } }

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
