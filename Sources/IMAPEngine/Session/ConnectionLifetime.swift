import NIOCore
import Synchronization

/// A one-way gate: `open()` runs every action registered, and any registered later runs at once.
public final class Latch: Sendable {
    private enum State {
        case closed(actions: [@Sendable () -> Void])
        case open
    }

    private let state = Mutex(State.closed(actions: []))

    public init() {}

    public var isOpen: Bool {
        state.withLock { state in
            if case .open = state { return true }
            return false
        }
    }

    public func open() {
        let actions = state.withLock { state -> [@Sendable () -> Void] in
            guard case .closed(let actions) = state else { return [] }
            state = .open
            return actions
        }
        for action in actions { action() }
    }

    /// Runs `action` once the latch opens: at once when it is open already. Costs no task while it waits.
    public func whenOpen(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            guard case .closed(var actions) = state else { return true }
            actions.append(action)
            state = .closed(actions: actions)
            return false
        }
        if runNow { action() }
    }
}

/// Runs a connection's work so that it ends as soon as the peer does (DESIGN.md §7: "a peer can vanish at any
/// byte"). A FIN or RST closes the channel (remote half-closure is not enabled, so end of input is the end), and the
/// work is cancelled at once, whatever it is waiting for: the client's next command, the store, or a write.
/// Returns how the connection ended. (LMTP's sessions; IMAP's do the same per command, `IMAPConnection.run`.)
public enum ConnectionLifetime {
    public enum End: Sendable, Equatable {
        /// The work returned (LOGOUT, QUIT, autologout, a fatal error).
        case finished
        /// The channel closed under the work: the peer left.
        case peerClosed
    }

    public static func run(
        channel: any Channel, _ work: @escaping @Sendable () async -> Void
    ) async -> End {
        // The channel is watched by a callback, not by a task of its own: an idle connection holds one task here, the
        // work's (each task keeps the memory of its deepest call chain for as long as it lives).
        let first = FirstEnd()
        channel.closeFuture.whenComplete { _ in first.record(.peerClosed) }
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
