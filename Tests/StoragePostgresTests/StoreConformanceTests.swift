import IMAPEngine
import Logging
import PostgresNIO
import StoragePostgres
import StorageSQLite
import Synchronization
import Testing

/// The store's obligations (STYLE.md §8.5), against a real PostgreSQL and a SQLite file, with the same test code.
@Suite struct StoreConformanceTests {
    @Test(arguments: StoreKind.available) func uidsStrictlyIncreaseAndAreNeverReused(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let a = try await f.append("one")
            let b = try await f.append("two")
            #expect(b.uid > a.uid)
            let inbox = try await f.snapshot()
            _ = try await f.store.updateFlags(
                account: f.account, mailbox: inbox.id, uids: [b.uid],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
            #expect(
                try await f.store.expunge(account: f.account, mailbox: inbox.id, uids: nil, logger: f.logger).uids
                    == [b.uid]
            )
            let c = try await f.append("three")
            #expect(c.uid > b.uid)  // the expunged UID is not reused
            #expect(try await f.snapshot().uids == [a.uid, c.uid])
        }
    }

    @Test(arguments: StoreKind.available) func uidValidityChangesWhenAMailboxIsRecreated(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let name = MailboxName(normalizing: "Projects")
            try await f.store.createMailbox(account: f.account, name: name, logger: f.logger)
            let first = try await f.snapshot("Projects").uidValidity
            try await f.store.deleteMailbox(account: f.account, name: name, logger: f.logger)
            try await f.store.createMailbox(account: f.account, name: name, logger: f.logger)
            let second = try await f.snapshot("Projects").uidValidity
            #expect(second > first)
            await #expect(throws: StoreError.alreadyExists) {
                try await f.store.createMailbox(account: f.account, name: name, logger: f.logger)
            }
        }
    }

    /// RFC 6154: the database keeps one mailbox per special use, whatever races the session's check loses; the
    /// loser creates nothing.
    @Test(arguments: StoreKind.available) func aSpecialUseBelongsToOneMailbox(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            try await f.store.createMailbox(
                account: f.account, name: MailboxName(normalizing: "Sent"), specialUse: "\\Sent", logger: f.logger)
            await #expect(throws: StoreError.cannot("\\Sent is already the use of another mailbox")) {
                try await f.store.createMailbox(
                    account: f.account, name: MailboxName(normalizing: "Sent2"), specialUse: "\\Sent", logger: f.logger)
            }
            let names = try await f.store.listMailboxes(account: f.account, logger: f.logger).map(\.name.name)
            #expect(names.sorted() == ["INBOX", "Sent"])
        }
    }

    @Test(arguments: StoreKind.available) func changesSinceIsExactIncludingTombstones(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let a = try await f.append("a")
            let b = try await f.append("b")
            let start = try await f.snapshot()
            let c = try await f.append("c")
            _ = try await f.store.updateFlags(
                account: f.account, mailbox: start.id, uids: [a.uid, b.uid],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted, keywords: ["$Junk"])),
                logger: f.logger)
            _ = try await f.store.expunge(account: f.account, mailbox: start.id, uids: [b.uid], logger: f.logger)
            let delta = try await f.store.changes(
                account: f.account, mailbox: start.id, since: start.highestModSeq, logger: f.logger)
            #expect(delta.changed.map(\.uid) == [a.uid, c.uid])
            #expect(delta.changed.first?.flags == MessageFlags(system: .deleted, keywords: ["$Junk"]))
            #expect(delta.expunged == [b.uid])
            let end = try await f.snapshot()
            #expect(delta.highestModSeq == end.highestModSeq)
            let none = try await f.store.changes(
                account: f.account, mailbox: start.id, since: delta.highestModSeq, logger: f.logger)
            #expect(none.changed.isEmpty && none.expunged.isEmpty)
        }
    }

    /// 50 concurrent writers; a poller on `changes(since:)` must see every committed change, never skipping one
    /// because a lower modseq committed after a higher one (STYLE.md §4.8).
    @Test(arguments: StoreKind.available) func modSeqOrderEqualsCommitOrder(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let inbox = try await f.snapshot()
            let seen = Mutex<Set<UInt32>>([])
            let done = Mutex(false)
            let poller = Task {
                var since = inbox.highestModSeq
                while true {
                    let finished = done.withLock { $0 }
                    let delta = try await f.store.changes(
                        account: f.account, mailbox: inbox.id, since: since, logger: f.logger)
                    seen.withLock { $0.formUnion(delta.changed.map(\.uid.rawValue)) }
                    since = delta.highestModSeq
                    if finished { return }
                }
            }
            let appended = try await withThrowingTaskGroup(of: UID.self) { group in
                for i in 0..<50 {
                    group.addTask { try await f.append("concurrent \(i)").uid }
                }
                var uids: [UID] = []
                for try await uid in group { uids.append(uid) }
                return uids
            }
            done.withLock { $0 = true }
            try await poller.value
            let seenUIDs = seen.withLock { $0 }
            #expect(seenUIDs == Set(appended.map(\.rawValue)))
            #expect(Set(appended).count == 50)
            #expect(try await f.snapshot().uids.count == 50)
        }
    }

    @Test(arguments: StoreKind.available) func flagUpdatesReplaceAddAndRemoveInOrder(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let a = try await f.append("a", flags: MessageFlags(system: .seen, keywords: ["one"]))
            let b = try await f.append("b")
            let inbox = try await f.snapshot()
            func update(_ kind: FlagUpdate.Kind, _ flags: MessageFlags, _ uids: [UID]) async throws -> [StoredFlags] {
                try await f.store.updateFlags(
                    account: f.account, mailbox: inbox.id, uids: uids, update: FlagUpdate(kind: kind, flags: flags),
                    logger: f.logger)
            }
            let added = try await update(
                .add, MessageFlags(system: .flagged, keywords: ["two", "one", "two"]), [a.uid, b.uid])
            #expect(
                added.map(\.flags) == [
                    MessageFlags(system: [.seen, .flagged], keywords: ["one", "two"]),
                    MessageFlags(system: .flagged, keywords: ["two", "one"]),
                ])
            #expect(added.map(\.changed) == [true, true])
            #expect(Set(added.map(\.modSeq)).count == 1 && added[0].modSeq > inbox.highestModSeq)
            // Nothing to change: same flags, same modseq, and the mailbox's modseq does not move.
            let again = try await update(.add, MessageFlags(system: .flagged), [a.uid, b.uid])
            #expect(again.map(\.changed) == [false, false])
            #expect(again.map(\.modSeq) == added.map(\.modSeq))
            #expect(try await f.snapshot().highestModSeq == added[0].modSeq)
            let removed = try await update(.remove, MessageFlags(system: .seen, keywords: ["one"]), [a.uid])
            #expect(removed.map(\.flags) == [MessageFlags(system: .flagged, keywords: ["two"])])
            // Replace; a UID that does not exist is left out.
            let replaced = try await update(.replace, MessageFlags(keywords: ["three"]), [b.uid, UID(999)])
            #expect(replaced.map(\.uid) == [b.uid])
            #expect(replaced.first?.flags == MessageFlags(keywords: ["three"]))
            #expect(try await f.snapshot().keywords.contains("three"))
            let delta = try await f.store.changes(
                account: f.account, mailbox: inbox.id, since: added[0].modSeq, logger: f.logger)
            #expect(delta.changed.map(\.uid) == [a.uid, b.uid])
            await #expect(throws: StoreError.mailboxNotFound) {
                _ = try await f.store.updateFlags(
                    account: f.account, mailbox: MailboxID(rawValue: Int64.max), uids: [a.uid],
                    update: FlagUpdate(kind: .add, flags: MessageFlags(system: .seen)), logger: f.logger)
            }
        }
    }

    /// STORE, EXPUNGE, MOVE and APPEND racing on one mailbox (a deadlock would surface as an error once the store's
    /// retries run out): no lost or doubled message, and `changes(since:)` ends in the same state as a fresh read.
    @Test(arguments: StoreKind.available) func concurrentWritersKeepEveryChange(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            try await f.store.createMailbox(
                account: f.account, name: MailboxName(normalizing: "Archive"), logger: f.logger)
            for i in 0..<40 { try await f.append("seed \(i)") }
            let inbox = try await f.snapshot()
            let archive = MailboxName(normalizing: "Archive")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<12 {
                    group.addTask {
                        for round in 0..<8 {
                            let uids = inbox.uids.shuffled().prefix(10).sorted()
                            switch (worker + round) % 4 {
                            case 0:
                                _ = try await f.store.updateFlags(
                                    account: f.account, mailbox: inbox.id, uids: uids,
                                    update: FlagUpdate(kind: .add, flags: MessageFlags(keywords: ["w\(worker)"])),
                                    logger: f.logger)
                            case 1:
                                _ = try await f.store.updateFlags(
                                    account: f.account, mailbox: inbox.id, uids: Array(uids.prefix(2)),
                                    update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)),
                                    logger: f.logger)
                                _ = try await f.store.expunge(
                                    account: f.account, mailbox: inbox.id, uids: Array(uids.prefix(2)),
                                    logger: f.logger)
                            case 2:
                                _ = try await f.store.move(
                                    account: f.account, from: inbox.id, uids: Array(uids.suffix(2)), to: archive,
                                    logger: f.logger)
                            default:
                                try await f.append("late \(worker) \(round)")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let after = try await f.snapshot()
            let moved = try await f.snapshot("Archive")
            let delta = try await f.store.changes(
                account: f.account, mailbox: inbox.id, since: inbox.highestModSeq, logger: f.logger)
            let survivors = Set(inbox.uids).subtracting(delta.expunged)
            #expect(Set(after.uids).intersection(inbox.uids) == survivors)
            #expect(after.highestModSeq == delta.highestModSeq)
            // Every message is in exactly one place: seeds left in INBOX, moved, or expunged; appends add 24.
            let expungedOrMoved = inbox.uids.count - survivors.count
            #expect(after.uids.count == survivors.count + 24)
            #expect(moved.uids.count <= expungedOrMoved)
        }
    }

    @Test(arguments: StoreKind.available) func moveIsAtomicAndCopyStoresContentOnce(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            try await f.store.createMailbox(
                account: f.account, name: MailboxName(normalizing: "Archive"), logger: f.logger)
            let a = try await f.append("a", flags: MessageFlags(system: .flagged, keywords: ["work"]))
            let b = try await f.append("b")
            let inbox = try await f.snapshot()
            let copied = try await f.store.copy(
                account: f.account, from: inbox.id, uids: [a.uid, b.uid], to: MailboxName(normalizing: "Archive"),
                logger: f.logger)
            #expect(copied.sourceUIDs == [a.uid, b.uid])
            #expect(copied.destinationUIDs.count == 2)
            let moved = try await f.store.move(
                account: f.account, from: inbox.id, uids: [a.uid], to: MailboxName(normalizing: "Archive"),
                logger: f.logger)
            #expect(moved.sourceUIDs == [a.uid])
            #expect(try await f.snapshot().uids == [b.uid])
            let archive = try await f.snapshot("Archive")
            #expect(archive.uids.count == 3)
            #expect(archive.keywords == ["work"])
            let records = try await f.store.fetch(
                account: f.account, mailbox: archive.id, uids: archive.uids, columns: [], logger: f.logger)
            #expect(Set(records.map(\.contentID)).count == 2)  // 3 entries, 2 stored contents
            #expect(records.first?.flags == MessageFlags(system: .flagged, keywords: ["work"]))
            // Moving to a mailbox that does not exist changes nothing.
            await #expect(throws: StoreError.mailboxNotFound) {
                _ = try await f.store.move(
                    account: f.account, from: inbox.id, uids: [b.uid], to: MailboxName(normalizing: "Nope"),
                    logger: f.logger)
            }
            #expect(try await f.snapshot().uids == [b.uid])
        }
    }

    /// FETCH reads in batches cut by a byte budget and asks again from `covered`. Over lists with holes (read by
    /// range and filtered), sparse lists and messages expunged elsewhere, the batches must give each asked-for
    /// message exactly once, in order, and always make progress.
    @Test(arguments: StoreKind.available) func budgetedBatchesCoverEveryAskedMessageOnce(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            for n in 0..<60 { try await f.append("budget \(n) " + String(repeating: "x", count: n % 7 * 20)) }
            let all = try await f.snapshot()
            let gone = [all.uids[7], all.uids[40], all.uids[59]]  // expunged elsewhere: served from tombstones
            _ = try await f.store.updateFlags(
                account: f.account, mailbox: all.id, uids: gone,
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: f.logger)
            _ = try await f.store.expunge(account: f.account, mailbox: all.id, uids: gone, logger: f.logger)
            let uids = all.uids
            let lists: [[UID]] = [
                uids,
                uids.enumerated().filter { $0.offset % 5 != 3 }.map(\.element),  // dense with holes
                uids.enumerated().filter { $0.offset % 9 == 0 }.map(\.element),  // sparse
                Array(uids[30..<60]),
            ]
            for list in lists {
                for budget in [1, 300, 2_000, 1 << 20] {
                    var start = 0
                    var seen: [UID] = []
                    while start < list.count {
                        let batch = try await f.store.fetch(
                            account: f.account, mailbox: all.id, uids: Array(list[start...]), columns: [.envelope],
                            byteBudget: budget, logger: f.logger)
                        #expect(batch.covered >= 1 && start + batch.covered <= list.count)
                        let span = Set(list[start..<(start + max(1, batch.covered))])
                        #expect(batch.records.allSatisfy { span.contains($0.uid) }, "budget \(budget)")
                        seen += batch.records.map(\.uid)
                        start += max(1, batch.covered)
                    }
                    #expect(seen == list, "budget \(budget), \(list.count) asked")
                }
            }
        }
    }

    @Test(arguments: StoreKind.available) func recentIsClaimedByExactlyOneSession(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            try await f.append("1")
            try await f.append("2")
            let claims = try await withThrowingTaskGroup(of: [UID].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await f.store.select(account: f.account, name: .inbox, claimRecent: true, logger: f.logger)
                            .recent
                    }
                }
                var all: [[UID]] = []
                for try await claim in group { all.append(claim) }
                return all
            }
            let claimers = claims.filter { !$0.isEmpty }.count
            let claimed = claims.flatMap { $0 }.count
            #expect(claimers == 1)
            #expect(claimed == 2)
            let status = try await f.store.status(account: f.account, name: .inbox, logger: f.logger)
            #expect(status.recent == 0)
            try await f.append("3")
            #expect(try await f.store.status(account: f.account, name: .inbox, logger: f.logger).recent == 1)
        }
    }

    /// An APPEND that claims (the appending session has the mailbox selected) takes `\Recent` for the message and
    /// every UID not yet claimed below it, in the same write: a later claim gets nothing.
    @Test(arguments: StoreKind.available) func anAppendClaimsRecentInItsOwnWrite(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let first = try await f.append("unclaimed")
            let text = Array("From: a@example.com\r\nSubject: mine\r\n\r\nbody\r\n".utf8)
            let mine = try await f.store.append(
                account: f.account, mailbox: .inbox, message: ParsedMessage(parsing: text), flags: MessageFlags(),
                date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0), claimRecent: true,
                logger: f.logger)
            #expect(mine.recent == first.uid.rawValue...mine.uid.rawValue)
            #expect(
                try await f.store.claimRecent(
                    account: f.account, mailbox: f.snapshot().id, upTo: mine.uid, logger: f.logger)
                    == nil)
            #expect(try await f.store.status(account: f.account, name: .inbox, logger: f.logger).recent == 0)
            // Without a claim the next message stays recent for whoever claims it.
            let other = try await f.append("other")
            #expect(other.recent == nil)
            #expect(try await f.store.status(account: f.account, name: .inbox, logger: f.logger).recent == 1)
        }
    }

    /// Every change's notification describes it exactly as `changes(since:)` reads it, so sessions take it in without
    /// reading (`FeedBacklog`); keywords of any spelling survive the trip; a change of more than
    /// `noticeMessages` messages is announced by its modseq alone.
    @Test(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
    func notificationsDescribeTheirChange() async throws {
        try await ConformanceFixture.with(.postgres) { f in
            try await Self.withFeed(f) { inbox, next in
                func expectDescribed(
                    _ write: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
                )
                    async throws
                {
                    try await write()
                    let change = await next()
                    let (modSeq, deltas) = try #require(change, sourceLocation: sourceLocation)
                    let read = try await f.store.changes(
                        account: f.account, mailbox: inbox.id, since: ModSeq(modSeq.rawValue - 1), logger: f.logger)
                    #expect(read.highestModSeq == modSeq, sourceLocation: sourceLocation)
                    #expect(deltas == [read], sourceLocation: sourceLocation)
                }
                let keywords = ["$Work", "a:b,c;d", "quote\"back\\slash", "ünï"]
                var appended: AppendResult?
                try await expectDescribed {
                    appended = try await f.append("flagged", flags: MessageFlags(system: .flagged, keywords: keywords))
                }
                let uid = try #require(appended?.uid)
                try await expectDescribed {
                    _ = try await f.store.updateFlags(
                        account: f.account, mailbox: inbox.id, uids: [uid, UID(1)],
                        update: FlagUpdate(kind: .add, flags: MessageFlags(system: [.seen, .deleted])), logger: f.logger
                    )
                }
                try await expectDescribed {
                    _ = try await f.store.expunge(account: f.account, mailbox: inbox.id, uids: nil, logger: f.logger)
                }
                try await f.store.createMailbox(
                    account: f.account, name: MailboxName(normalizing: "Other"), logger: f.logger)
                let source = try await f.append("copied", to: "Other", flags: MessageFlags(keywords: ["$Later"]))
                try await expectDescribed {
                    _ = try await f.store.copy(
                        account: f.account, from: f.snapshot("Other").id, uids: [source.uid], to: .inbox,
                        logger: f.logger)
                }

                // Too many messages to describe: the modseq alone.
                let many = PostgresMailStore.noticeMessages + 1
                let text = Array("From: a@example.com\r\nSubject: many\r\n\r\nbody\r\n".utf8)
                let date = InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0)
                let stored = try await f.store.appendAll(
                    account: f.account, mailbox: .inbox,
                    messages: Array(repeating: (ParsedMessage(parsing: text), MessageFlags(), date), count: many),
                    logger: f.logger)
                let last = try #require(stored.last?.modSeq)
                var seen = inbox.highestModSeq
                while seen < last { seen = try #require(await next()).0 }
                _ = try await f.store.updateFlags(
                    account: f.account, mailbox: inbox.id, uids: stored.map(\.uid),
                    update: FlagUpdate(kind: .add, flags: MessageFlags(system: .answered)), logger: f.logger)
                let change = await next()
                let (modSeq, deltas) = try #require(change)
                #expect(modSeq.rawValue == last.rawValue + 1)
                #expect(deltas.isEmpty)
            }
        }
    }

    @Test(arguments: StoreKind.available) func appendSharesContentOnlyWithinAnAccount(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let bob = try await f.store.account(login: "bob", create: true, logger: f.logger)
            try await f.store.createMailbox(
                account: f.account, name: MailboxName(normalizing: "Archive"), logger: f.logger)
            let message = ParsedMessage(parsing: Array("Subject: shared\r\n\r\nonce\r\n".utf8))
            let date = InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0)
            func append(_ account: AccountID, _ mailbox: String, sharing: Int64?) async throws -> Int64 {
                try await f.store.append(
                    account: account, mailbox: MailboxName(normalizing: mailbox), message: message,
                    flags: MessageFlags(), date: date, sharing: sharing, logger: f.logger
                ).contentID
            }
            let first = try await append(f.account, "INBOX", sharing: nil)
            #expect(try await append(f.account, "Archive", sharing: first) == first)
            // A content id that does not exist (or another account's) is not used: the message is stored anew.
            let fresh = try await append(f.account, "Archive", sharing: Int64.max)
            #expect(fresh != first)
            let bobs = try await append(bob, "INBOX", sharing: first)
            #expect(bobs != first && bobs != fresh)
            let archive = try await f.snapshot("Archive")
            let records = try await f.store.fetch(
                account: f.account, mailbox: archive.id, uids: archive.uids, columns: [], logger: f.logger)
            #expect(records.map(\.contentID) == [first, fresh])
            #expect(archive.uids.count == 2)
            let bytes = try await f.store.contentBytes(
                account: f.account, slices: records.map { ContentSlice(contentID: $0.contentID, range: 0..<$0.size) },
                logger: f.logger)
            #expect(bytes == [message.bytes, message.bytes])
            // A missing mailbox is still an error with shared content (last: see the note in IntegrationTests/Support/TestEnvironment.swift
            // about closures inside #expect).
            await #expect(throws: StoreError.mailboxNotFound) {
                _ = try await append(f.account, "Nope", sharing: first)
            }
        }
    }

    @Test(arguments: StoreKind.available) func accountsAreIsolated(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            let bob = try await f.store.account(login: "bob", create: true, logger: f.logger)
            try await f.append("for alice")
            try await f.append("for bob", account: bob)
            try await f.append("for bob too", account: bob)
            #expect(try await f.snapshot().uids.count == 1)
            let bobInbox = try await f.store.select(account: bob, name: .inbox, claimRecent: false, logger: f.logger)
            #expect(bobInbox.uids.count == 2)
            // Alice cannot read Bob's mailbox by id.
            let stolen = try await f.store.fetch(
                account: f.account, mailbox: bobInbox.id, uids: bobInbox.uids, columns: [], logger: f.logger)
            #expect(stolen.isEmpty)
            await #expect(throws: StoreError.accountNotFound) {
                try await f.store.account(login: "carol", create: false, logger: f.logger)
            }
        }
    }

    @Test(arguments: StoreKind.available) func renameMovesInferiorsAndRefusesClashes(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            for name in ["a/b/c", "x"] {
                try await f.store.createMailbox(
                    account: f.account, name: MailboxName(normalizing: name), logger: f.logger)
            }
            try await f.store.renameMailbox(
                account: f.account, from: MailboxName(normalizing: "a"), to: MailboxName(normalizing: "z/y"),
                logger: f.logger)
            let names = try await f.store.listMailboxes(account: f.account, logger: f.logger).map(\.name.name).sorted()
            #expect(names == ["INBOX", "x", "z", "z/y", "z/y/b", "z/y/b/c"])
            await #expect(throws: StoreError.alreadyExists) {
                try await f.store.renameMailbox(
                    account: f.account, from: MailboxName(normalizing: "x"), to: MailboxName(normalizing: "z"),
                    logger: f.logger)
            }
            await #expect(throws: StoreError.mailboxNotFound) {
                try await f.store.renameMailbox(
                    account: f.account, from: MailboxName(normalizing: "nope"), to: MailboxName(normalizing: "n2"),
                    logger: f.logger)
            }
        }
    }

    /// LIST reads the mailboxes and the subscriptions in one statement: the same as reading each.
    @Test(arguments: StoreKind.available) func mailboxesAndSubscriptionsAreReadTogether(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            try await f.store.createMailbox(
                account: f.account, name: MailboxName(normalizing: "Work/2026"), logger: f.logger)
            for name in ["Work", "Gone"] {
                try await f.store.setSubscribed(
                    account: f.account, name: MailboxName(normalizing: name), subscribed: true, logger: f.logger)
            }
            let both = try await f.store.mailboxesAndSubscriptions(account: f.account, logger: f.logger)
            let listings = try await f.store.listMailboxes(account: f.account, logger: f.logger)
            #expect(both.listings.map(\.name).sorted() == listings.map(\.name).sorted())
            #expect(
                both.listings.map(\.name).sorted()
                    == ["INBOX", "Work", "Work/2026"].map(MailboxName.init(normalizing:)))
            #expect(Set(both.listings.map(\.id)) == Set(listings.map(\.id)))
            let subscriptions = try await f.store.subscriptions(account: f.account, logger: f.logger)
            #expect(both.subscriptions.sorted() == subscriptions.sorted())
            #expect(both.subscriptions.sorted() == ["Gone", "INBOX", "Work"].map(MailboxName.init(normalizing:)))
        }
    }

    @Test(arguments: StoreKind.available) func renameInboxMovesItsMessages(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            try await f.append("1")
            try await f.append("2")
            try await f.store.createMailbox(
                account: f.account, name: MailboxName(normalizing: "INBOX/keep"), logger: f.logger)
            try await f.store.renameMailbox(
                account: f.account, from: .inbox, to: MailboxName(normalizing: "Old"), logger: f.logger)
            #expect(try await f.snapshot().uids.isEmpty)
            #expect(try await f.snapshot("Old").uids.count == 2)
            #expect(try await f.snapshot("INBOX/keep").uids.isEmpty)
        }
    }

    /// A description over NOTIFY's 8,000 bytes in characters of several bytes is left out; the write still succeeds.
    @Test(.enabled(if: StoreEnvironment.ready, StoreEnvironment.skipReason))
    func aDescriptionTooLongInBytesIsLeftOut() async throws {
        try await ConformanceFixture.with(.postgres) { f in
            try await Self.withFeed(f) { inbox, next in
                // 2,000 characters, 8,000 bytes.
                let keywords = (0..<100).map { "k\($0)" + String(repeating: "😀", count: 19) }
                let appended = try await f.append("wide", flags: MessageFlags(keywords: keywords))
                let (modSeq, deltas) = try #require(await next())
                #expect(modSeq == appended.modSeq && deltas.isEmpty)
                #expect(try await f.snapshot().uids.last == appended.uid)
            }
        }
    }

    /// A hint from the change feed is only observed after its data is visible (NOTIFY is delivered at commit).
    @Test(arguments: StoreKind.available) func feedHintFollowsItsData(kind: StoreKind) async throws {
        try await ConformanceFixture.with(kind) { f in
            try await Self.withFeed(f) { inbox, next in
                let appended = try await f.append("hinted")
                let (modSeq, _) = try #require(await next())
                let delta = try await f.store.changes(
                    account: f.account, mailbox: inbox.id, since: inbox.highestModSeq, logger: f.logger)
                #expect(delta.highestModSeq >= modSeq)
                #expect(delta.changed.map(\.uid).contains(appended.uid))
            }
        }
    }

    /// Runs `body` with the INBOX as it stands and its change events from a change feed of the fixture's own, once
    /// that feed's LISTEN is in place: probe messages are appended until one is heard (nothing is delivered before),
    /// and their notifications are consumed.
    static func withFeed(
        _ f: ConformanceFixture,
        _ body: (_ inbox: MailboxSnapshot, _ next: () async -> (ModSeq, [MailboxDelta])?) async throws -> Void
    ) async throws {
        let feed = f.feed
        let inboxID = try await f.snapshot().id
        let (events, continuation) = AsyncStream.makeStream(of: ChangeEvent.self)
        let registration = feed.register(account: f.account) { continuation.yield($0) }
        defer { feed.unregister(registration) }
        var iterator = events.makeAsyncIterator()
        func next() async -> (ModSeq, [MailboxDelta])? {
            while let event = await iterator.next() {
                if case .mailboxChanged(let mailbox, let modSeq, let deltas) = event, mailbox == inboxID {
                    return (modSeq, deltas)
                }
            }
            return nil
        }
        let probing = Task {
            while !Task.isCancelled {
                try await f.append("probe")
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        var seen = try #require(await next()).0
        probing.cancel()
        _ = try? await probing.value
        let inbox = try await f.snapshot()
        while seen < inbox.highestModSeq { seen = try #require(await next()).0 }
        try await body(inbox, next)
    }
}
