import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// Keeps PostgresNIO (1.33) from crashing the process when PostgreSQL goes away in the middle of a result, and tells
/// when the server has answered every statement sent (`CommitWatch`).
///
/// PostgresNIO asks its channel for the next read only when the consumer of a row stream wants more rows, and its row
/// stream treats a read completion it did not ask for as impossible (a `preconditionFailure`). But when the server
/// closes the connection, SwiftNIO drains the socket to the EOF without being asked, and ends with a read completion.
/// A database stopped with `-m immediate`, or restarting after any backend crashed, closes every connection that way
/// (after a warning notice): any query then between two batches of rows took the whole server down, every session
/// with it. Measured: 10 sessions fetching from a large mailbox, PostgreSQL stopped immediately, the process died in
/// the first of one cycle on every build before this.
///
/// This handler sits right before PostgresNIO's own (after the TLS handler, when there is one, so that it sees the
/// protocol's bytes and the completions TLS passes on) and passes a read completion on only when a read was asked for
/// since the last one. The bytes of an unasked read still go through (a last error or notice, rows to buffer); only
/// the completion is held back, and the channel closes right after, which fails the stream as any lost connection
/// does.
///
/// It also follows the message framing both ways (a type byte and a length, as PostgreSQL's protocol documentation
/// describes it): every Sync, simple Query or FunctionCall sent is answered by exactly one ReadyForQuery, which PostgreSQL
/// sends only after the implicit transaction of the statements before it has committed. `watch` counts both.
/// Not removable: taken out of a live pipeline, its counts would stop while the connection goes on, and a later write
/// would look answered.
final class ReadCompleteGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Whether a read went towards the socket since the last completion passed on. True at the start: the guard is
    /// added to an idle connection, whose handler has asked for the next read already (it always does when idle).
    private var readAsked = true
    /// Completions held back in this process, each one a crash avoided (for tests).
    static let heldBack = Mutex(0)

    let watch = CommitWatch()
    private var inbound = MessageFraming()
    private var outbound = MessageFraming()

    func read(context: ChannelHandlerContext) {
        readAsked = true
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let answered = inbound.messagesEnded(in: unwrapInboundIn(data)) { $0 == UInt8(ascii: "Z") }
        if answered > 0 { watch.received(answered) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Sync, Query and FunctionCall: each gets one ReadyForQuery.
        let sent = outbound.messagesEnded(in: unwrapOutboundIn(data)) {
            $0 == UInt8(ascii: "S") || $0 == UInt8(ascii: "Q") || $0 == UInt8(ascii: "F")
        }
        if sent > 0 { watch.sent(sent) }
        context.write(data, promise: promise)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard readAsked else {
            Self.heldBack.withLock { $0 += 1 }
            return
        }
        readAsked = false
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.close()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        watch.close()
    }

    /// Adds the guard to `connection`'s pipeline unless it is there. Cheap when it is: a look at the pipeline on the
    /// channel's own loop (where a `LoopPools` lease runs). A connection closed meanwhile gets none: its statement
    /// then fails as on any lost connection (`unavailable`), not with the pipeline's error.
    static func install(on connection: PostgresConnection) async {
        guard let channel = channel(of: connection) else { return }
        if channel.eventLoop.inEventLoop {
            _ = try? addIfMissing(channel.pipeline.syncOperations)
        } else {
            try? await channel.eventLoop.submit { _ = try addIfMissing(channel.pipeline.syncOperations) }.get()
        }
    }

    /// Whether `connection` has the guard (for tests).
    static func isInstalled(on connection: PostgresConnection) async throws -> Bool {
        guard let channel = channel(of: connection) else { return false }
        return try await channel.eventLoop.submit {
            (try? channel.pipeline.syncOperations.handler(type: ReadCompleteGuard.self)) != nil
        }.get()
    }

    /// The pipeline's guard: the one there, or a new one right before PostgresNIO's handler, which is the first
    /// handler or comes right after the TLS handler.
    @discardableResult
    static func addIfMissing(_ pipeline: ChannelPipeline.SynchronousOperations) throws -> ReadCompleteGuard {
        if let existing = try? pipeline.handler(type: ReadCompleteGuard.self) { return existing }
        let added = ReadCompleteGuard()
        if let tls = try? pipeline.handler(type: NIOSSLClientHandler.self) {
            try pipeline.addHandler(added, position: .after(tls))
        } else {
            try pipeline.addHandler(added, position: .first)
        }
        return added
    }

    /// The connection's channel: PostgresNIO does not make it public, and takes no handler of its own, so it is read
    /// by reflection (nil if a later PostgresNIO renames it; `ReadCompleteGuardTests` fail then).
    static func channel(of connection: PostgresConnection) -> (any Channel)? {
        Mirror(reflecting: connection).descendant("channel") as? any Channel
    }
}

/// Where one direction of a PostgreSQL connection is in its message framing: after the startup phase every message is
/// a type byte, a 32-bit big-endian length that counts itself, and that many bytes less four.
struct MessageFraming {
    private var headerRead = 0
    private var type: UInt8 = 0
    private var length: UInt32 = 0
    private var remaining = 0

    /// The messages of a type `matching` accepts that end in `buffer`, the next bytes of the stream.
    mutating func messagesEnded(in buffer: ByteBuffer, matching: (UInt8) -> Bool) -> Int {
        buffer.withUnsafeReadableBytes { bytes in
            var ended = 0
            var index = 0
            while index < bytes.count {
                if headerRead < 5 {
                    if headerRead == 0 { type = bytes[index] } else { length = length << 8 | UInt32(bytes[index]) }
                    headerRead += 1
                    index += 1
                    guard headerRead == 5 else { continue }
                    remaining = max(0, Int(length) - 4)
                } else {
                    let taken = min(remaining, bytes.count - index)
                    index += taken
                    remaining -= taken
                }
                if remaining == 0 {
                    if matching(type) { ended += 1 }
                    headerRead = 0
                    length = 0
                }
            }
            return ended
        }
    }
}

/// How many statements' implicit transactions a connection has sent and PostgreSQL has finished (ReadyForQuery), so
/// that a write outside BEGIN/COMMIT can wait for its commit without another round trip (`PostgresMailStore.write`).
///
/// A ReadyForQuery with none outstanding (one that was on its way when the guard was added) is not counted: the
/// received count never runs ahead of the sent one.
final class CommitWatch: Sendable {
    private struct State {
        var sent: UInt64 = 0
        var received: UInt64 = 0
        var closed = false
        var waiter: (target: UInt64, continuation: CheckedContinuation<Void, any Error>)?
    }
    private let state = Mutex(State())

    /// The connection closed before the server answered every statement sent on it.
    struct Lost: Error, CustomStringConvertible {
        var description: String { "connection closed before the server was ready again" }
    }

    /// Syncs (and Queries) sent, and ReadyForQuery received, since the guard was added (tests).
    var counts: (sent: UInt64, received: UInt64) { state.withLock { ($0.sent, $0.received) } }

    fileprivate func sent(_ count: Int) {
        state.withLock { $0.sent &+= UInt64(count) }
    }

    fileprivate func received(_ count: Int) {
        let ready = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.received = min(state.sent, state.received &+ UInt64(count))
            guard let waiter = state.waiter, state.received >= waiter.target else { return nil }
            state.waiter = nil
            return waiter.continuation
        }
        ready?.resume()
    }

    fileprivate func close() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        waiting?.resume(throwing: Lost())
    }

    /// Returns once PostgreSQL has answered every Sync (and Query) sent so far with ReadyForQuery: everything before
    /// them has committed or failed. Throws `Lost` when the connection closes first, and `CancellationError` when
    /// cancelled. One caller at a time: the one that holds the connection.
    func allAnswered() async throws {
        let target = try state.withLock { state -> UInt64? in
            if state.received >= state.sent { return nil }
            if state.closed { throw Lost() }
            return state.sent
        }
        guard let target else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if state.received >= target { return .success(()) }
                    if state.closed { return .failure(Lost()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiter = (target, continuation)
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                defer { state.waiter = nil }
                return state.waiter?.continuation
            }
            waiting?.resume(throwing: CancellationError())
        }
    }
}

/// A pool whose every connection is guarded (`ReadCompleteGuard`): the store reaches PostgreSQL only through this.
///
/// `prepared` and `query` run on a leased connection and return the rows read to the end (the store's callers read
/// every row of their statements at once anyway); a caller that must not hold a whole result streams it inside
/// `withConnection`.
public struct GuardedClient: Sendable {
    private enum Source: Sendable {
        /// PostgresNIO's pool (tools, tests): every lease is guarded.
        case client(PostgresClient)
        /// Ours (`LoopPool`): each connection is guarded once, when it is opened.
        case pool(LoopPool)
    }
    private let source: Source

    public init(_ client: PostgresClient) { source = .client(client) }

    init(pool: LoopPool) { source = .pool(pool) }

    public func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withWatchedConnection(isolation: isolation) { connection, _ in try await body(connection) }
    }

    /// As `withConnection`, with the watch of the connection's guard, which tells when the server has answered every
    /// statement sent (nil for a `PostgresClient`'s connections: a guard added at a lease may have missed the start of
    /// a message, so it is not trusted with that).
    func withWatchedConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection, CommitWatch?) async throws -> sending Result
    ) async throws -> sending Result {
        switch source {
        case .client(let client):
            try await client.withConnection(isolation: isolation) { connection in
                await ReadCompleteGuard.install(on: connection)
                return try await body(connection, nil)
            }
        case .pool(let pool):
            try await pool.withConnection(isolation: isolation, body)
        }
    }

    public func withTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withConnection(isolation: isolation) { connection in
            try await connection.withTransaction(logger: logger, isolation: isolation, body)
        }
    }

    func prepared(_ query: PostgresQuery, logger: Logger) async throws -> ReadRows {
        try await withConnection { ReadRows(try await $0.prepared(query, logger: logger).collect()) }
    }

    public func query(_ query: PostgresQuery, logger: Logger) async throws -> ReadRows {
        try await withConnection { ReadRows(try await $0.query(query, logger: logger).collect()) }
    }
}

/// Rows read to the end, iterated as the stream they replace.
public struct ReadRows: AsyncSequence, Sendable {
    public typealias Element = PostgresRow
    public let rows: [PostgresRow]

    init(_ rows: [PostgresRow]) { self.rows = rows }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[PostgresRow]>
        // `throws` as the stream's iterator: callers keep `for try await`.
        public mutating func next() async throws -> PostgresRow? { base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: rows.makeIterator()) }

    public func collect() async throws -> [PostgresRow] { rows }

    public func decode<T: PostgresDecodable & Sendable>(_: T.Type) -> AsyncThrowingMapSequence<ReadRows, T> {
        map { try $0.decode(T.self) }
    }
}
