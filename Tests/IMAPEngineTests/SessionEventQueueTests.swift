import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import IMAPEngine

/// The session's event queue and the handler that fills it: client input keeps its backpressure (the socket is read
/// again only once the session took what came), wake-ups coalesce and come first, the end of the input follows the
/// input, and finishing or cancelling releases whoever waits and drops what is buffered.
@Suite(.timeLimit(.minutes(1)))
struct SessionEventQueueTests {
    static func line(_ text: String, _ reservation: MessageBudget.Reservation? = nil) -> FramedInput {
        .line(Array(text.utf8), reservation)
    }

    static func isLine(_ event: SessionEvent?, _ text: String) -> Bool {
        if case .client(.line(let bytes, _)) = event { return bytes == Array(text.utf8) }
        return false
    }

    /// Counts the reads that reach the socket (the head of the pipeline).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    @Test func theSocketIsReadAgainOnlyWhenTheSessionTookEverything() async throws {
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        let input = SessionInputHandler(eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(input)
        let queue = input.events

        channel.read()
        #expect(counter.reads == 1, "nothing waits: the read goes through")
        try channel.writeInbound(Self.line("a1 NOOP"))
        try channel.writeInbound(Self.line("a2 NOOP"))
        channel.read()
        #expect(counter.reads == 1, "two commands wait: the read is held")
        #expect(queue.isHoldingRead)

        #expect(Self.isLine(try await queue.next(), "a1 NOOP"))
        channel.embeddedEventLoop.run()
        #expect(counter.reads == 1, "one command still waits")
        #expect(Self.isLine(try await queue.next(), "a2 NOOP"))
        channel.embeddedEventLoop.run()
        #expect(counter.reads == 2, "the session took everything: the held read goes through")
        #expect(!queue.isHoldingRead)
        _ = try channel.finish()
    }

    @Test func anOfferGoesStraightToAWaitingSession() async throws {
        let queue = SessionEventQueue()
        let consumer = Task { try await queue.next() }
        while !queue.hasWaitingConsumer { await Task.yield() }
        queue.offer(Self.line("a1 NOOP"))
        #expect(Self.isLine(try await consumer.value, "a1 NOOP"))
        #expect(queue.bufferedCount == 0)
    }

    @Test func wakeUpsCoalesceAndComeFirst() async throws {
        let queue = SessionEventQueue()
        queue.offer(Self.line("a1 NOOP"))
        queue.wake()
        queue.wake()
        queue.wake()
        guard case .signalled = try await queue.next() else {
            Issue.record("a pending wake-up comes first")
            return
        }
        #expect(Self.isLine(try await queue.next(), "a1 NOOP"))
        queue.finish()
        #expect(try await queue.next() == nil)
    }

    @Test func theEndOfTheInputFollowsTheInput() async throws {
        let queue = SessionEventQueue()
        queue.offer(Self.line("a1 NOOP"))
        queue.endInput()
        #expect(Self.isLine(try await queue.next(), "a1 NOOP"))
        guard case .clientClosed = try await queue.next() else {
            Issue.record("the end of the input comes after it")
            return
        }
        #expect(try await queue.next() == nil)

        let waiting = SessionEventQueue()
        let consumer = Task { try await waiting.next() }
        while !waiting.hasWaitingConsumer { await Task.yield() }
        waiting.endInput()
        guard case .clientClosed = try await consumer.value else {
            Issue.record("a waiting session hears the end of the input")
            return
        }
    }

    @Test func finishingDropsBufferedInputAndItsUploadMemory() async throws {
        let budget = MessageBudget(capacity: 1 << 20)
        let queue = SessionEventQueue()
        queue.offer(Self.line("a1 APPEND INBOX {5}\r\nhello", budget.reserve(messageBytes: 5)))
        #expect(budget.inUse > 0)
        queue.finish()
        #expect(budget.inUse == 0, "the APPEND nobody will run gives its memory back")
        #expect(try await queue.next() == nil)
        queue.offer(Self.line("a2 NOOP"))  // after the end: dropped
        #expect(queue.bufferedCount == 0)
        let mayRead = queue.mayRead(orResume: {})
        #expect(mayRead, "a finished queue holds no read")
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
        queue.offer(Self.line("a1 NOOP"))  // the queue is finished: dropped
        #expect(queue.bufferedCount == 0)
    }
}
