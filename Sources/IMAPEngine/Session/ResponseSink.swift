import NIOCore

/// The session's only way to the client: buffers response bytes and writes them in batches through the channel's
/// outbound writer, whose suspension is the backpressure (DESIGN.md §2). Nothing else writes to the connection.
final class ResponseSink {
    private let writer: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var pending: [UInt8] = []
    /// Bytes buffered before a write is issued; large FETCH responses go out in pieces of about this size.
    static let batchSize = 64 * 1024
    private(set) var isClosed = false

    init(writer: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.writer = writer
    }

    /// What the buffer starts with when a response begins: most responses fit, so they cost one allocation.
    static let startCapacity = 4096

    /// Between commands: gives the buffer back, so a session that has streamed a big FETCH and then idles holds
    /// nothing here, not the 128 KiB or more of a full batch (nor the few KiB of a small one: idle sessions are many).
    func shrink() {
        guard pending.isEmpty, pending.capacity > 0 else { return }
        pending = []
    }

    private func reserve() {
        if pending.capacity == 0 { pending.reserveCapacity(Self.startCapacity) }
    }

    /// Appends the writer's bytes; writes when the batch is full.
    func send(_ response: ResponseWriter) async throws {
        reserve()
        pending.append(contentsOf: response.bytes)
        if pending.count >= Self.batchSize { try await flush() }
    }

    func send(_ bytes: some Collection<UInt8>) async throws {
        reserve()
        pending.append(contentsOf: bytes)
        if pending.count >= Self.batchSize { try await flush() }
    }

    func sendLine(_ text: String) async throws {
        reserve()
        pending.append(contentsOf: text.utf8)
        pending.append(contentsOf: [0x0D, 0x0A])
        if pending.count >= Self.batchSize { try await flush() }
    }

    /// Writes whatever is buffered.
    func flush() async throws {
        guard !pending.isEmpty, !isClosed else { return }
        let buffer = ByteBuffer(bytes: pending)
        pending.removeAll(keepingCapacity: pending.capacity <= 4 * Self.batchSize)
        try await writer.write(buffer)
    }

    func finish() {
        isClosed = true
        writer.finish()
    }
}
