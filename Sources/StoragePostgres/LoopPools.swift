import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The store's connection pools, one per event loop of the server, so that a session's store call leases a
/// connection whose channel lives on the session's own loop: the query is written, answered and handed back to the
/// session without waking another thread. With one pool for the whole group, about half of all store calls crossed
/// to the other loop and back (an eventfd write each way, and the other loop's thread woken).
///
/// The pools share the configured maximum (each gets its part, at least one), so the database sees no more
/// connections than that. A call made off the server's loops (a tool, a test, the change feed) uses the first pool,
/// which also holds the connections reserved for the change feed.
public final class LoopPools: Sendable {
    private let entries: [(loop: any EventLoop, client: GuardedClient)]
    /// The first pool: calls made off the loops, and the change feed's (its reserved connection).
    public let first: GuardedClient
    /// The pools of a server (`init(connection:…)`), for `run()` and tests; empty over one `PostgresClient`.
    public let pools: [LoopPool]

    /// One pool over the whole of `client`'s group (tools, tests). The caller runs `client`.
    public init(_ client: PostgresClient) {
        entries = []
        first = GuardedClient(client)
        pools = []
    }

    /// A pool per loop of `group` (at most as many as there are connections to share), of `maximumConnections` in
    /// all. `idleTimeout`: how long a connection may stay unused before it is closed (nil: never).
    ///
    /// `reserved` of the `maximumConnections` go to the first pool on top of its share: the owner holds them for good
    /// (the change feed's LISTEN connection), and a loop's pool must not be left with none. Before the split, the
    /// feed's connection was one of the single pool's; with `pool_size=2` split in two, the first loop's sessions
    /// would have had no connection at all.
    public init(
        connection: Result<PostgresConnection.Configuration, any Error>, maximumConnections: Int,
        group: any EventLoopGroup, reserved: Int = 0, idleTimeout: Duration? = nil, logger: Logger
    ) {
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        if loops.isEmpty { loops = [group.next()] }
        let reserved = max(0, reserved)
        let shared = max(1, maximumConnections - reserved)
        let count = max(1, min(loops.count, shared))
        var pools: [LoopPool] = []
        for index in 0..<count {
            let maximum = shared / count + (index < shared % count ? 1 : 0) + (index == 0 ? reserved : 0)
            pools.append(
                LoopPool(
                    loop: loops[index], configuration: connection, maximum: maximum, idleTimeout: idleTimeout,
                    logger: logger))
        }
        // A loop beyond the pools' count shares a pool whose connections are on another loop: it still works, with
        // the cross-thread hop this type exists to avoid.
        entries = loops.enumerated().map { ($0.element, GuardedClient(pool: pools[$0.offset % count])) }
        first = GuardedClient(pool: pools[0])
        self.pools = pools
    }

    /// The pool of the loop this code runs on, else the first.
    public var here: GuardedClient {
        if entries.count > 1, let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            for entry in entries where entry.loop === loop { return entry.client }
        }
        return first
    }

    /// Runs until cancelled; then every pool closes its connections (those leased as they come back).
    public func run() async {
        await withDiscardingTaskGroup { group in
            for pool in pools { group.addTask { await pool.run() } }
        }
    }
}

/// The connections of one event loop: opened on demand up to `maximum`, kept open while they stay healthy and in use,
/// leased most recently used first. With an `idleTimeout`, connections left unused that long are closed (one stays
/// open), so a pool that grew for a busy hour gives its database backends back afterwards; leasing the most recent
/// first leaves the others unused, so the pool shrinks to what the load needs.
///
/// PostgresNIO's own pool was replaced by this for two reasons, both measured (issue 11):
/// - At every release it scheduled a keep-alive and an idle-timeout timer on the global executor, and cancelled them at
///   the next lease: three threads woken per store call, a fifth of mailhost's CPU on a run of SELECTs.
/// - With a minimum connection count (which would have avoided the idle timer), it fails a precondition and ends the
///   process on the first lease after a database outage (PostgresNIO 1.33).
///
/// Here a lease is a lock and an array pop when a connection is idle. A connection's place in the pool is given back
/// when its channel closes (whether or not the statement using it ever returns); the connection itself is dropped when
/// it is next leased or released. None is tested with a query: a dead one is found by the statement that uses it,
/// which fails as unavailable, or by the socket's keepalives (`socketOptions`). A lease with none idle and the
/// maximum open waits, first come first served, until a connection (or the right to open one) is released; a waiting
/// lease that is cancelled (the store's timeout) leaves the queue at once. Opening fails fast while the database is
/// away: the store answers unavailable instead of waiting for its timeout.
public final class LoopPool: Sendable {
    let loop: any EventLoop
    private let configuration: Result<PostgresConnection.Configuration, any Error>
    let maximum: Int
    let idleTimeout: Duration?
    private let logger: Logger
    private let state = Mutex(State())
    private let stopped = AsyncStream<Never>.makeStream()

    /// What a waiting lease is given: a connection, or the right to open one (a slot freed by a connection that
    /// closed or failed to open).
    private enum Grant {
        case connection(Pooled)
        case slot
    }

    /// An open connection and the watch of its guard (nil if the guard could not be added).
    struct Pooled: Sendable {
        let connection: PostgresConnection
        let watch: CommitWatch?
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Grant, any Error>
    }

    /// A connection given back, and when.
    private struct Idle {
        let pooled: Pooled
        let since: ContinuousClock.Instant
    }

    private struct State {
        /// Oldest first: connections are given back at the end and leased from the end.
        var idle: [Idle] = []
        /// Connections being opened, or opened and not yet closed (counted down when a channel closes, not when a
        /// connection comes back: a statement PostgresNIO wrote to a channel that had just closed is never answered,
        /// and its connection would never come back).
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiter = 0
        var nextConnection = 0
        var shutDown = false

        /// An idle connection that is still open (closed ones are dropped: their slots went back when they closed),
        /// else the right to open one while fewer than `maximum` are open, else nil.
        mutating func take(maximum: Int) -> Grant? {
            while let last = idle.popLast() {
                if !last.pooled.connection.isClosed { return .connection(last.pooled) }
            }
            guard open < maximum else { return nil }
            open += 1
            return .slot
        }
    }

    /// Why a lease failed without reaching the database: the pool was stopped.
    public struct Closed: Error, CustomStringConvertible {
        public var description: String { "connection pool closed" }
    }

    /// Why a lease failed without reaching the database: no connection could be opened (refused, unreachable,
    /// rejected by the server: the database does not allow connections, the password was refused, too many clients).
    public struct ConnectFailed: Error, CustomStringConvertible {
        public let underlying: any Error
        public var description: String { "cannot connect: \(String(reflecting: underlying))" }
    }

    init(
        loop: any EventLoop, configuration: Result<PostgresConnection.Configuration, any Error>, maximum: Int,
        idleTimeout: Duration? = nil, logger: Logger
    ) {
        self.loop = loop
        self.configuration = configuration
        self.maximum = max(1, maximum)
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    /// Connections being opened, or open (tests).
    public var openCount: Int { state.withLock { $0.open } }

    /// Runs after a lease found nothing free and before it queues (tests widen that window with it).
    let beforeQueueing = Mutex<(@Sendable () async -> Void)?>(nil)

    func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection, CommitWatch?) async throws -> sending Result
    ) async throws -> sending Result {
        let pooled = try await lease()
        let result: Result
        do {
            result = try await body(pooled.connection, pooled.watch)
        } catch {
            release(pooled)
            throw error
        }
        release(pooled)
        return result
    }

    func lease() async throws -> Pooled {
        while true {
            let pooled = try await leaseAny()
            // Given back before its last answer came, which says it is inside a transaction block: closed (its slot
            // comes back when it has), and another one leased.
            if let watch = pooled.watch, !watch.reusable {
                Self.close(pooled.connection)
                continue
            }
            return pooled
        }
    }

    private func leaseAny() async throws -> Pooled {
        let grant = try state.withLock { state -> Grant? in
            if state.shutDown { throw Closed() }
            return state.take(maximum: maximum)
        }
        let granted: Grant
        if let grant {
            granted = grant
        } else {
            if let hook = beforeQueueing.withLock({ $0 }) { await hook() }
            granted = try await waitForGrant()
        }
        switch granted {
        case .connection(let pooled): return pooled
        case .slot: return try await open()
        }
    }

    /// Opens a connection in a slot already counted in `open`; gives the slot up when that fails, and when the
    /// connection closes.
    private func open() async throws -> Pooled {
        let id = state.withLock { state in
            state.nextConnection += 1
            return state.nextConnection
        }
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(
                on: loop, configuration: try configuration.get(), id: id, logger: logger)
        } catch {
            giveUpSlot()
            throw ConnectFailed(underlying: error)
        }
        connection.closeFuture.whenComplete { [weak self] _ in self?.giveUpSlot() }
        let watch = await Self.prepare(connection)
        if state.withLock({ $0.shutDown }) {
            try? await connection.close()
            throw Closed()
        }
        return Pooled(connection: connection, watch: watch)
    }

    /// A slot counted in `open` has no connection (it closed, or failed to open): the first waiter may open one.
    private func giveUpSlot() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.shutDown, !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .slot)
    }

    func release(_ pooled: Pooled) {
        enum Next {
            case keep
            case give(Waiter, Grant)
            case drop
            case close
        }
        // A wait for its answers failed, or it is inside a transaction block: not for the next lease.
        let reusable = pooled.watch?.reusable ?? true
        let now = ContinuousClock.now
        let next = state.withLock { state -> Next in
            if state.shutDown { return .close }
            // Its slot went back when the channel closed.
            if pooled.connection.isClosed { return .drop }
            if !reusable { return .close }
            if !state.waiters.isEmpty { return .give(state.waiters.removeFirst(), .connection(pooled)) }
            state.idle.append(Idle(pooled: pooled, since: now))
            return .keep
        }
        switch next {
        case .keep, .drop: break
        case .give(let waiter, let grant): waiter.continuation.resume(returning: grant)
        case .close: Self.close(pooled.connection)
        }
    }

    private func waitForGrant() async throws -> Grant {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                // The cancelled flag is set before the handler runs: a lease cancelled before it queued is refused
                // here, one cancelled after is taken out of the queue by the handler.
                // Asked again under this lock: a connection released (or a slot given up) since `lease` looked
                // would otherwise find no waiter and leave this one queued beside an idle connection.
                let outcome: Result<Grant, any Error>? = state.withLock { state in
                    if state.shutDown { return .failure(Closed()) }
                    if let grant = state.take(maximum: maximum) { return .success(grant) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// The socket options that find a database host gone without a word (powered off, cut off by a failover or a
    /// firewall), on a TCP connection: keepalive probes after 60 s idle, every 10 s, and at most 30 s for data or a
    /// probe to be acknowledged before the kernel closes the connection. Without them a connection to such a host is
    /// found only by the statement that next uses it, which then waits for TCP to give up on retransmitting (about 15
    /// minutes on Linux), holding its place in the pool all that time. A live server acknowledges within
    /// milliseconds, however long its statement runs. (PostgreSQL's own keepalives, a startup parameter, watch the
    /// other direction.)
    public static let socketOptions: [(ChannelOptions.Types.SocketOption, SocketOptionValue)] = {
        #if os(Linux)
            [
                (.init(level: .socket, name: .so_keepalive), 1),
                (.init(level: .tcp, name: .init(rawValue: 4)), 60),  // TCP_KEEPIDLE
                (.init(level: .tcp, name: .init(rawValue: 5)), 10),  // TCP_KEEPINTVL
                (.init(level: .tcp, name: .init(rawValue: 6)), 6),  // TCP_KEEPCNT
                (.init(level: .tcp, name: .init(rawValue: 18)), 30_000),  // TCP_USER_TIMEOUT, milliseconds
            ]
        #else
            // The numbers above are Linux's; elsewhere, the system's keepalive timing.
            [(.init(level: .socket, name: .so_keepalive), 1)]
        #endif
    }()

    /// Guards a new connection (`ReadCompleteGuard`) and sets `socketOptions` on its socket (a Unix socket has no use
    /// for them, and gets none): one look-up of its channel, one turn of its loop. Returns the guard's watch. A
    /// connection closed meanwhile gets neither (and no watch); its statement then fails as on any lost connection.
    static func prepare(_ connection: PostgresConnection) async -> CommitWatch? {
        guard let channel = ReadCompleteGuard.channel(of: connection) else { return nil }
        let unix = if case .unixDomainSocket = channel.remoteAddress { true } else { false }
        return try? await channel.eventLoop.submit { () -> CommitWatch? in
            let watch = try? ReadCompleteGuard.addIfMissing(channel.pipeline.syncOperations).watch
            if !unix, let options = channel.syncOptions {
                for (option, value) in socketOptions { try? options.setOption(option, value: value) }
            }
            return watch
        }.get()
    }

    /// The value of `option` on `connection`'s socket (tests).
    public static func socketOption(
        _ option: ChannelOptions.Types.SocketOption, of connection: PostgresConnection
    ) async throws -> SocketOptionValue? {
        guard let channel = ReadCompleteGuard.channel(of: connection) else { return nil }
        return try await channel.getOption(option).get()
    }

    /// Closes `connection` without waiting, holding it until it is closed (PostgresNIO asserts that a connection is
    /// closed before it goes away).
    private static func close(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    deinit {
        // Pools that were never run (or not stopped): their idle connections still close.
        for idle in state.withLock({ $0.idle }) { Self.close(idle.pooled.connection) }
    }

    /// Closes the connections unused since before `cutoff`, but the most recently used one; returns how many.
    @discardableResult
    func closeIdle(unusedSince cutoff: ContinuousClock.Instant) -> Int {
        let expired = state.withLock { state -> [Pooled] in
            guard !state.shutDown else { return [] }
            // Connections the server closed go first (their slots came back already), so that the one kept is open.
            state.idle.removeAll { $0.pooled.connection.isClosed }
            let old = min(state.idle.count - 1, state.idle.prefix { $0.since < cutoff }.count)
            guard old > 0 else { return [] }
            defer { state.idle.removeFirst(old) }
            return state.idle.prefix(old).map(\.pooled)
        }
        // Their slots come back as their channels close.
        for pooled in expired { Self.close(pooled.connection) }
        if !expired.isEmpty { logger.debug("closed idle connections", metadata: ["count": "\(expired.count)"]) }
        return expired.count
    }

    /// Until cancelled; then closes the idle connections, refuses new leases and waiting ones, and closes the leased
    /// ones as they come back.
    func run() async {
        // One timer per pool, on its loop: nothing is added to a lease or a release but a clock reading.
        let reaper = idleTimeout.map { timeout in
            // Half the timeout, between 10 ms and a day: a connection closes between one and one and a half timeouts
            // after its last use.
            let half = min(max(timeout / 2, .milliseconds(10)), .seconds(86_400))
            let period = TimeAmount.nanoseconds(Int64(half / .nanoseconds(1)))
            return loop.scheduleRepeatedTask(initialDelay: period, delay: period) { [weak self] _ in
                self?.closeIdle(unusedSince: .now - timeout)
            }
        }
        await withTaskCancellationHandler {
            for await _ in stopped.stream {}
        } onCancel: {
            stopped.continuation.finish()
        }
        reaper?.cancel()
        let (idle, waiters) = state.withLock { state in
            state.shutDown = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: Closed()) }
        for entry in idle { try? await entry.pooled.connection.close() }
    }
}
