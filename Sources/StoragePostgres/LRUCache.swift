import Synchronization

/// A map bounded by the total cost of its values, least recently used first out: the shared part of the store's
/// per-instance caches (`SelectCache`, `FlagsCache`).
final class LRUCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var entries: [Key: (value: Value, lastUse: UInt64)] = [:]
        var held = 0
        var clock: UInt64 = 0
    }

    let capacity: Int
    private let cost: @Sendable (Key, Value) -> Int
    private let state = Mutex(State())

    init(capacity: Int, cost: @escaping @Sendable (Key, Value) -> Int) {
        self.capacity = capacity
        self.cost = cost
    }

    /// Cost units held.
    var held: Int { state.withLock { $0.held } }

    /// The value at `key`, now the most recently used.
    func value(_ key: Key) -> Value? {
        state.withLock { state in
            state.clock += 1
            state.entries[key]?.lastUse = state.clock
            return state.entries[key]?.value
        }
    }

    /// Keeps `value` unless it alone exceeds the capacity or `replaces(old, value)` refuses to give up the value held,
    /// evicting the least recently used others until the total fits.
    func store(_ value: Value, at key: Key, replaces: (Value, Value) -> Bool) {
        let added = cost(key, value)
        guard added <= capacity else { return }
        state.withLock { state in
            if let old = state.entries[key] {
                guard replaces(old.value, value) else { return }
                state.held -= cost(key, old.value)
            }
            state.clock += 1
            state.entries[key] = (value, state.clock)
            state.held += added
            while state.held > capacity,
                let victim = state.entries.filter({ $0.key != key }).min(by: { $0.value.lastUse < $1.value.lastUse })
            {
                state.held -= cost(victim.key, victim.value.value)
                state.entries[victim.key] = nil
            }
        }
    }
}
