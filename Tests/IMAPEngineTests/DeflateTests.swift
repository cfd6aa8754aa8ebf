import NIOCore
import NIOEmbedded
import Testing

@testable import IMAPEngine

/// COMPRESS=DEFLATE's codec and channel handler (RFC 4978): round trips, bad input, and inflation only on demand.
struct DeflateTests {
    static func randomText(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in
            let n = generator.next() % 40
            return n < 26 ? UInt8(ascii: "a") + UInt8(n) : (n < 34 ? 32 : (n < 38 ? 10 : UInt8(n)))
        }
    }

    static func inflateAll(_ inflater: Inflater, _ compressed: [UInt8]) throws -> [UInt8] {
        var input = ByteBuffer(bytes: compressed)
        var output: [UInt8] = []
        while true {
            let (piece, more) = try inflater.decompress(&input, limit: 4096, allocator: ByteBufferAllocator())
            output += piece.readableBytesView
            if !more { return output }
        }
    }

    @Test func roundTripsAtBothWindowSizes() throws {
        for (bits, level) in [(Deflater.serverWindowBits, Deflater.serverMemLevel), (15, 8)] {
            let deflater = try Deflater(windowBits: bits, memLevel: level)
            let inflater = try Inflater()
            for size in [0, 1, 100, 70_000, 1_000_000] {
                let text = Self.randomText(size)
                let compressed = try deflater.compress(ByteBuffer(bytes: text), allocator: ByteBufferAllocator())
                // Each call is flushed: the peer inflates all of it without waiting for more.
                #expect(try Self.inflateAll(inflater, Array(compressed.readableBytesView)) == text)
                if size == 1_000_000 { #expect(compressed.readableBytes < size * 3 / 4) }
            }
        }
    }

    @Test func invalidInputThrows() throws {
        let inflater = try Inflater()
        #expect(throws: DeflateError.self) { try Self.inflateAll(inflater, [0xFF, 0xFF, 0xFF]) }
    }

    /// A handler toward the tail that passes `read` on only when allowed, the way NIOAsyncChannel holds reads back
    /// while its buffer is full.
    final class ReadGate: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var allowed = 0
        var held = 0
        func read(context: ChannelHandlerContext) {
            if allowed > 0 {
                allowed -= 1
                context.read()
            } else {
                held += 1
            }
        }
    }

    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += unwrapInboundIn(data).readableBytesView
        }
    }

    @Test func inflatesOnePiecePerRead() throws {
        let channel = EmbeddedChannel()
        let gate = ReadGate()
        let collector = Collector()
        try channel.pipeline.syncOperations.addHandlers([
            DeflateHandler(deflater: try Deflater(), inflater: try Inflater()), gate, collector,
        ])
        // 16 MiB of one byte compresses to about 16 KiB.
        let text = [UInt8](repeating: UInt8(ascii: "A"), count: 16 << 20)
        let compressed = try Deflater(windowBits: 15, memLevel: 8).compress(
            ByteBuffer(bytes: text), allocator: ByteBufferAllocator())
        #expect(compressed.readableBytes < 64 * 1024)
        try channel.writeInbound(compressed)
        channel.embeddedEventLoop.run()
        // One piece for the read that brought the data; the handler's own request for more is held by the gate.
        #expect(collector.bytes.count == DeflateHandler.pieceSize)
        #expect(gate.held >= 1)
        gate.allowed = 1
        channel.read()
        channel.embeddedEventLoop.run()
        #expect(collector.bytes.count == 2 * DeflateHandler.pieceSize)
        // With reads let through, the rest arrives, whole.
        gate.allowed = Int.max
        channel.read()
        channel.embeddedEventLoop.run()
        #expect(collector.bytes == text)
        _ = try channel.finish()
    }

    @Test func writesAreCompressedAndFlushed() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            DeflateHandler(deflater: try Deflater(), inflater: try Inflater()))
        let inflater = try Inflater()
        var received: [UInt8] = []
        for line in ["* OK one\r\n", "* OK two\r\n", String(repeating: "* 1 FETCH (FLAGS (\\Seen))\r\n", count: 500)] {
            try channel.writeAndFlush(ByteBuffer(string: line)).wait()
            let out = try #require(try channel.readOutbound(as: ByteBuffer.self))
            received += try Self.inflateAll(inflater, Array(out.readableBytesView))
            #expect(received.suffix(line.utf8.count) == Array(line.utf8))
        }
        _ = try channel.finish()
    }
}
