import Synchronization
import Testing

@testable import IMAPEngine

/// The session's event queue: client input keeps its backpressure (a delivery returns only once the session took
/// it), wake-ups coalesce, and finishing or cancelling releases whoever waits.
@Suite(.timeLimit(.minutes(1)))
struct SessionEventQueueTests {
    static func line(_ text: String) -> SessionEvent { .client(.line(Array(text.utf8))) }

    static func isLine(_ event: SessionEvent?, _ text: String) -> Bool {
        if case .client(.line(let bytes, _)) = event { return bytes == Array(text.utf8) }
        return false
    }

    @Test func aDeliveryWaitsUntilTheSessionTakesIt() async throws {
        let queue = SessionEventQueue()
        let delivered = Atomic<Int>(0)
        let producer = Task {
            await queue.deliver(Self.line("a1 NOOP"))
            delivered.add(1, ordering: .sequentiallyConsistent)
            await queue.deliver(Self.line("a2 NOOP"))
            delivered.add(1, ordering: .sequentiallyConsistent)
        }
        #expect(Self.isLine(try await queue.next(), "a1 NOOP"))
        // The second event is handed over but not taken: the producer stays in `deliver`.
        while !queue.isHoldingDelivery { await Task.yield() }
        #expect(delivered.load(ordering: .sequentiallyConsistent) == 1)
        #expect(Self.isLine(try await queue.next(), "a2 NOOP"))
        await producer.value
        #expect(delivered.load(ordering: .sequentiallyConsistent) == 2)
    }

    @Test func wakeUpsCoalesceAndComeFirst() async throws {
        let queue = SessionEventQueue()
        let producer = Task { await queue.deliver(Self.line("a1 NOOP")) }
        queue.wake()
        queue.wake()
        queue.wake()
        guard case .signalled = try await queue.next() else {
            Issue.record("a pending wake-up comes first")
            return
        }
        #expect(Self.isLine(try await queue.next(), "a1 NOOP"))
        await producer.value
        queue.finish()
        #expect(try await queue.next() == nil)
    }

    @Test func finishingReleasesAWaitingDeliveryAndEndsTheSequence() async throws {
        let queue = SessionEventQueue()
        let producer = Task { await queue.deliver(Self.line("a1 NOOP")) }
        while !queue.isHoldingDelivery { await Task.yield() }
        queue.finish()
        await producer.value  // returns although nobody took the event
        #expect(try await queue.next() == nil)
        await queue.deliver(Self.line("a2 NOOP"))  // after the end: returns at once
    }

    @Test func aFailedInputIsThrownToTheSession() async throws {
        struct Broken: Error {}
        let queue = SessionEventQueue()
        queue.finish(throwing: Broken())
        await #expect(throws: Broken.self) { try await queue.next() }
    }

    @Test func cancellingTheWaitingSessionEndsTheQueue() async throws {
        let queue = SessionEventQueue()
        let consumer = Task { try await queue.next() }
        consumer.cancel()
        #expect(try await consumer.value == nil)
        await queue.deliver(Self.line("a1 NOOP"))  // the queue is finished: returns at once
    }
}
