import IMAPEngine
import Logging
import PostgresNIO
import StoragePostgres
import Testing

/// The process's SORT/THREAD key cache against a real store: it answers what the store answers, reads only what it
/// lacks, never keeps keys a backfill has yet to compute, and stays within its capacity by evicting the least
/// recently used mailbox.
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
struct MessageKeyCacheTests {
    /// Ranks are given, one per key, and order the subjects as their bytes do (equal ranks for equal subjects).
    static func expectRanksOrderSubjects(_ lookup: MessageKeyCache.Lookup) throws {
        let ranks = try #require(lookup.subjectRanks)
        try #require(ranks.count == lookup.keys.count)
        for i in lookup.keys.indices {
            for j in lookup.keys.indices {
                let (x, y) = (Array(lookup.keys[i].thread.subject.utf8), Array(lookup.keys[j].thread.subject.utf8))
                #expect((ranks[i] < ranks[j]) == x.lexicographicallyPrecedes(y))
                #expect((ranks[i] == ranks[j]) == (x == y))
            }
        }
    }

    /// Ranks kept with an entry are dropped when keys are added to it (a SUBJECT sort over a search that takes in
    /// new messages once indexed past the old ranks and brought the process down).
    @Test func ranksFollowTheKeysWhenMessagesArrive() async throws {
        try await StoreFixture.with { f in
            for n in 0..<10 { try await f.append("s\(9 - n)") }
            var inbox = try await f.snapshot()
            let cache = MessageKeyCache()
            try Self.expectRanksOrderSubjects(
                try await cache.keys(
                    for: inbox.uids, account: f.account, mailbox: inbox.id, complete: true, subjectRanks: true,
                    store: f.store, logger: f.logger))
            try await f.append("a new one")
            try await f.append("zz last")
            inbox = try await f.snapshot()
            // A search's subset with the new messages (added to the entry by `insert`), then the whole mailbox.
            let recent = try await cache.keys(
                for: Array(inbox.uids.suffix(4)), account: f.account, mailbox: inbox.id, complete: false,
                subjectRanks: true, store: f.store, logger: f.logger)
            #expect(recent.keys.count == 4)
            try Self.expectRanksOrderSubjects(recent)
            let all = try await cache.keys(
                for: inbox.uids, account: f.account, mailbox: inbox.id, complete: true, subjectRanks: true,
                store: f.store, logger: f.logger)
            #expect(all.keys.count == 12)
            try Self.expectRanksOrderSubjects(all)
        }
    }

    @Test func answersLikeTheStoreAndStaysWithinItsCapacity() async throws {
        try await StoreFixture.with { f in
            try await f.store.createMailbox(
                account: f.account, name: MailboxName(normalizing: "Other"), logger: f.logger)
            for n in 0..<40 {
                try await f.append(["Re: zeta", "alpha", "Élan", "élan", "beta"][n % 5] + " \(n % 3)")
                try await f.append("other \(n)", to: "Other")
            }
            let inbox = try await f.snapshot()
            let other = try await f.snapshot("Other")
            let direct = try await f.store.messageKeys(
                account: f.account, mailbox: inbox.id, uids: UIDRanges(inbox.uids), logger: f.logger)
            #expect(direct.count == 40 && direct.allSatisfy(\.isFinal))

            // Room for one mailbox's keys, not two.
            let one = direct.reduce(0) {
                $0 + 112 + $1.thread.subject.utf8.count + ($1.thread.messageID?.utf8.count ?? 0)
            }
            let cache = MessageKeyCache(capacity: one + one / 2 + 4 * 40)
            let first = try await cache.keys(
                for: inbox.uids, account: f.account, mailbox: inbox.id, complete: true, subjectRanks: true,
                store: f.store, logger: f.logger)
            #expect(first.keys == direct)
            let held = cache.bytes
            #expect(held > 0 && held <= cache.capacity)
            // A subset is answered from the cache, in UID order, with ranks that order subjects by their bytes.
            let some = Array(inbox.uids.filter { $0.rawValue % 3 == 0 })
            let subset = try await cache.keys(
                for: some, account: f.account, mailbox: inbox.id, complete: false, subjectRanks: true,
                store: f.store, logger: f.logger)
            #expect(subset.keys == direct.filter { some.contains($0.uid) })
            try Self.expectRanksOrderSubjects(subset)
            // A second mailbox pushes the first out; the total stays within the capacity.
            let others = try await cache.keys(
                for: other.uids, account: f.account, mailbox: other.id, complete: true, store: f.store,
                logger: f.logger)
            #expect(others.keys.count == 40)
            #expect(cache.bytes <= cache.capacity)
            #expect(cache.bytes < held + others.keys.count * 112)
            // Keys are read afresh once evicted: expunged messages are then left out (sessions ask only for UIDs they show).
            _ = try await f.store.updateFlags(
                account: f.account, mailbox: inbox.id, uids: Array(inbox.uids.prefix(5)),
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
            _ = try await f.store.expunge(account: f.account, mailbox: inbox.id, uids: nil, logger: f.logger)
            let after = try await cache.keys(
                for: inbox.uids, account: f.account, mailbox: inbox.id, complete: true, store: f.store,
                logger: f.logger)
            #expect(after.keys == Array(direct.dropFirst(5)))

            // Keys an older version left for backfill are used but not kept.
            try await f.client.query(
                "UPDATE contents SET keys_version = NULL, sort_subject = NULL", logger: f.logger)
            let stale = try await MessageKeyCache().keys(
                for: other.uids, account: f.account, mailbox: other.id, complete: true, store: f.store,
                logger: f.logger)
            #expect(stale.keys.count == 40 && stale.keys.allSatisfy { !$0.isFinal && $0.thread.subject.isEmpty })
            let fresh = MessageKeyCache()
            _ = try await fresh.keys(
                for: other.uids, account: f.account, mailbox: other.id, complete: true, store: f.store,
                logger: f.logger)
            #expect(fresh.bytes == 0)
        }
    }
}
