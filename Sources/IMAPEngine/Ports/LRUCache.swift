import Synchronization

/// A map bounded by the total cost of its values, least recently used first out: the shared part of the stores'
/// per-process caches (PostgreSQL's `SelectCache` and `FlagsCache`, SQLite's selected UIDs). Entries are chained from the least to the most recently used
/// through their keys, so a use and an eviction cost the same whatever the number of entries (a SELECT of a new
/// mailbox in a full cache must not scan every entry).
public final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Node {
        var value: Value
        var cost: Int
        var older: Key?
        var newer: Key?
    }

    private struct State {
        var nodes: [Key: Node] = [:]
        var oldest: Key?
        var newest: Key?
        var held = 0

        mutating func unlink(_ key: Key) {
            guard let node = nodes[key] else { return }
            if let older = node.older { nodes[older]?.newer = node.newer } else { oldest = node.newer }
            if let newer = node.newer { nodes[newer]?.older = node.older } else { newest = node.older }
            nodes[key]?.older = nil
            nodes[key]?.newer = nil
        }

        /// Makes `key` (already in `nodes`, unlinked) the most recently used.
        mutating func linkNewest(_ key: Key) {
            nodes[key]?.older = newest
            if let newest { nodes[newest]?.newer = key } else { oldest = key }
            newest = key
        }
    }

    public let capacity: Int
    private let cost: @Sendable (Key, Value) -> Int
    private let state = Mutex(State())

    public init(capacity: Int, cost: @escaping @Sendable (Key, Value) -> Int) {
        self.capacity = capacity
        self.cost = cost
    }

    /// Cost units held.
    public var held: Int { state.withLock { $0.held } }

    /// The value at `key`, now the most recently used.
    public func value(_ key: Key) -> Value? {
        state.withLock { state in
            guard let value = state.nodes[key]?.value else { return nil }
            state.unlink(key)
            state.linkNewest(key)
            return value
        }
    }

    /// Keeps `value` unless it alone exceeds the capacity or `replaces(old, value)` refuses to give up the value held,
    /// evicting the least recently used others until the total fits.
    public func store(_ value: Value, at key: Key, replaces: (Value, Value) -> Bool) {
        let added = cost(key, value)
        guard added <= capacity else { return }
        state.withLock { state in
            if let old = state.nodes[key] {
                guard replaces(old.value, value) else { return }
                state.held -= old.cost
                state.unlink(key)
            }
            state.nodes[key] = Node(value: value, cost: added)
            state.linkNewest(key)
            state.held += added
            // `key` is the newest: the oldest is another entry until only `key` is left.
            while state.held > capacity, let victim = state.oldest, victim != key {
                state.unlink(victim)
                state.held -= state.nodes.removeValue(forKey: victim)?.cost ?? 0
            }
        }
    }
}
