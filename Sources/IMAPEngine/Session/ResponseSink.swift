import NIOCore

/// The session's only way to the client: buffers response bytes and writes them to the channel in batches. While
/// the channel is writable a write is handed over and not waited for; once it is not (the client reads slower than
/// we write), each write is waited for until it is written: that is the backpressure (DESIGN.md §2), and one batch
/// plus the channel's high watermark is the most a connection holds. Nothing else writes to the connection.
final class ResponseSink {
    private let channel: any Channel
    private var pending: [UInt8] = []
    /// Bytes buffered before a write is issued; large FETCH responses go out in pieces of about this size.
    static let batchSize = 64 * 1024

    init(channel: any Channel) {
        self.channel = channel
    }

    /// The connection's event loop: where its session's tasks run.
    var eventLoop: any EventLoop { channel.eventLoop }

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
        guard !pending.isEmpty else { return }
        guard channel.isActive else { throw ChannelError.ioOnClosedChannel }
        let buffer = ByteBuffer(bytes: pending)
        pending.removeAll(keepingCapacity: pending.capacity <= 4 * Self.batchSize)
        if channel.isWritable {
            channel.writeAndFlush(buffer, promise: nil)
        } else {
            try await channel.writeAndFlush(buffer)
        }
    }
}
