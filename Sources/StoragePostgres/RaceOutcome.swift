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

/// Whether a write has reached the database, decided once between the attempt and its caller
/// (`PostgresMailStore.write`): the attempt marks it before its first statement, the caller when it gives up.
final class WriteProgress: Sendable {
    private static let pending: UInt8 = 0
    private static let reached: UInt8 = 1
    private static let abandoned: UInt8 = 2
    private let state = Atomic<UInt8>(WriteProgress.pending)

    /// The attempt is about to send: false when the caller already gave up (then it must send nothing).
    func markReached() -> Bool {
        let (exchanged, original) = state.compareExchange(
            expected: Self.pending, desired: Self.reached, ordering: .acquiringAndReleasing)
        return exchanged || original == Self.reached
    }

    /// The caller gives up (or the attempt failed): true when the attempt had already reached the database.
    func abandon() -> Bool {
        let (exchanged, original) = state.compareExchange(
            expected: Self.pending, desired: Self.abandoned, ordering: .acquiringAndReleasing)
        return !exchanged && original == Self.reached
    }
}
