import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// The store's connection pools, one per event loop of the server, so that a session's store call leases a
/// connection whose channel lives on the session's own loop: the query is written, answered and handed back to the
/// session without waking another thread. With one pool for the whole group, about half of all store calls crossed
/// to the other loop and back (an eventfd write each way, and the other loop's thread woken).
///
/// The pools share the configured `maximumConnections` (each gets its part, at least one), so the database sees no
/// more connections than before. A call made off the server's loops (a tool, a test, the change feed) uses the first
/// pool, which also holds the connections reserved for the change feed.
public final class LoopPools: Sendable {
    private let entries: [(loop: any EventLoop, client: PostgresClient)]
    /// Every pool once, for `run()`.
    public let clients: [PostgresClient]

    /// One pool over the whole of `client`'s group (tools, tests).
    public init(_ client: PostgresClient) {
        entries = []
        clients = [client]
    }

    /// A pool per loop of `group` (at most as many as there are connections to share).
    ///
    /// `reserved` of the `maximumConnections` go to the first pool on top of its share: the owner holds them for good
    /// (the change feed's LISTEN connection), and a loop's pool must not be left with none. Before the split, the
    /// feed's connection was one of the single pool's; with `pool_size=2` split in two, the first loop's sessions
    /// would have had no connection at all.
    public init(
        configuration: PostgresClient.Configuration, group: any EventLoopGroup, reserved: Int = 0,
        backgroundLogger: Logger
    ) {
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        let reserved = max(0, reserved)
        let shared = max(1, configuration.options.maximumConnections - reserved)
        let count = max(1, min(loops.count, shared))
        var clients: [PostgresClient] = []
        for index in 0..<count {
            var part = configuration
            part.options.maximumConnections =
                shared / count + (index < shared % count ? 1 : 0) + (index == 0 ? reserved : 0)
            // No minimum: PostgresNIO 1.33's pool checks `minimumConcurrentConnections <= stats.active` when it opens
            // a connection on demand, and drops the connections that failed to reopen during a database outage, so the
            // first lease after the outage fails that precondition and ends the process. Seen with minimum = maximum
            // (f78a263's steady pools): 10 sessions reading through immediate restarts, the second restart.
            part.options.minimumConnections = 0
            clients.append(
                PostgresClient(
                    configuration: part, eventLoopGroup: loops.isEmpty ? group : loops[index],
                    backgroundLogger: backgroundLogger))
        }
        // A loop beyond the pools' count shares a pool whose connections are on another loop: it still works, with
        // the cross-thread hop this type exists to avoid.
        entries = loops.enumerated().map { ($0.element, clients[$0.offset % count]) }
        self.clients = clients
    }

    /// The pool of the loop this code runs on, else the first.
    public var here: PostgresClient {
        if entries.count > 1, let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            for entry in entries where entry.loop === loop { return entry.client }
        }
        return clients[0]
    }
}
