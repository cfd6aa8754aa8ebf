import Foundation
import IMAPEngine
import NIOCore
import NIOPosix
import Synchronization

/// A raw IMAP client over a real TCP connection, for tests: sends lines, reads lines (CRLF stripped). Literal
/// contents arrive as the lines they contain; `readResponse` gathers everything up to a tagged line.
final class IMAPTestClient: Sendable {
    private let channel: any Channel
    private let inbox: Inbox

    final class Inbox: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        struct State {
            var bytes: [UInt8] = []
            var closed = false
        }
        let state = Mutex(State())

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            state.withLock { $0.bytes.append(contentsOf: buffer.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLock { $0.closed = true }
        }
    }

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// Connects, from `localHost` when given (any 127.x address works on Linux loopback).
    static func connect(host: String = "127.0.0.1", port: Int, localHost: String? = nil) async throws -> IMAPTestClient
    {
        let inbox = Inbox()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(inbox) }
            }
        if let localHost { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localHost, port: 0)) }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        return IMAPTestClient(channel: channel, inbox: inbox)
    }

    /// Connects, reads the greeting, logs in, and selects `mailbox` when given (the usual first steps of a test).
    static func loggedIn(
        port: Int, user: String = "tim", password: String = "timmy", select mailbox: String? = nil
    ) async throws -> IMAPTestClient {
        let client = try await connect(port: port)
        _ = try await client.readLine()
        try await client.expectOK("l", "LOGIN \(user) \"\(password)\"")
        if let mailbox { try await client.expectOK("s", "SELECT \(mailbox)") }
        return client
    }

    /// The client side's TCP port.
    var localPort: Int { channel.localAddress?.port ?? 0 }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    func sendLine(_ line: String) async throws { try await send(line + "\r\n") }

    /// The next line, without CRLF. Throws on timeout or when the server closed the connection first.
    func readLine(timeout: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (line, closed) = inbox.state.withLock { state -> (String?, Bool) in
                if let lf = state.bytes.firstIndex(of: 0x0A) {
                    var line = Array(state.bytes[..<lf])
                    if line.last == 0x0D { line.removeLast() }
                    state.bytes.removeFirst(lf + 1)
                    return (String(decoding: line, as: UTF8.self), false)
                }
                return (nil, state.closed)
            }
            if let line { return line }
            if closed { throw TestFailure("connection closed by the server") }
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting for a line") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Exactly `count` bytes (for literals whose content is not line-shaped).
    func readBytes(_ count: Int, timeout: Duration = .seconds(60)) async throws -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let bytes = inbox.state.withLock { state -> [UInt8]? in
                guard state.bytes.count >= count else { return nil }
                defer { state.bytes.removeFirst(count) }
                return Array(state.bytes[..<count])
            }
            if let bytes { return bytes }
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting for \(count) bytes") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Whether the server has closed the connection (after reading everything it sent).
    func isClosed(within timeout: Duration = .seconds(5)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if inbox.state.withLock({ $0.closed }) { return true }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return false
    }

    /// True when nothing arrives within `duration`.
    func isSilent(for duration: Duration) async -> Bool {
        try? await Task.sleep(for: duration)
        return inbox.state.withLock { $0.bytes.isEmpty }
    }

    /// Whatever has arrived and was not read yet.
    func takeAll() -> [UInt8] {
        inbox.state.withLock { state in
            defer { state.bytes = [] }
            return state.bytes
        }
    }

    /// Stops reading from the socket (the kernel's receive buffer fills, then the server's writes stall), or reads
    /// again.
    func setReading(_ reading: Bool) async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: reading).get()
    }

    /// Lines up to and including the one starting with `tag `.
    func readResponse(tag: String, timeout: Duration = .seconds(60)) async throws -> [String] {
        var lines: [String] = []
        while true {
            let line = try await readLine(timeout: timeout)
            lines.append(line)
            if line.hasPrefix(tag + " ") { return lines }
        }
    }

    /// Sends `tag command` and returns all lines up to the tagged reply.
    func command(_ tag: String, _ command: String) async throws -> [String] {
        try await sendLine("\(tag) \(command)")
        return try await readResponse(tag: tag)
    }

    /// Sends a command and requires a tagged OK; returns the untagged lines.
    @discardableResult
    func expectOK(_ tag: String, _ command: String) async throws -> [String] {
        let lines = try await self.command(tag, command)
        guard let last = lines.last, last.hasPrefix("\(tag) OK") else {
            throw TestFailure("\(tag) \(command) failed: \(lines.joined(separator: " | "))")
        }
        return Array(lines.dropLast())
    }

    func close() async {
        try? await channel.close()
    }

    /// Sends `COMPRESS DEFLATE` and, once the server's OK is read, compresses and inflates everything from here on
    /// (RFC 4978), with the engine's own zlib wrapper at the client's usual parameters (32 KiB window). Returns the
    /// tagged reply.
    @discardableResult
    func startCompression(tag: String = "z") async throws -> String {
        let reply = try await command(tag, "COMPRESS DEFLATE").last ?? ""
        guard reply.hasPrefix("\(tag) OK") else { return reply }
        // The server writes nothing more until it reads a command, so no compressed byte is in the inbox yet.
        let inbox = self.inbox
        try await channel.eventLoop.submit { [channel] in
            let handler = DeflateHandler(deflater: try Deflater(windowBits: 15, memLevel: 8), inflater: try Inflater())
            try channel.pipeline.syncOperations.addHandler(handler, position: .before(inbox))
        }.get()
        return reply
    }

    /// Aborts the connection with a TCP RST instead of a FIN (SO_LINGER 0, then close): a client that crashed or
    /// lost its network path the hard way.
    func reset() async throws {
        guard let socket = channel as? any SocketOptionProvider else { throw TestFailure("not a socket channel") }
        try await socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        try? await channel.close()
    }
}
