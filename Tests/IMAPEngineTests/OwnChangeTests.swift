import Testing

@testable import IMAPEngine

/// `Session.onlyChange`: when a session's own flag change may stand in for the pull after it.
@Suite struct OwnChangeTests {
    static func result(_ uid: UInt32, modSeq: Int64, changed: Bool = true) -> StoredFlags {
        StoredFlags(uid: UID(uid), flags: MessageFlags(system: .seen), modSeq: ModSeq(modSeq), changed: changed)
    }

    @Test func theOnlyChangeSinceTheViewIsWhatAPullWouldRead() throws {
        let delta = try #require(
            Session.onlyChange(
                [Self.result(1, modSeq: 8), Self.result(2, modSeq: 5, changed: false), Self.result(3, modSeq: 8)],
                after: ModSeq(7)))
        #expect(delta.highestModSeq == ModSeq(8))
        #expect(delta.changed.map(\.uid) == [UID(1), UID(3)])
        #expect(delta.changed.allSatisfy { $0.modSeq == ModSeq(8) && $0.flags == MessageFlags(system: .seen) })
        #expect(delta.expunged.isEmpty)
    }

    @Test func anotherChangeInBetweenOrNoChangeMeansAPull() {
        // Another change took 8: this one is 9.
        #expect(Session.onlyChange([Self.result(1, modSeq: 9)], after: ModSeq(7)) == nil)
        // Nothing changed (the flags were already set): nothing tells what else happened.
        #expect(Session.onlyChange([Self.result(1, modSeq: 3, changed: false)], after: ModSeq(7)) == nil)
        #expect(Session.onlyChange([], after: ModSeq(7)) == nil)
        // Changes at two modseqs are not one transaction's.
        #expect(Session.onlyChange([Self.result(1, modSeq: 8), Self.result(2, modSeq: 9)], after: ModSeq(7)) == nil)
    }

    @Test func anExpungeThatWasTheOnlyChangeIsWhatAPullWouldRead() throws {
        let delta = try #require(
            Session.onlyExpunge(ExpungeResult(uids: [UID(4), UID(9)], modSeq: ModSeq(8)), after: ModSeq(7)))
        #expect(delta.expunged == [UID(4), UID(9)] && delta.changed.isEmpty)
        #expect(delta.highestModSeq == ModSeq(8) && delta.lowestExpungedModSeq == ModSeq(8))
        #expect(Session.onlyExpunge(ExpungeResult(uids: [UID(4)], modSeq: ModSeq(9)), after: ModSeq(7)) == nil)
        #expect(Session.onlyExpunge(ExpungeResult(uids: [], modSeq: nil), after: ModSeq(7)) == nil)
    }

    @Test func anAppendThatWasTheOnlyChangeIsWhatAPullWouldRead() throws {
        let flags = MessageFlags(system: .flagged, keywords: ["$Work"])
        let delta = try #require(
            Session.onlyAppend(
                AppendResult(uidValidity: 1, uid: UID(12), modSeq: ModSeq(8)), flags: flags, after: ModSeq(7)))
        #expect(delta.changed == [MailboxDelta.FlagChange(uid: UID(12), flags: flags, modSeq: ModSeq(8))])
        #expect(delta.highestModSeq == ModSeq(8) && delta.expunged.isEmpty)
        let later = AppendResult(uidValidity: 1, uid: UID(12), modSeq: ModSeq(9))
        #expect(Session.onlyAppend(later, flags: flags, after: ModSeq(7)) == nil)
        // A store that gives no modseq: always a pull.
        #expect(Session.onlyAppend(AppendResult(uidValidity: 1, uid: UID(12)), flags: flags, after: ModSeq(7)) == nil)
    }
}
