import Synchronization

/// The session's one sequence of events: client input and wake-ups from its `SessionSignals`.
///
/// It replaces AsyncAlgorithms' `merge`, whose storage takes its lock before `withUnsafeThrowingContinuation` and
/// releases it inside the closure, trusting the closure to run at once on the same thread. Swift 6.0 to 6.3 may
/// re-enqueue the task first (swift-async-algorithms #430): the lock is then held by a suspended task and the next
/// thread to take it blocks for good. Under the imaptest mix that stopped a whole instance. Here every lock is taken
/// and released inside one synchronous block, and continuations are resumed after it.
///
/// Client input keeps its backpressure: `deliver` returns only when the session has taken the event, so the
/// connection is read one frame ahead at most. Wake-ups coalesce into one pending flag (the signals hold the details).
final class SessionEventQueue: Sendable {
    private struct State {
        var pending: SessionEvent?
        var producer: CheckedContinuation<Void, Never>?
        var wake = false
        var consumer: CheckedContinuation<SessionEvent?, any Error>?
        /// Nil while open; `.some(nil)` when finished, `.some(error)` when the input failed.
        var end: (any Error)??
    }

    private let state = Mutex(State())

    /// Hands one client event to the session; returns once the session has taken it, or the queue has finished.
    func deliver(_ event: SessionEvent) async {
        await withCheckedContinuation { (producer: CheckedContinuation<Void, Never>) in
            let consumer: CheckedContinuation<SessionEvent?, any Error>?? = state.withLock { state in
                if state.end != nil { return .some(nil) }
                if let consumer = state.consumer {
                    state.consumer = nil
                    return .some(consumer)
                }
                state.pending = event
                state.producer = producer
                return .none
            }
            guard let consumer else { return }  // waits until `next` takes the event
            consumer?.resume(returning: event)
            producer.resume()
        }
    }

    /// Whether a delivery is waiting for the session to take its event (for tests).
    var isHoldingDelivery: Bool { state.withLock { $0.producer != nil } }

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

    /// No more events: `error` nil for an orderly end. A waiting `deliver` returns, a waiting `next` gets nil (or
    /// the error).
    func finish(throwing error: (any Error)? = nil) {
        let (consumer, producer) = state.withLock {
            state -> (CheckedContinuation<SessionEvent?, any Error>?, CheckedContinuation<Void, Never>?) in
            if state.end == nil { state.end = .some(error) }
            state.pending = nil  // the released delivery's event is dropped with it
            defer { (state.consumer, state.producer) = (nil, nil) }
            return (state.consumer, state.producer)
        }
        producer?.resume()
        if let error {
            consumer?.resume(throwing: error)
        } else {
            consumer?.resume(returning: nil)
        }
    }

    /// The next event (a pending wake-up first, then client input), nil after `finish`. One consumer only. Ends
    /// the queue when the waiting task is cancelled.
    func next() async throws -> SessionEvent? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (consumer: CheckedContinuation<SessionEvent?, any Error>) in
                enum Action {
                    case answer(SessionEvent?, CheckedContinuation<Void, Never>?)
                    case fail(any Error)
                    case wait
                }
                let action: Action = state.withLock { state in
                    if state.wake {
                        state.wake = false
                        return .answer(.signalled, nil)
                    }
                    if let event = state.pending {
                        state.pending = nil
                        defer { state.producer = nil }
                        return .answer(event, state.producer)
                    }
                    if let end = state.end {
                        if let error = end { return .fail(error) }
                        return .answer(nil, nil)
                    }
                    state.consumer = consumer
                    return .wait
                }
                switch action {
                case .answer(let event, let producer):
                    producer?.resume()
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
