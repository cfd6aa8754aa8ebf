import Testing

@testable import IMAPEngine

/// The chain from least to most recently used stays whole through uses, replacements and evictions.
struct LRUCacheTests {
    @Test func evictsTheLeastRecentlyUsedWhateverHappenedBefore() {
        let cache = LRUCache<Int, Int>(capacity: 10) { _, value in value }
        for key in 1...5 { cache.store(2, at: key) { _, _ in true } }  // full: 1 2 3 4 5 (oldest first)
        #expect(cache.held == 10)
        _ = cache.value(1)  // 2 3 4 5 1
        _ = cache.value(4)  // 2 3 5 1 4
        cache.store(2, at: 3) { _, _ in true }  // replaced, now newest: 2 5 1 4 3
        #expect(cache.value(99) == nil && cache.held == 10)

        cache.store(3, at: 6) { _, _ in true }  // needs 3 more: 2 and 5 go
        #expect(cache.value(2) == nil && cache.value(5) == nil)
        #expect(cache.held == 9)  // 1 4 3 6
        cache.store(4, at: 1) { _, _ in true }  // 1 grows from 2 to 4: 4 goes (oldest other), then it fits
        #expect(cache.value(4) == nil)
        #expect(cache.value(3) == 2 && cache.value(6) == 3 && cache.value(1) == 4)  // now 3 6 1
        #expect(cache.held == 9)

        // A refused replacement keeps the old value and its place; a value over the capacity is not kept at all.
        cache.store(1, at: 3) { _, _ in false }
        cache.store(11, at: 7) { _, _ in true }
        #expect(cache.value(3) == 2 && cache.value(7) == nil && cache.held == 9)

        // One entry as large as the capacity evicts every other one.
        cache.store(10, at: 8) { _, _ in true }
        #expect(cache.held == 10 && cache.value(8) == 10)
        for key in [1, 3, 6] { #expect(cache.value(key) == nil) }
        cache.store(1, at: 9) { _, _ in true }  // then 8 goes in its turn
        #expect(cache.value(8) == nil && cache.value(9) == 1 && cache.held == 1)
    }
}
