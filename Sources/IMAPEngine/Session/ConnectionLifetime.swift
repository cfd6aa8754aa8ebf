import NIOCore
import Synchronization

/// A one-way gate that tasks can wait on: `open()` releases every waiter, now and later. Waiting also ends when the
/// waiting task is cancelled, which `EventLoopFuture.get()` would not do.
public final class Latch: Sendable {
    private enum State {
        case closed(waiters: [Int: CheckedContinuation<Void, Never>], nextID: Int)
        case open
    }

    private let state = Mutex(State.closed(waiters: [:], nextID: 0))

    public init() {}

    /// Tasks waiting now (for tests).
    var waiterCount: Int {
        state.withLock { state in
            if case .closed(let waiters, _) = state { return waiters.count }
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
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard case .closed(let waiters, _) = state else { return [] }
            state = .open
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the latch is open or the calling task is cancelled.
    public func wait() async {
        let id = state.withLock { state -> Int? in
            guard case .closed(let waiters, let nextID) = state else { return nil }
            state = .closed(waiters: waiters, nextID: nextID + 1)
            return nextID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard case .closed(var waiters, let nextID) = state else { return true }
                    if Task.isCancelled { return true }
                    waiters[id] = continuation
                    state = .closed(waiters: waiters, nextID: nextID)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard case .closed(var waiters, let nextID) = state else { return nil }
                let waiter = waiters.removeValue(forKey: id)
                state = .closed(waiters: waiters, nextID: nextID)
                return waiter
            }
            waiter?.resume()
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
        let closed = Latch()
        channel.closeFuture.whenComplete { _ in closed.open() }
        return await withTaskGroup(of: End.self) { group in
            group.addTask {
                await work()
                return .finished
            }
            group.addTask {
                await closed.wait()
                return .peerClosed
            }
            if let abort {
                group.addTask {
                    await abort.wait()
                    try? await Task.sleep(for: abortGrace)
                    return .aborted
                }
            }
            let first = await group.next() ?? .finished
            group.cancelAll()
            return first
        }
    }
}
