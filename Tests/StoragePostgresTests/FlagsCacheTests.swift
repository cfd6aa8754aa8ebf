import IMAPEngine
import Logging
import PostgresNIO
import Testing

@testable import StoragePostgres

/// A flags-only FETCH answered from the per-instance flags cache must give exactly what reading the rows gives,
/// whatever other instances did in between.
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
struct FlagsCacheTests {
    /// What `fetch` answers for `uids`, as flags records: the reference.
    static func reference(_ f: StoreFixture, _ mailbox: MailboxID, _ uids: [UID]) async throws -> [MessageFlagsRecord] {
        try await f.store.flagsFromRows(account: f.account, mailbox: mailbox, uids: uids, logger: f.logger)
    }

    @Test func changesFromAnotherInstanceAreSeenExactly() async throws {
        try await StoreFixture.with { f in try await Self.checkChanges(f) }
    }

    static func checkChanges(_ f: StoreFixture) async throws {
        let other = PostgresMailStore(client: f.client)
        for n in 0..<150 { try await f.append("m\(n)") }
        let first = try await f.snapshot()
        let uids = first.uids
        let initial = try await f.store.flags(account: f.account, mailbox: first.id, uids: uids, logger: f.logger)
        #expect(initial == (try await reference(f, first.id, uids)))
        #expect(f.store.flagsCache.held > 150 * 32)

        // Another instance: flags and keywords on some, expunges (with content kept), new mail.
        _ = try await other.updateFlags(
            account: f.account, mailbox: first.id, uids: [uids[0], uids[70], uids[149]],
            update: FlagUpdate(kind: .add, flags: MessageFlags(system: [.seen, .flagged], keywords: ["$Work"])),
            logger: f.logger)
        _ = try await other.updateFlags(
            account: f.account, mailbox: first.id, uids: [uids[3], uids[4]],
            update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
        _ = try await other.expunge(account: f.account, mailbox: first.id, uids: nil, logger: f.logger)
        for n in 0..<5 { try await f.append("new\(n)") }
        _ = try await other.updateFlags(
            account: f.account, mailbox: first.id, uids: [uids[70]],
            update: FlagUpdate(kind: .replace, flags: MessageFlags(keywords: ["b", "a"])), logger: f.logger)

        // The session still asks for the expunged ones (it was not told yet): served from the tombstones.
        let now = try await f.snapshot()
        let asked = uids + now.uids.filter { $0 > uids.last! }
        let answered = try await f.store.flags(account: f.account, mailbox: first.id, uids: asked, logger: f.logger)
        #expect(answered == (try await reference(f, first.id, asked)))
        #expect(answered.count == 155)
        #expect(answered.first { $0.uid == uids[70] }?.flags == MessageFlags(keywords: ["b", "a"]))

        // A subset, and one where nothing changed since (no statement reads rows then).
        let subset = Array(now.uids[10..<90])
        #expect(
            try await f.store.flags(account: f.account, mailbox: first.id, uids: subset, logger: f.logger)
                == (try await reference(f, first.id, subset)))
        #expect(
            try await f.store.flags(account: f.account, mailbox: first.id, uids: subset, logger: f.logger)
                == (try await reference(f, first.id, subset)))
    }

    /// Tombstones newer than the picture were collected: what was expunged can't be known from them, so the
    /// mailbox is read whole again.
    @Test func collectedTombstonesMakeItReadWhole() async throws {
        try await StoreFixture.with { f in try await Self.checkCollected(f) }
    }

    static func checkCollected(_ f: StoreFixture) async throws {
        for n in 0..<100 { try await f.append("m\(n)") }
        let first = try await f.snapshot()
        _ = try await f.store.flags(account: f.account, mailbox: first.id, uids: first.uids, logger: f.logger)
        _ = try await f.store.updateFlags(
            account: f.account, mailbox: first.id, uids: Array(first.uids[20..<40]),
            update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
        _ = try await f.store.expunge(account: f.account, mailbox: first.id, uids: nil, logger: f.logger)
        _ = try await f.store.collectGarbage(retention: .zero, tombstoneRetention: .zero, logger: f.logger)
        let now = try await f.snapshot()
        let answered = try await f.store.flags(
            account: f.account, mailbox: first.id, uids: now.uids, logger: f.logger)
        #expect(answered == (try await reference(f, first.id, now.uids)))
        #expect(answered.count == 80)
    }

    /// A mailbox larger than the whole cache is kept as a marker only, and its flags-only FETCHes read the rows
    /// (otherwise each batch of a FETCH would read the whole mailbox again).
    @Test func aMailboxTooLargeToKeepIsReadFromItsRows() async throws {
        try await StoreFixture.with { f in try await Self.checkOversized(f) }
    }

    static func checkOversized(_ f: StoreFixture) async throws {
        let small = PostgresMailStore(client: f.client, flagsCacheBytes: 1_000)
        for n in 0..<100 { try await f.append("m\(n)") }
        let first = try await f.snapshot()
        for _ in 0..<2 {
            let answered = try await small.flags(
                account: f.account, mailbox: first.id, uids: first.uids, logger: f.logger)
            #expect(answered == (try await reference(f, first.id, first.uids)))
            let key = FlagsCache.Key(account: f.account, mailbox: first.id)
            #expect(small.flagsCache.entry(key)?.oversized == true)
            #expect(small.flagsCache.held < 1_000)
        }
    }

    @Test func theCacheStaysWithinItsCapacity() {
        func entry(_ count: Int, modSeq: Int64) -> FlagsCache.Entry {
            FlagsCache.Entry(highestModSeq: ModSeq(0)).applying(
                MailboxDelta(
                    changed: (1...UInt32(count)).map {
                        .init(uid: UID($0), flags: MessageFlags(), modSeq: ModSeq(Int64($0) + 1))
                    }, highestModSeq: ModSeq(modSeq)))
        }
        let a = entry(100, modSeq: 200)
        let cache = FlagsCache(capacity: 2 * a.cost + 10)
        let account = AccountID(rawValue: 1)
        let keys = (1...3).map { FlagsCache.Key(account: account, mailbox: MailboxID(rawValue: $0)) }
        cache.store(a, at: keys[0])
        cache.store(a, at: keys[1])
        _ = cache.entry(keys[0])  // 0 used again: 1 is the least recent
        cache.store(a, at: keys[2])
        #expect(cache.held == 2 * a.cost)
        #expect(cache.entry(keys[1]) == nil)
        #expect(cache.entry(keys[0]) != nil && cache.entry(keys[2]) != nil)
        // An older picture never replaces a newer one.
        cache.store(entry(50, modSeq: 100), at: keys[0])
        #expect(cache.entry(keys[0])?.records.count == 100)
    }
}
