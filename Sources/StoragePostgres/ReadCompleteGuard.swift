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
        var answered = 0
        var status: UInt8?
        var odd = false
        inbound.scan(unwrapInboundIn(data)) { message in
            guard message.type == UInt8(ascii: "Z") else { return }
            answered += 1
            // ReadyForQuery: length 5, and one byte of transaction status.
            if message.length == 5, let first = message.first, CommitWatch.statuses.contains(first) {
                status = first
            } else {
                odd = true
            }
        }
        if answered > 0 { watch.received(answered, status: status, odd: odd) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var sent = 0
        var copying = false
        outbound.scan(unwrapOutboundIn(data)) { message in
            switch message.type {
            // Sync, Query and FunctionCall: each gets one ReadyForQuery.
            case UInt8(ascii: "S"), UInt8(ascii: "Q"), UInt8(ascii: "F"): sent += 1
            // CopyData, CopyDone, CopyFail: during a COPY FROM the server ignores Syncs, so the count would be off.
            case UInt8(ascii: "d"), UInt8(ascii: "c"), UInt8(ascii: "f"): copying = true
            default: break
            }
        }
        if sent > 0 || copying { watch.sent(sent, copying: copying) }
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
    /// A message that ended: its type, its length field, and its first byte after the length (nil if it has none).
    struct Message {
        let type: UInt8
        let length: UInt32
        let first: UInt8?
    }

    private var headerRead = 0
    private var type: UInt8 = 0
    private var length: UInt32 = 0
    private var remaining = 0
    private var first: UInt8?

    /// Calls `ended` for each message that ends in `buffer`, the next bytes of the stream.
    mutating func scan(_ buffer: ByteBuffer, _ ended: (Message) -> Void) {
        buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count {
                if headerRead < 5 {
                    if headerRead == 0 { type = bytes[index] } else { length = length << 8 | UInt32(bytes[index]) }
                    headerRead += 1
                    index += 1
                    guard headerRead == 5 else { continue }
                    remaining = max(0, Int(length) - 4)
                    first = nil
                } else {
                    if first == nil { first = bytes[index] }
                    let taken = min(remaining, bytes.count - index)
                    index += taken
                    remaining -= taken
                }
                if remaining == 0 {
                    ended(Message(type: type, length: length, first: first))
                    headerRead = 0
                    length = 0
                }
            }
        }
    }
}

/// How many statements' implicit transactions a connection has sent and PostgreSQL has finished (ReadyForQuery), so
/// that a write outside BEGIN/COMMIT can wait for its commit without another round trip (`PostgresMailStore.write`),
/// and whether the connection may go back to its pool (`reusable`).
///
/// A ReadyForQuery with none outstanding (one that was on its way when the guard was added) is not counted: the
/// received count never runs ahead of the sent one. Each ReadyForQuery says where the session is: idle ('I'), inside a
/// transaction block ('T') or inside a failed one ('E'). A statement is committed only when the answer to the last
/// Sync says idle: one sent inside a BEGIN left open (a connection given back mid-transaction) is not.
///
/// The counts are trusted only while the framing is as expected: a ReadyForQuery of another length or status, or a
/// COPY (during which the server ignores Syncs), makes the watch untrusted for good, and every later wait fails.
final class CommitWatch: Sendable {
    /// The transaction statuses a ReadyForQuery may carry.
    static let statuses: [UInt8] = [UInt8(ascii: "I"), UInt8(ascii: "T"), UInt8(ascii: "E")]

    private struct State {
        var sent: UInt64 = 0
        var received: UInt64 = 0
        /// The status of the last ReadyForQuery received (the startup's said idle).
        var status = UInt8(ascii: "I")
        var untrusted = false
        /// A wait failed or was cancelled: what the server did with the last statements is not known.
        var failed = false
        var closed = false
        var waiter: (target: UInt64, continuation: CheckedContinuation<Void, any Error>)?

        /// How a wait for `target` ends now, or nil while it must go on waiting; a failure spoils the connection.
        mutating func outcome(target: UInt64) -> Result<Void, any Error>? {
            let outcome: Result<Void, any Error>? =
                if untrusted {
                    .failure(Unusable.unfollowed)
                } else if received >= target {
                    status == UInt8(ascii: "I")
                        ? .success(()) : .failure(Unusable(reason: "it is inside a transaction block"))
                } else if closed {
                    .failure(Lost())
                } else {
                    nil
                }
            if case .failure = outcome { failed = true }
            return outcome
        }
    }
    private let state = Mutex(State())

    /// The connection closed before the server answered every statement sent on it.
    struct Lost: Error, CustomStringConvertible {
        var description: String { "connection closed before the server was ready again" }
    }

    /// The server answered, but not in a way that confirms a commit.
    struct Unusable: Error, CustomStringConvertible {
        let reason: String
        var description: String { "connection cannot confirm a commit: \(reason)" }

        static let unfollowed = Unusable(reason: "its messages could not be followed")
    }

    /// Syncs (and Queries) sent, and ReadyForQuery received, since the guard was added (tests).
    var counts: (sent: UInt64, received: UInt64) { state.withLock { ($0.sent, $0.received) } }

    /// Whether a caller waits in `allAnswered` (tests).
    var isWaited: Bool { state.withLock { $0.waiter != nil } }

    /// Whether the connection may serve another lease: its counts are trusted, no wait on it failed, and it is not
    /// known to be inside a transaction block (known only once every Sync is answered).
    var reusable: Bool {
        state.withLock { state in
            !state.untrusted && !state.failed
                && (state.received < state.sent || state.status == UInt8(ascii: "I"))
        }
    }

    fileprivate func sent(_ count: Int, copying: Bool = false) {
        let stopped = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.sent &+= UInt64(count)
            guard copying else { return nil }
            state.untrusted = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        stopped?.resume(throwing: Unusable.unfollowed)
    }

    fileprivate func received(_ count: Int, status: UInt8? = nil, odd: Bool = false) {
        let ready = state.withLock { state -> (CheckedContinuation<Void, any Error>, Result<Void, any Error>)? in
            state.received = min(state.sent, state.received &+ UInt64(count))
            if let status { state.status = status }
            if odd { state.untrusted = true }
            guard let waiter = state.waiter, let outcome = state.outcome(target: waiter.target) else { return nil }
            state.waiter = nil
            return (waiter.continuation, outcome)
        }
        if let (continuation, outcome) = ready { continuation.resume(with: outcome) }
    }

    fileprivate func close() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        waiting?.resume(throwing: Lost())
    }

    /// Returns once PostgreSQL has answered every Sync (and Query) sent so far with ReadyForQuery, the last one saying
    /// idle: everything before them has committed or failed. Throws `Lost` when the connection closes first,
    /// `Unusable` when the answers do not confirm a commit, and `CancellationError` when cancelled; after any of
    /// these the connection is no longer `reusable`. One caller at a time: the one that holds the connection.
    func allAnswered() async throws {
        let target = try state.withLock { state -> UInt64? in
            let target = state.sent
            switch state.outcome(target: target) {
            case .success: return nil
            case .failure(let error): throw error
            case nil: return target
            }
        }
        guard let target else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    var outcome = state.outcome(target: target)
                    if outcome == nil, Task.isCancelled {
                        state.failed = true
                        outcome = .failure(CancellationError())
                    }
                    if outcome == nil { state.waiter = (target, continuation) }
                    return outcome
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                defer { state.waiter = nil }
                if state.waiter != nil { state.failed = true }
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
