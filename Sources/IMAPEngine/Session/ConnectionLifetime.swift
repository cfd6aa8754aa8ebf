import NIOCore
import Synchronization

/// A one-way gate: `open()` releases every waiter and runs every action, now and later. Waiting also ends when the
/// waiting task is cancelled, which `EventLoopFuture.get()` would not do.
public final class Latch: Sendable {
    private enum State {
        case closed(actions: [Int: @Sendable () -> Void], nextID: Int)
        case open
    }

    private let state = Mutex(State.closed(actions: [:], nextID: 0))

    public init() {}

    /// Waiters and actions registered now (for tests).
    var waiterCount: Int {
        state.withLock { state in
            if case .closed(let actions, _) = state { return actions.count }
            return 0
        }
    }

    public var isOpen: Bool {
        state.withLock { state in
            if case .open = state { return true }
            return false
        }
    }

    public func open() {
        let actions = state.withLock { state -> [@Sendable () -> Void] in
            guard case .closed(let actions, _) = state else { return [] }
            state = .open
            return Array(actions.values)
        }
        for action in actions { action() }
    }

    /// Runs `action` once the latch opens: at once when it is open already. Costs no task while it waits.
    public func whenOpen(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            guard case .closed(var actions, let nextID) = state else { return true }
            actions[nextID] = action
            state = .closed(actions: actions, nextID: nextID + 1)
            return false
        }
        if runNow { action() }
    }

    /// Returns once the latch is open or the calling task is cancelled.
    public func wait() async {
        let id = state.withLock { state -> Int? in
            guard case .closed(let actions, let nextID) = state else { return nil }
            state = .closed(actions: actions, nextID: nextID + 1)
            return nextID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard case .closed(var actions, let nextID) = state else { return true }
                    if Task.isCancelled { return true }
                    actions[id] = { continuation.resume() }
                    state = .closed(actions: actions, nextID: nextID)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> (@Sendable () -> Void)? in
                guard case .closed(var actions, let nextID) = state else { return nil }
                let waiter = actions.removeValue(forKey: id)
                state = .closed(actions: actions, nextID: nextID)
                return waiter
            }
            waiter?()
        }
    }
}

/// Runs a connection's work so that it ends as soon as the peer does (DESIGN.md §7: "a peer can vanish at any
/// byte"). A FIN or RST closes the channel (remote half-closure is not enabled, so end of input is the end), and the
/// work is cancelled at once, whatever it is waiting for: the client's next command, the store, or a write.
/// When `abort` opens, the work gets `abortGrace` to end by itself (a session between commands says BYE), then it
/// is cancelled too. Returns how the connection ended.
public enum ConnectionLifetime {
    public enum End: Sendable, Equatable {
        /// The work returned (LOGOUT, QUIT, autologout, a fatal error).
        case finished
        /// The channel closed under the work: the peer left.
        case peerClosed
        /// `abort` was opened (an administrator disabled the account).
        case aborted
    }

    public static func run(
        channel: any Channel, abort: Latch? = nil, abortGrace: Duration = .milliseconds(250),
        _ work: @escaping @Sendable () async -> Void
    ) async -> End {
        // The channel and the latch are watched by callbacks, not by tasks of their own: an idle connection holds one
        // task here, the work's (each task keeps the memory of its deepest call chain for as long as it lives).
        let first = FirstEnd()
        channel.closeFuture.whenComplete { _ in first.record(.peerClosed) }
        if let abort {
            let loop = channel.eventLoop
            abort.whenOpen {
                loop.scheduleTask(in: .nanoseconds(Int64(abortGrace / .nanoseconds(1)))) { first.record(.aborted) }
            }
        }
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await work()
                first.record(.finished)
            }
            let end = await first.wait()
            group.cancelAll()
            return end
        }
    }
}

/// The first of the ways a connection's work can end; the others that follow are ignored.
private final class FirstEnd: Sendable {
    private struct State {
        var end: ConnectionLifetime.End?
        var waiter: CheckedContinuation<ConnectionLifetime.End, Never>?
    }

    private let state = Mutex(State())

    func record(_ end: ConnectionLifetime.End) {
        let waiter = state.withLock { state -> CheckedContinuation<ConnectionLifetime.End, Never>? in
            guard state.end == nil else { return nil }
            state.end = end
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: end)
    }

    /// Returns the first end recorded. The work always records one (`.finished` at the latest, and a cancelled
    /// parent cancels the work), so this needs no cancellation handler of its own.
    func wait() async -> ConnectionLifetime.End {
        await withCheckedContinuation { (continuation: CheckedContinuation<ConnectionLifetime.End, Never>) in
            let end = state.withLock { state -> ConnectionLifetime.End? in
                if let end = state.end { return end }
                state.waiter = continuation
                return nil
            }
            if let end { continuation.resume(returning: end) }
        }
    }
}
