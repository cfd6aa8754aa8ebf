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
}
