import Testing

@testable import IMAPEngine

/// A session's own writes and the feed's deltas stand in for the pull after them only while, together, they describe
/// every modseq above the view (`FeedBacklog`).
@Suite struct OwnChangeTests {
    static func result(_ uid: UInt32, modSeq: Int64, changed: Bool = true) -> StoredFlags {
        StoredFlags(uid: UID(uid), flags: MessageFlags(system: .seen), modSeq: ModSeq(modSeq), changed: changed)
    }

    static func delta(_ modSeq: Int64, added uid: UInt32? = nil) -> MailboxDelta {
        MailboxDelta(
            changed: uid.map { [MailboxDelta.FlagChange(uid: UID($0), flags: MessageFlags(), modSeq: ModSeq(modSeq))] }
                ?? [],
            highestModSeq: ModSeq(modSeq))
    }

    @Test func aStoreIsOneModSeqsChange() throws {
        let own = Session.ownChange(
            [Self.result(1, modSeq: 8), Self.result(2, modSeq: 5, changed: false), Self.result(3, modSeq: 8)])
        #expect(own.changed)
        let delta = try #require(own.delta)
        #expect(delta.highestModSeq == ModSeq(8))
        #expect(delta.changed.map(\.uid) == [UID(1), UID(3)])
        #expect(delta.changed.allSatisfy { $0.modSeq == ModSeq(8) && $0.flags == MessageFlags(system: .seen) })
        #expect(delta.expunged.isEmpty)
        // Nothing changed (the flags were already set): nothing was written.
        #expect(!Session.ownChange([Self.result(1, modSeq: 3, changed: false)]).changed)
        #expect(!Session.ownChange([]).changed)
        // Changes at two modseqs are not one transaction's: written, but no delta.
        let split = Session.ownChange([Self.result(1, modSeq: 8), Self.result(2, modSeq: 9)])
        #expect(split.changed && split.delta == nil)
    }

    @Test func anExpungeAndAnAppendAreOneModSeqsChange() throws {
        let expunge = try #require(Session.ownExpunge(ExpungeResult(uids: [UID(4), UID(9)], modSeq: ModSeq(8))))
        #expect(expunge.expunged == [UID(4), UID(9)] && expunge.changed.isEmpty)
        #expect(expunge.highestModSeq == ModSeq(8) && expunge.lowestExpungedModSeq == ModSeq(8))
        #expect(Session.ownExpunge(ExpungeResult(uids: [], modSeq: nil)) == nil)

        let flags = MessageFlags(system: .flagged, keywords: ["$Work"])
        let append = try #require(
            Session.ownAppend(AppendResult(uidValidity: 1, uid: UID(12), modSeq: ModSeq(8)), flags: flags))
        #expect(append.changed == [MailboxDelta.FlagChange(uid: UID(12), flags: flags, modSeq: ModSeq(8))])
        #expect(append.highestModSeq == ModSeq(8) && append.expunged.isEmpty)
        #expect(append.firstUnclaimedUID == nil)
        // Claimed with the write: no session needs to claim up to it.
        let claimed = AppendResult(uidValidity: 1, uid: UID(12), modSeq: ModSeq(8), recent: 10...12)
        #expect(Session.ownAppend(claimed, flags: flags)?.firstUnclaimedUID == UID(13))
        // A store that gives no modseq: always a pull.
        #expect(Session.ownAppend(AppendResult(uidValidity: 1, uid: UID(12)), flags: flags) == nil)
    }

    @Test func deltasCoverTheViewOnlyWhenEveryModSeqIsDescribed() throws {
        var backlog = FeedBacklog()
        #expect(backlog.covering(ModSeq(7)) == nil)  // nothing announced
        // The session's own write at 9: 8 (another session's) is not described yet.
        backlog.record(Self.delta(9, added: 20), after: ModSeq(7))
        #expect(backlog.covering(ModSeq(7)) == nil)
        // Its notification arrives.
        backlog.add([Self.delta(8, added: 19)], upTo: ModSeq(8), after: ModSeq(7))
        let covering = try #require(backlog.covering(ModSeq(7)))
        #expect(covering.map(\.highestModSeq) == [ModSeq(8), ModSeq(9)])
        // The own write's notification: the same change, kept once.
        backlog.add([Self.delta(9, added: 20)], upTo: ModSeq(9), after: ModSeq(7))
        #expect(backlog.covering(ModSeq(7))?.count == 2)
        // A view already at 8 needs only 9.
        #expect(backlog.covering(ModSeq(8))?.map(\.highestModSeq) == [ModSeq(9)])
        // 10 is announced without a description: only the store can tell.
        backlog.add([], upTo: ModSeq(10), after: ModSeq(7))
        #expect(backlog.broken && backlog.covering(ModSeq(7)) == nil)
        // And stays so: a later description does not mend it.
        backlog.add([Self.delta(11)], upTo: ModSeq(11), after: ModSeq(7))
        #expect(backlog.covering(ModSeq(7)) == nil)
    }

    /// A read showed the client the mailbox at 9: deltas up to 8 are not enough.
    @Test func deltasMustReachWhatAReadShowed() {
        var backlog = FeedBacklog()
        backlog.add([Self.delta(8)], upTo: ModSeq(8), after: ModSeq(7))
        backlog.expect(ModSeq(9))
        #expect(backlog.covering(ModSeq(7)) == nil)
        backlog.add([Self.delta(9)], upTo: ModSeq(9), after: ModSeq(7))
        #expect(backlog.covering(ModSeq(7))?.count == 2)
        backlog.expect(ModSeq(5))  // behind the view: nothing more needed
        #expect(backlog.covering(ModSeq(7))?.count == 2)
    }

    @Test func aBacklogHoldsAtMostItsLimit() {
        var backlog = FeedBacklog()
        for modSeq in 1...Int64(FeedBacklog.limit) {
            backlog.add([Self.delta(modSeq)], upTo: ModSeq(modSeq), after: ModSeq(0))
        }
        #expect(backlog.covering(ModSeq(0))?.count == FeedBacklog.limit)
        backlog.add(
            [Self.delta(Int64(FeedBacklog.limit) + 1)], upTo: ModSeq(Int64(FeedBacklog.limit) + 1), after: .zero)
        #expect(backlog.broken && backlog.deltas.isEmpty)
    }

    /// Pending notifications fold into one per mailbox: the deltas stay while they are consecutive.
    @Test func signalsFoldConsecutiveDeltasAndDropThemAtAGap() {
        let signals = SessionSignals()
        let inbox = MailboxID(rawValue: 3)
        for modSeq in Int64(5)...7 {
            signals.post(.change(.mailboxChanged(inbox, ModSeq(modSeq), deltas: [Self.delta(modSeq)])))
        }
        #expect(
            signals.take() == [.change(.mailboxChanged(inbox, ModSeq(7), deltas: (5...7).map { Self.delta($0) }))])
        signals.post(.change(.mailboxChanged(inbox, ModSeq(8), deltas: [Self.delta(8)])))
        signals.post(.change(.mailboxChanged(inbox, ModSeq(10), deltas: [Self.delta(10)])))  // 9 undescribed
        #expect(signals.take() == [.change(.mailboxChanged(inbox, ModSeq(10), deltas: []))])
        signals.post(.change(.mailboxChanged(inbox, ModSeq(11), deltas: [Self.delta(11)])))
        #expect(signals.takeChange(of: inbox)?.deltas == [Self.delta(11)])
        #expect(signals.take().isEmpty)
    }

    /// A session that does not look holds at most `FeedBacklog.limit` deltas over all the account's mailboxes.
    @Test func signalsHoldBoundedDeltasOverAllMailboxes() {
        let signals = SessionSignals()
        let (busy, other) = (MailboxID(rawValue: 1), MailboxID(rawValue: 2))
        for modSeq in 1...Int64(FeedBacklog.limit) {
            signals.post(.change(.mailboxChanged(busy, ModSeq(modSeq), deltas: [Self.delta(modSeq)])))
        }
        signals.post(.change(.mailboxChanged(other, ModSeq(5), deltas: [Self.delta(5)])))
        #expect(signals.takeChange(of: other)?.deltas == [])  // the modseq, not the delta
        #expect(signals.takeChange(of: busy)?.deltas.count == FeedBacklog.limit)
        // Taken: room again.
        signals.post(.change(.mailboxChanged(other, ModSeq(6), deltas: [Self.delta(6)])))
        #expect(signals.take() == [.change(.mailboxChanged(other, ModSeq(6), deltas: [Self.delta(6)]))])
    }
}
