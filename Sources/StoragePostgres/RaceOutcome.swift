import Synchronization

/// The first result offered wins; later ones are ignored. One task waits for it (`PostgresMailStore.race`).
final class RaceOutcome<T: Sendable>: Sendable {
    private enum State {
        case pending(CheckedContinuation<T, any Error>?)
        case done(Result<T, any Error>)
    }

    private let state = Mutex(State.pending(nil))

    func finish(_ result: Result<T, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard case .pending(let waiter) = state else { return nil }
            state = .done(result)
            return waiter
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<T, any Error>? in
                switch state {
                case .pending:
                    state = .pending(continuation)
                    return nil
                case .done(let result):
                    return result
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// Whether a write has reached the database (`PostgresMailStore.write`).
final class WriteProgress: Sendable {
    private let reached = Atomic<Bool>(false)

    var reachedDatabase: Bool { reached.load(ordering: .acquiring) }

    func markReached() { reached.store(true, ordering: .releasing) }
}
