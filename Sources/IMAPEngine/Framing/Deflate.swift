import CZlib
import NIOCore

/// A zlib failure on a COMPRESS=DEFLATE stream: the stream is unusable and the connection ends.
public struct DeflateError: Error, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public var description: String { "zlib error \(code): \(message)" }
}

/// A z_stream at a stable address, set up by `initialize` (deflateInit2 or inflateInit2); freed again if that fails.
private func zStream(_ name: String, _ initialize: (UnsafeMutablePointer<z_stream>) -> Int32) throws(DeflateError)
    -> UnsafeMutablePointer<z_stream>
{
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let status = initialize(stream)
    guard status == Z_OK else {
        stream.deinitialize(count: 1)
        stream.deallocate()
        throw DeflateError(code: status, message: "\(name) failed")
    }
    return stream
}

/// The raw DEFLATE stream (RFC 1951, no zlib header) the server sends under COMPRESS=DEFLATE (RFC 4978 §4).
///
/// Memory: zlib takes `2^(windowBits+2) + 2^(memLevel+9)` bytes plus about 6 KiB for a deflate stream; with the
/// server's window of 2^13 and memLevel 6 that is 64 KiB. A smaller window than the 32 KiB maximum costs a little
/// compression (IMAP responses repeat within a few KiB) and the client's inflater accepts any window size.
public final class Deflater {
    /// The server's parameters (see `docs/limits.md`).
    public static let serverWindowBits: Int32 = 13
    public static let serverMemLevel: Int32 = 6
    /// What one deflate stream of the server holds in zlib.
    public static var serverMemory: Int {
        (1 << (Int(serverWindowBits) + 2)) + (1 << (Int(serverMemLevel) + 9)) + 6 * 1024
    }

    private let stream: UnsafeMutablePointer<z_stream>

    public init(level: Int32 = 6, windowBits: Int32 = Deflater.serverWindowBits, memLevel: Int32 = serverMemLevel)
        throws(DeflateError)
    {
        // Negative window bits: raw DEFLATE, as RFC 4978 requires.
        stream = try zStream("deflateInit2") { mailhost_deflate_init($0, level, -windowBits, memLevel) }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `input` and flushes (Z_SYNC_FLUSH) so that the peer can inflate all of it now: every response
    /// batch the server writes reaches the client whole.
    public func compress(_ input: ByteBuffer, allocator: ByteBufferAllocator) throws(DeflateError) -> ByteBuffer {
        var output = allocator.buffer(capacity: Int(deflateBound(stream, uLong(input.readableBytes))) + 16)
        var failure: DeflateError?
        input.withUnsafeReadableBytes { raw in
            let base = raw.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) }
            stream.pointee.next_in = base
            stream.pointee.avail_in = uInt(raw.count)
            while true {
                if output.writableBytes < 64 { output.reserveCapacity(minimumWritableBytes: 4096) }
                var status: Int32 = Z_OK
                var produced = 0
                output.withUnsafeMutableWritableBytes { out in
                    stream.pointee.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = uInt(out.count)
                    status = CZlib.deflate(stream, Z_SYNC_FLUSH)
                    produced = out.count - Int(stream.pointee.avail_out)
                }
                output.moveWriterIndex(forwardBy: produced)
                if status != Z_OK && status != Z_BUF_ERROR {
                    failure = DeflateError(code: status, message: "deflate failed")
                    break
                }
                // Done when all input is taken and zlib had room left over (so the flush is complete).
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 { break }
            }
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
        }
        if let failure { throw failure }
        return output
    }
}

/// The raw DEFLATE stream the client sends under COMPRESS=DEFLATE, inflated a bounded piece at a time.
///
/// Memory: the window the client chose (at most 32 KiB) plus about 7 KiB of zlib state. What one call produces is
/// capped by the caller, so a highly compressed input (a "zip bomb") never turns into more than one piece at once.
public final class Inflater {
    /// What one inflate stream holds in zlib at most (a 32 KiB window, RFC 1951's maximum).
    public static let maximumMemory = 32 * 1024 + 7 * 1024

    private let stream: UnsafeMutablePointer<z_stream>
    private var ended = false

    public init() throws(DeflateError) {
        stream = try zStream("inflateInit2") { mailhost_inflate_init($0, -15) }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Inflates from `input` (consuming what zlib took) into at most `limit` bytes. `more` is true when zlib may
    /// have more output for the input it already took (the piece was full), or input is left.
    public func decompress(
        _ input: inout ByteBuffer, limit: Int, allocator: ByteBufferAllocator
    ) throws(DeflateError) -> (output: ByteBuffer, more: Bool) {
        if ended {
            if input.readableBytes == 0 { return (allocator.buffer(capacity: 0), false) }
            throw DeflateError(code: Z_STREAM_END, message: "data after the end of the compressed stream")
        }
        var output = allocator.buffer(capacity: limit)
        var status: Int32 = Z_OK
        var consumed = 0
        input.withUnsafeReadableBytes { raw in
            _ = output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { out in
                stream.pointee.next_in = raw.baseAddress.map {
                    UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
                }
                stream.pointee.avail_in = uInt(raw.count)
                stream.pointee.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(min(out.count, limit))
                status = CZlib.inflate(stream, Z_SYNC_FLUSH)
                consumed = raw.count - Int(stream.pointee.avail_in)
                let produced = min(out.count, limit) - Int(stream.pointee.avail_out)
                stream.pointee.next_in = nil
                stream.pointee.next_out = nil
                return produced
            }
        }
        input.moveReaderIndex(forwardBy: consumed)
        switch status {
        case Z_OK, Z_BUF_ERROR:
            break
        case Z_STREAM_END:
            ended = true
        default:
            throw DeflateError(code: status, message: "the client's compressed data is invalid")
        }
        let full = output.readableBytes >= limit
        return (output, !ended && (full || input.readableBytes > 0))
    }
}

/// COMPRESS=DEFLATE on a channel (RFC 4978): inflates what is read, deflates what is written. It sits after TLS
/// (RFC 4978 §4: compression inside TLS) and before the framing decoder.
///
/// Input is inflated one piece (`pieceSize`) per read the pipeline asks for, the way a socket delivers one read's
/// worth: the framing decoder and the session's inbound buffer apply their usual backpressure, so a few KiB of
/// compressed commands that inflate to gigabytes are held as compressed bytes, never inflated ahead of demand.
public final class DeflateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// The most inflated bytes handed on per read.
    public static let pieceSize = 64 * 1024

    private let inflater: Inflater
    private let deflater: Deflater
    /// Compressed input not inflated yet (or inflated input zlib still holds, when `more`).
    private var pending: ByteBuffer?
    private var more = false
    private var readScheduled = false

    public init(deflater: Deflater, inflater: Inflater) {
        self.deflater = deflater
        self.inflater = inflater
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if pending == nil {
            pending = buffer
        } else {
            pending!.writeBuffer(&buffer)
        }
        deliver(context: context)
    }

    public func read(context: ChannelHandlerContext) {
        if more {
            // This read is answered from what is pending, as the socket would answer it; and as the socket does
            // with auto-read, the next one is asked for once this one is complete.
            deliver(context: context)
            context.fireChannelReadComplete()
            scheduleRead(context: context)
        } else {
            context.read()
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        do {
            let compressed = try deflater.compress(unwrapOutboundIn(data), allocator: context.channel.allocator)
            context.write(wrapOutboundOut(compressed), promise: promise)
        } catch {
            promise?.fail(error)
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    /// Asks the pipeline for another read from its tail, so that the handlers after this one can hold it back until
    /// they want more (at most one such request is outstanding).
    private func scheduleRead(context: ChannelHandlerContext) {
        guard !readScheduled else { return }
        readScheduled = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            handler.readScheduled = false
            context.channel.read()
        }
    }

    /// Inflates one piece and hands it on; when more is waiting, asks the pipeline for another read, which the
    /// handlers after this one hold back until they want more.
    private func deliver(context: ChannelHandlerContext) {
        guard var input = pending else { return }
        do {
            let (piece, more) = try inflater.decompress(
                &input, limit: Self.pieceSize, allocator: context.channel.allocator)
            self.more = more
            pending = input.readableBytes > 0 || more ? input : nil
            if pending != nil, input.readableBytes == 0 { pending!.clear() }
            if piece.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(piece)) }
            if more { scheduleRead(context: context) }
        } catch {
            pending = nil
            more = false
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }
}

/// What a session needs to turn its connection into COMPRESS=DEFLATE. Provided by the listener with the channel and
/// the gate its framing decoder closes when it frames `COMPRESS DEFLATE`.
public protocol CompressionUpgrade: Sendable {
    /// Writes `reply` (the tagged OK) uncompressed, then installs compression, in one turn of the event loop
    /// (RFC 4978 §3: compression starts right after the OK, both ways).
    func start(reply: [UInt8]) async throws
    /// COMPRESS was refused, or the line was not a COMPRESS command after all: input flows again.
    func refuse()
}

/// COMPRESS=DEFLATE for a connection whose framing decoder is named `IMAPConnection.framingHandlerName`.
public struct DeflateUpgrade: CompressionUpgrade {
    let channel: any Channel
    let gate: StartTLSGate

    public init(channel: any Channel, gate: StartTLSGate) {
        self.channel = channel
        self.gate = gate
    }

    public func start(reply: [UInt8]) async throws {
        let gate = self.gate
        let channel = self.channel
        try await channel.eventLoop.submit {
            let deflater = try Deflater()
            let inflater = try Inflater()
            // The OK has passed the whole pipeline when writeAndFlush returns: it goes out uncompressed, and the
            // handler placed now compresses every later write and inflates every later read.
            channel.writeAndFlush(ByteBuffer(bytes: reply), promise: nil)
            let pipeline = channel.pipeline.syncOperations
            let framing = try pipeline.context(name: IMAPConnection.framingHandlerName)
            try pipeline.addHandler(
                DeflateHandler(deflater: deflater, inflater: inflater), position: .before(framing.handler))
            gate.open()
        }.get()
    }

    public func refuse() { gate.open() }
}
