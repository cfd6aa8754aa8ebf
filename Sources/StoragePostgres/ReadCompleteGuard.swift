import Logging
import Synchronization
import NIOCore
import PostgresNIO

/// Keeps PostgresNIO (1.33) from crashing the process when PostgreSQL goes away in the middle of a result.
///
/// PostgresNIO asks its channel for the next read only when the consumer of a row stream wants more rows, and its row
/// stream treats a read completion it did not ask for as impossible (a `preconditionFailure`). But when the server
/// closes the connection, SwiftNIO drains the socket to the EOF without being asked, and ends with a read completion.
/// A database stopped with `-m immediate`, or restarting after any backend crashed, closes every connection that way
/// (after a warning notice): any query then between two batches of rows took the whole server down, every session
/// with it. Measured: 10 sessions fetching from a large mailbox, PostgreSQL stopped immediately, the process died in
/// the first of one cycle on every build before this.
///
/// This handler sits at the head of the connection's pipeline and passes a read completion on only when a read was
/// asked for since the last one. The bytes of an unasked read still go through (a last error or notice, rows to
/// buffer); only the completion is held back, and the channel closes right after, which fails the stream as any lost
/// connection does.
final class ReadCompleteGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Whether a read went towards the socket since the last completion passed on. True at the start: the guard is
    /// added to an idle connection, whose handler has asked for the next read already (it always does when idle).
    private var readAsked = true
    /// Completions held back in this process, each one a crash avoided (for tests).
    static let heldBack = Mutex(0)

    func read(context: ChannelHandlerContext) {
        readAsked = true
        context.read()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard readAsked else {
            Self.heldBack.withLock { $0 += 1 }
            return
        }
        readAsked = false
        context.fireChannelReadComplete()
    }

    /// Adds the guard to `connection`'s pipeline unless it is there. Cheap when it is: a look at the pipeline on the
    /// channel's own loop (where a `LoopPools` lease runs). A connection closed meanwhile gets none: its statement
    /// then fails as on any lost connection (`unavailable`), not with the pipeline's error.
    static func install(on connection: PostgresConnection) async {
        guard let channel = channel(of: connection) else { return }
        if channel.eventLoop.inEventLoop {
            try? addIfMissing(channel.pipeline.syncOperations)
        } else {
            try? await channel.eventLoop.submit { try addIfMissing(channel.pipeline.syncOperations) }.get()
        }
    }

    /// Whether `connection` has the guard (for tests).
    static func isInstalled(on connection: PostgresConnection) async throws -> Bool {
        guard let channel = channel(of: connection) else { return false }
        return try await channel.eventLoop.submit {
            (try? channel.pipeline.syncOperations.handler(type: ReadCompleteGuard.self)) != nil
        }.get()
    }

    static func addIfMissing(_ pipeline: ChannelPipeline.SynchronousOperations) throws {
        if (try? pipeline.handler(type: ReadCompleteGuard.self)) != nil { return }
        try pipeline.addHandler(ReadCompleteGuard(), position: .first)
    }

    /// The connection's channel: PostgresNIO does not make it public, and takes no handler of its own, so it is read
    /// by reflection (nil if a later PostgresNIO renames it; `ReadCompleteGuardTests` fail then).
    static func channel(of connection: PostgresConnection) -> (any Channel)? {
        Mirror(reflecting: connection).descendant("channel") as? any Channel
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
        switch source {
        case .client(let client):
            try await client.withConnection(isolation: isolation) { connection in
                await ReadCompleteGuard.install(on: connection)
                return try await body(connection)
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
