import NIOCore
import Synchronization

/// The session's one sequence of events: client input, put here by `SessionInputHandler` on the event loop, and
/// wake-ups from its `SessionSignals`.
///
/// No task reads the connection. The handler at the tail of the pipeline offers each framed input, and holds the
/// socket's next read while input is waiting: the session asks for more only by taking all of it. That is the
/// backpressure a reader task and NIOAsyncChannel gave, without the task (each task of an idle connection costs a
/// few KiB). Wake-ups coalesce into one pending flag (the signals hold the details) and come before input.
///
/// Every lock is taken and released inside one synchronous block, and continuations are resumed after it (the
/// merge of swift-async-algorithms did otherwise, and a lock held by a suspended task stopped a whole instance).
public final class SessionEventQueue: Sendable {
    private struct State {
        /// Input not yet taken, from `head` on.
        var input: [FramedInput] = []
        var head = 0
        var wake = false
        /// The client's input has ended (FIN or RST): `.clientClosed` follows what is buffered.
        var inputEnded = false
        var consumer: CheckedContinuation<SessionEvent?, any Error>?
        /// Nil while open; `.some(nil)` when finished, `.some(error)` when the input failed.
        var end: (any Error)??
        /// The handler holds a read until the session has taken everything; this asks for it.
        var heldRead: (@Sendable () -> Void)?

        var isEmpty: Bool { head == input.count }

        mutating func takeInput() -> FramedInput {
            let taken = input[head]
            head += 1
            if head == input.count {
                input.removeAll(keepingCapacity: input.count <= 16)
                head = 0
            }
            return taken
        }
    }

    private let state = Mutex(State())
    /// Succeeds once the channel is active (an accepted channel can reach the session a moment before: writes to it
    /// would fail), fails if it closes first.
    /// Nil for a queue without a channel (tests).
    public var active: EventLoopFuture<Void>? { activePromise?.futureResult }
    fileprivate let activePromise: EventLoopPromise<Void>?

    /// A queue for `SessionInputHandler` on `eventLoop`.
    init(eventLoop: any EventLoop) {
        activePromise = eventLoop.makePromise()
    }

    /// A queue without a channel, for tests.
    init() {
        activePromise = nil
    }

    // MARK: the handler's side (on the event loop)

    /// One framed input from the client; dropped when the queue has finished.
    func offer(_ input: FramedInput) {
        let consumer = state.withLock { state -> CheckedContinuation<SessionEvent?, any Error>? in
            guard state.end == nil else { return nil }
            if let consumer = state.consumer, state.isEmpty, !state.wake {
                state.consumer = nil
                return consumer
            }
            state.input.append(input)
            return nil
        }
        consumer?.resume(returning: .client(input))
    }

    /// The socket wants to read. Returns true when it may (nothing is waiting for the session); otherwise the read
    /// is held, and `resume` is called once the session has taken everything (or never, if the queue finishes).
    func mayRead(orResume resume: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            if state.isEmpty || state.end != nil { return true }
            state.heldRead = resume
            return false
        }
    }

    /// The client's input ended: the session gets `.clientClosed` after the input still buffered.
    func endInput() {
        let consumer = state.withLock { state -> CheckedContinuation<SessionEvent?, any Error>? in
            guard state.end == nil, !state.inputEnded else { return nil }
            state.inputEnded = true
            guard let consumer = state.consumer, state.isEmpty, !state.wake else { return nil }
            state.consumer = nil
            state.end = .some(nil)
            return consumer
        }
        consumer?.resume(returning: .clientClosed)
    }

    // MARK: the session's side

    /// Input waiting for the session (for tests).
    var bufferedCount: Int { state.withLock { $0.input.count - $0.head } }

    /// Whether the session waits in `next` (for tests).
    var hasWaitingConsumer: Bool { state.withLock { $0.consumer != nil } }

    /// Whether the handler holds a read (for tests).
    var isHoldingRead: Bool { state.withLock { $0.heldRead != nil } }

    /// Something is pending in the session's signals.
    func wake() {
        let consumer = state.withLock { state -> CheckedContinuation<SessionEvent?, any Error>? in
            guard state.end == nil else { return nil }
            if let consumer = state.consumer {
                state.consumer = nil
                return consumer
            }
            state.wake = true
            return nil
        }
        consumer?.resume(returning: .signalled)
    }

    /// No more events: `error` nil for an orderly end. Buffered input is dropped (its upload memory with it), a
    /// waiting `next` gets nil (or the error).
    func finish(throwing error: (any Error)? = nil) {
        let consumer = state.withLock { state -> CheckedContinuation<SessionEvent?, any Error>? in
            if state.end == nil { state.end = .some(error) }
            state.input = []
            state.head = 0
            state.heldRead = nil
            defer { state.consumer = nil }
            return state.consumer
        }
        if let error {
            consumer?.resume(throwing: error)
        } else {
            consumer?.resume(returning: nil)
        }
    }

    /// The next event (a pending wake-up first, then client input, then `.clientClosed` once the input ended), nil
    /// after `finish`. One consumer only. Ends the queue when the waiting task is cancelled.
    func next() async throws -> SessionEvent? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (consumer: CheckedContinuation<SessionEvent?, any Error>) in
                enum Action {
                    case answer(SessionEvent?, resume: (@Sendable () -> Void)?)
                    case fail(any Error)
                    case wait
                }
                let action: Action = state.withLock { state in
                    if let end = state.end {
                        if let error = end { return .fail(error) }
                        return .answer(nil, resume: nil)
                    }
                    if state.wake {
                        state.wake = false
                        return .answer(.signalled, resume: nil)
                    }
                    if !state.isEmpty {
                        let input = state.takeInput()
                        guard state.isEmpty else { return .answer(.client(input), resume: nil) }
                        defer { state.heldRead = nil }
                        return .answer(.client(input), resume: state.heldRead)
                    }
                    if state.inputEnded {
                        state.end = .some(nil)
                        return .answer(.clientClosed, resume: nil)
                    }
                    state.consumer = consumer
                    return .wait
                }
                switch action {
                case .answer(let event, let resume):
                    resume?()
                    consumer.resume(returning: event)
                case .fail(let error):
                    consumer.resume(throwing: error)
                case .wait:
                    break
                }
            }
        } onCancel: {
            finish()
        }
    }
}

/// The tail of an IMAP connection's pipeline (after the framing decoder): hands each framed input to the session's
/// `SessionEventQueue`, and passes the socket's reads on only while the session has nothing waiting.
public final class SessionInputHandler: ChannelDuplexHandler {
    public typealias InboundIn = FramedInput
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Where this handler puts the input: give it to `IMAPConnection.run`.
    public let events: SessionEventQueue

    private var activated = false

    /// A handler with a queue of its own, for a channel of `eventLoop`.
    public init(eventLoop: any EventLoop) {
        events = SessionEventQueue(eventLoop: eventLoop)
    }

    public func channelActive(context: ChannelHandlerContext) {
        activate(succeeded: true)
        context.fireChannelActive()
    }

    private func activate(succeeded: Bool) {
        guard !activated else { return }
        activated = true
        if succeeded {
            events.activePromise?.succeed()
        } else {
            events.activePromise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        events.offer(unwrapInboundIn(data))
    }

    public func channelInactive(context: ChannelHandlerContext) {
        activate(succeeded: false)
        events.endInput()
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        events.finish(throwing: error)
    }

    /// Asks the socket for the read that was held; made once per connection (a cycle, broken in `handlerRemoved`).
    private var resume: (@Sendable () -> Void)?

    public func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        resume = { loop.execute { bound.value.read() } }
        if context.channel.isActive { activate(succeeded: true) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        resume = nil
        activate(succeeded: false)
    }

    public func read(context: ChannelHandlerContext) {
        guard let resume else { return context.read() }
        if events.mayRead(orResume: resume) { context.read() }
    }
}
