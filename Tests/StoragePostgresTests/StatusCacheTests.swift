import IMAPEngine
import Logging
import PostgresNIO
import Testing

@testable import StoragePostgres

/// STATUS builds on the counts this instance read before (`StatusCache`): after every kind of change made through
/// another store (another instance) it answers what a fresh count answers, and an unchanged mailbox is not counted.
@Suite(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
struct StatusCacheTests {
    /// STATUS counted afresh, without the cache.
    static func counted(_ f: StoreFixture, _ name: MailboxName) async throws -> MailboxStatus {
        try await PostgresMailStore.statusRow(
            GuardedClient(f.client), account: f.account, name: name, since: nil, logger: f.logger
        )
        .entry.status
    }

    /// STATUS through the store (its cache) equals a fresh count; returns it.
    @discardableResult
    static func expectCurrent(_ f: StoreFixture, _ name: MailboxName, _ comment: Comment) async throws -> MailboxStatus
    {
        let status = try await f.store.status(account: f.account, name: name, logger: f.logger)
        #expect(status == (try await counted(f, name)), comment)
        return status
    }

    @Test func changesFromAnotherInstanceGiveWhatACountGives() async throws {
        try await StoreFixture.with { f in
            let other = PostgresMailStore(client: f.client)
            let inbox = MailboxName.inbox
            let key = StatusCache.Key(account: f.account, name: inbox.name)
            for n in 0..<10 { try await f.append("m\(n)") }
            let first = try await Self.expectCurrent(f, inbox, "first")
            #expect(first.messages == 10 && first.unseen == 10 && first.recent == 10 && first.deleted == 0)
            #expect(f.store.statusCache.held == StatusCache.cost(key))

            // Unchanged: the row is read, the messages are not counted, and the answer is the same.
            let entry = try #require(f.store.statusCache.entry(key))
            let again = try await PostgresMailStore.statusRow(
                GuardedClient(f.client), account: f.account, name: inbox, since: entry, logger: f.logger)
            #expect(!again.counted && again.entry == entry)

            // Flags, from another instance: \Seen and \Deleted move the counts (HIGHESTMODSEQ moved).
            let uids = try await f.snapshot().uids
            _ = try await other.updateFlags(
                account: f.account, mailbox: first.id!, uids: Array(uids[0..<3]),
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .seen)), logger: f.logger)
            let seen = try await Self.expectCurrent(f, inbox, "after \\Seen elsewhere")
            #expect(seen.unseen == 7)
            let changed = try await PostgresMailStore.statusRow(
                GuardedClient(f.client), account: f.account, name: inbox, since: entry, logger: f.logger)
            #expect(changed.counted)
            _ = try await other.updateFlags(
                account: f.account, mailbox: first.id!, uids: [uids[3], uids[4]],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
            #expect(try await Self.expectCurrent(f, inbox, "after \\Deleted elsewhere").deleted == 2)

            // Expunge and append elsewhere.
            _ = try await other.expunge(account: f.account, mailbox: first.id!, uids: nil, logger: f.logger)
            let expunged = try await Self.expectCurrent(f, inbox, "after EXPUNGE elsewhere")
            #expect(expunged.messages == 8 && expunged.size < first.size)
            try await f.append("late")
            #expect(try await Self.expectCurrent(f, inbox, "after APPEND").messages == 9)

            // A \Recent claim moves neither UIDNEXT nor HIGHESTMODSEQ, and still changes RECENT.
            let claimed = try await other.claimRecent(
                account: f.account, mailbox: first.id!, upTo: UID(UInt32.max - 1), logger: f.logger)
            #expect(claimed != nil)
            #expect(try await Self.expectCurrent(f, inbox, "after a \\Recent claim elsewhere").recent == 0)
        }
    }

    @Test func aMailboxMadeAgainUnderTheSameNameIsCountedAgain() async throws {
        try await StoreFixture.with { f in
            let other = PostgresMailStore(client: f.client)
            let name = MailboxName(normalizing: "Projects")
            try await f.store.createMailbox(account: f.account, name: name, logger: f.logger)
            for n in 0..<3 { try await f.append("p\(n)", to: "Projects") }
            #expect(try await Self.expectCurrent(f, name, "before").messages == 3)
            try await other.deleteMailbox(account: f.account, name: name, logger: f.logger)
            try await other.createMailbox(account: f.account, name: name, logger: f.logger)
            #expect(try await Self.expectCurrent(f, name, "made again").messages == 0)
            try await other.deleteMailbox(account: f.account, name: name, logger: f.logger)
            await #expect(throws: StoreError.mailboxNotFound) {
                _ = try await f.store.status(account: f.account, name: name, logger: f.logger)
            }
        }
    }
}
