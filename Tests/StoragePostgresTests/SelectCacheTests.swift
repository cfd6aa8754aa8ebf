import IMAPEngine
import Logging
import PostgresNIO
import Testing

@testable import StoragePostgres

/// SELECT builds on the UID list this instance read before (`SelectCache`): what it answers after changes made
/// through another store (another instance) equals a whole read, and it falls back to a whole read whenever the
/// earlier list cannot be built on.
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
struct SelectCacheTests {
    static func expectSame(_ a: MailboxSnapshot, _ b: MailboxSnapshot, _ comment: Comment) {
        #expect(a.id == b.id && a.uidValidity == b.uidValidity && a.uidNext == b.uidNext, comment)
        #expect(a.highestModSeq == b.highestModSeq && a.uids == b.uids && a.firstUnseen == b.firstUnseen, comment)
        #expect(a.keywords == b.keywords && a.recent == b.recent, comment)
    }

    static func entry(_ s: MailboxSnapshot) -> SelectCache.Entry {
        SelectCache.Entry(
            mailbox: s.id, uidValidity: s.uidValidity, uidNext: s.uidNext, highestModSeq: s.highestModSeq,
            uids: s.uids, firstUnseen: s.firstUnseen)
    }

    @Test func changesFromAnotherInstanceGiveWhatAWholeReadGives() async throws {
        try await StoreFixture.with { f in
            let other = PostgresMailStore(client: f.client)
            let inbox = MailboxName.inbox
            for n in 0..<20 { try await f.append("m\(n)") }
            let before = try await f.store.select(account: f.account, name: inbox, claimRecent: false, logger: f.logger)
            #expect(f.store.selectCache.held == 20 + 32 + 1)  // UIDs, the entry's fixed part, "INBOX"

            // Another instance: new mail, flags, keywords, expunges (old and new messages).
            for n in 20..<25 { try await f.append("n\(n)") }
            let some = [before.uids[0], before.uids[7], before.uids[19]]
            _ = try await other.updateFlags(
                account: f.account, mailbox: before.id, uids: some + [before.uids[3]],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted, keywords: ["$Work"])),
                logger: f.logger)
            _ = try await other.expunge(account: f.account, mailbox: before.id, uids: some, logger: f.logger)
            _ = try await other.updateFlags(
                account: f.account, mailbox: before.id, uids: Array(before.uids[1...2]),
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .seen)), logger: f.logger)

            let changes = try #require(
                try await PostgresMailStore.selectChanges(
                    GuardedClient(f.client), account: f.account, name: inbox, since: Self.entry(before),
                    logger: f.logger))
            let whole = try await PostgresMailStore.selectWhole(
                GuardedClient(f.client), account: f.account, name: inbox, logger: f.logger)
            Self.expectSame(changes, whole, "after changes")
            #expect(whole.uids.count == 22 && !whole.uids.contains(before.uids[7]))
            Self.expectSame(
                try await f.store.select(account: f.account, name: inbox, claimRecent: false, logger: f.logger), whole,
                "through select")

            // Nothing changed since: the same answer, the first unseen UID taken from the earlier list.
            let unchanged = try #require(
                try await PostgresMailStore.selectChanges(
                    GuardedClient(f.client), account: f.account, name: inbox, since: Self.entry(whole), logger: f.logger
                ))
            Self.expectSame(unchanged, whole, "unchanged")
            // Only \Seen changed elsewhere: the first unseen UID moves on (HIGHESTMODSEQ did).
            let firstUnseen = try #require(whole.firstUnseen)
            _ = try await other.updateFlags(
                account: f.account, mailbox: whole.id, uids: [firstUnseen],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .seen)), logger: f.logger)
            let seen = try #require(
                try await PostgresMailStore.selectChanges(
                    GuardedClient(f.client), account: f.account, name: inbox, since: Self.entry(whole), logger: f.logger
                ))
            #expect(seen.firstUnseen != firstUnseen)
            Self.expectSame(
                seen,
                try await PostgresMailStore.selectWhole(
                    GuardedClient(f.client), account: f.account, name: inbox, logger: f.logger),
                "after \\Seen elsewhere")
        }
    }

    @Test func anEarlierListThatCannotBeBuiltOnIsReadWhole() async throws {
        try await StoreFixture.with { f in
            let name = MailboxName(normalizing: "Projects")
            try await f.store.createMailbox(account: f.account, name: name, logger: f.logger)
            for n in 0..<5 { try await f.append("p\(n)", to: "Projects") }
            let first = try await f.store.select(account: f.account, name: name, claimRecent: false, logger: f.logger)

            // Tombstones newer than the list were collected: the expunges can't be known from them.
            _ = try await f.store.updateFlags(
                account: f.account, mailbox: first.id, uids: [first.uids[1]],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
            _ = try await f.store.expunge(account: f.account, mailbox: first.id, uids: nil, logger: f.logger)
            _ = try await f.store.collectGarbage(retention: .zero, tombstoneRetention: .zero, logger: f.logger)
            #expect(
                try await PostgresMailStore.selectChanges(
                    GuardedClient(f.client), account: f.account, name: name, since: Self.entry(first), logger: f.logger)
                    == nil)
            let collected = try await f.store.select(
                account: f.account, name: name, claimRecent: false, logger: f.logger)
            #expect(collected.uids == [first.uids[0]] + first.uids[2...])

            // Deleted and created again: another mailbox (id, UIDVALIDITY) under the same name.
            try await f.store.deleteMailbox(account: f.account, name: name, logger: f.logger)
            try await f.store.createMailbox(account: f.account, name: name, logger: f.logger)
            try await f.append("again", to: "Projects")
            #expect(
                try await PostgresMailStore.selectChanges(
                    GuardedClient(f.client), account: f.account, name: name, since: Self.entry(collected),
                    logger: f.logger) == nil)
            let again = try await f.store.select(account: f.account, name: name, claimRecent: false, logger: f.logger)
            #expect(again.id != first.id && again.uids.count == 1)
            Self.expectSame(
                again,
                try await PostgresMailStore.selectWhole(
                    GuardedClient(f.client), account: f.account, name: name, logger: f.logger),
                "recreated")
        }
    }

    @Test func theCacheStaysWithinItsCapacity() {
        let cache = SelectCache(capacity: 100 + 3 * 32)  // each entry costs 32 units beside its UIDs
        func entry(_ id: Int64, _ count: Int) -> SelectCache.Entry {
            SelectCache.Entry(
                mailbox: MailboxID(rawValue: id), uidValidity: 1, uidNext: UID(UInt32(count + 1)),
                highestModSeq: ModSeq(Int64(count)), uids: (1...UInt32(count)).map { UID($0) }, firstUnseen: nil)
        }
        let account = AccountID(rawValue: 1)
        cache.store(entry(1, 60), at: .init(account: account, name: "a"))
        cache.store(entry(2, 30), at: .init(account: account, name: "b"))
        _ = cache.entry(.init(account: account, name: "a"))  // a is used again: b is the least recent
        cache.store(entry(3, 30), at: .init(account: account, name: "c"))
        #expect(cache.held == 90 + 2 * 32)
        #expect(cache.entry(.init(account: account, name: "b")) == nil)
        cache.store(entry(4, 101 + 2 * 32), at: .init(account: account, name: "d"))  // too large to keep at all
        #expect(cache.held == 90 + 2 * 32 && cache.entry(.init(account: account, name: "d")) == nil)
        // Empty mailboxes cost their fixed part: many of them are bounded too.
        let small = SelectCache(capacity: 10 * 32)
        for n in 0..<100 {
            small.store(
                SelectCache.Entry(
                    mailbox: MailboxID(rawValue: Int64(n)), uidValidity: 1, uidNext: UID(1), highestModSeq: ModSeq(1),
                    uids: [], firstUnseen: nil),
                at: .init(account: account, name: "e\(n)"))
        }
        #expect(small.held <= 10 * 32)
        // An older list never replaces a newer one of the same mailbox.
        cache.store(entry(1, 10), at: .init(account: account, name: "a"))
        #expect(cache.entry(.init(account: account, name: "a"))?.uids.count == 60)
        #expect(
            SelectCache.apply([1, 2, 3, 5].map { UID($0) }, expunged: [UID(2), UID(9)], added: [UID(7), UID(8)])
                == [1, 3, 5, 7, 8].map { UID($0) })
        // Nothing changed (or only UIDs the list already has): the cached list itself, not a copy of it.
        let cached = (1...1000).map { UID(UInt32($0)) }
        let unchanged = SelectCache.apply(cached, expunged: [], added: [UID(1000)])
        #expect(unchanged == cached)
        #expect(
            unchanged.withUnsafeBufferPointer { $0.baseAddress } == cached.withUnsafeBufferPointer { $0.baseAddress })
    }
}
