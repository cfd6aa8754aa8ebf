import Testing

@testable import IMAPEngine

extension MailboxView {
    init(testUIDs: [UInt32], recent: [UInt32] = []) {
        self.init(
            snapshot: MailboxSnapshot(
                id: MailboxID(rawValue: 1), name: .inbox, uidValidity: 1, uidNext: UID((testUIDs.last ?? 0) + 1),
                highestModSeq: ModSeq(1), uids: testUIDs.map { UID($0) }, firstUnseen: nil, keywords: [],
                recent: recent.map { UID($0) }),
            readOnly: false)
    }
}

func delta(changed: [UInt32] = [], expunged: [UInt32] = [], modSeq: Int64 = 2, flags: MessageFlags = MessageFlags())
    -> MailboxDelta
{
    MailboxDelta(
        changed: changed.map { .init(uid: UID($0), flags: flags, modSeq: ModSeq(modSeq)) },
        expunged: expunged.map { UID($0) }, highestModSeq: ModSeq(modSeq))
}

@Suite struct MailboxViewTests {
    @Test func expungeIsDeferredDuringSequenceFetch() throws {
        var view = MailboxView(testUIDs: [10, 11, 12])
        view.absorb(delta(changed: [13], expunged: [11]))
        #expect(view.flush(.noExpunges, reportRecent: false) == [.exists(4)])  // 11 still visible as seq 2
        #expect(try view.resolve(.sequence(seq("2"))) == [UID(11)])
        #expect(view.flush(.full, reportRecent: false) == [.expunge(SequenceNumber(2))])
        #expect(view.uids == [UID(10), UID(12), UID(13)])
    }

    /// RFC 7162 §3.2: under CONDSTORE, while an expunge is withheld (a FETCH by sequence number), flag changes go out
    /// with their MODSEQ and a HIGHESTMODSEQ below the expunge's; under QRESYNC the expunge becomes one VANISHED.
    @Test func withheldExpungesKeepHighestModSeqBelowThem() {
        var view = MailboxView(testUIDs: [10, 11, 12, 13])
        let seen = MessageFlags(system: .seen)
        var expunge = delta(expunged: [11, 13], modSeq: 10)
        expunge.lowestExpungedModSeq = ModSeq(10)
        view.absorb(expunge)
        view.absorb(delta(changed: [12], modSeq: 12, flags: seen))
        #expect(
            view.flush(.noExpunges, reportRecent: false, modSeqs: true, vanished: true)
                == [
                    .fetchFlags(SequenceNumber(3), uid: UID(12), flags: seen, recent: false, modSeq: ModSeq(12)),
                    .highestModSeq(ModSeq(9)),
                ])
        // Nothing else to say, the expunges still withheld: the floor is said again (the command's own FETCHes may
        // have carried higher MODSEQs).
        #expect(
            view.flush(.noExpunges, reportRecent: false, modSeqs: true, vanished: true) == [.highestModSeq(ModSeq(9))])
        #expect(
            view.flush(.full, reportRecent: false, modSeqs: true, vanished: true)
                == [.vanished(UIDRanges([UID(11), UID(13)]), earlier: false)])
        #expect(view.uids == [UID(10), UID(12)])
        // Nothing withheld any more: no HIGHESTMODSEQ of its own.
        view.absorb(delta(changed: [10], modSeq: 14, flags: seen))
        #expect(
            view.flush(.noExpunges, reportRecent: false, modSeqs: true, vanished: true)
                == [.fetchFlags(SequenceNumber(1), uid: UID(10), flags: seen, recent: false, modSeq: ModSeq(14))])
    }

    /// What may have been expunged when the tombstones are gone: the UIDs asked for, below UIDNEXT, not in the view.
    @Test func absentUIDsAreTheGapsBelowUIDNext() {
        let view = MailboxView(testUIDs: [3, 4, 8, 10])  // UIDNEXT 11
        #expect(view.absentUIDs(in: UIDRanges(ranges: [1...UInt32.max])).description == "1:2,5:7,9")
        #expect(view.absentUIDs(in: UIDRanges(ranges: [4...9, 20...30])).description == "5:7,9")
        #expect(view.absentUIDs(in: UIDRanges(ranges: [3...4])).isEmpty)
        #expect(MailboxView(testUIDs: []).absentUIDs(in: UIDRanges(ranges: [1...5])).isEmpty)
    }

    @Test func expungesAreAnnouncedFromTheHighestSequenceNumberDown() {
        var view = MailboxView(testUIDs: [1, 2, 3, 4, 5])
        view.absorb(delta(expunged: [2, 4, 5]))
        #expect(
            view.flush(.full, reportRecent: false)
                == [.expunge(SequenceNumber(5)), .expunge(SequenceNumber(4)), .expunge(SequenceNumber(2))])
        #expect(view.uids == [UID(1), UID(3)])
    }

    @Test func flagChangesComeFirstWithCurrentSequenceNumbers() {
        var view = MailboxView(testUIDs: [1, 2, 3])
        let seen = MessageFlags(system: .seen)
        view.absorb(delta(changed: [3], flags: seen))
        view.absorb(delta(expunged: [1], modSeq: 3))
        #expect(
            view.flush(.full, reportRecent: false)
                == [
                    .fetchFlags(SequenceNumber(3), uid: UID(3), flags: seen, recent: false),
                    .expunge(SequenceNumber(1)),
                ])
    }

    @Test func unknownUIDsAreNeverMentioned() {
        var view = MailboxView(testUIDs: [1, 2])
        // Appended and expunged before the client heard of it: nothing to say.
        view.absorb(delta(changed: [3]))
        view.absorb(delta(expunged: [3], modSeq: 3))
        #expect(view.flush(.full, reportRecent: false) == [])
        // A flag change of an unknown old UID (already expunged from the view) is ignored too.
        view.absorb(delta(changed: [0], modSeq: 4))
        #expect(view.flush(.full, reportRecent: false) == [])
    }

    @Test func invalidSequenceNumbersAreClientErrors() throws {
        let view = MailboxView(testUIDs: [5, 6])
        #expect(throws: IMAPError.self) { try view.resolve(.sequence(seq("3"))) }
        #expect(throws: IMAPError.self) { try MailboxView(testUIDs: []).resolve(.sequence(seq("*"))) }
        #expect(try view.resolve(.uid(seq("1:*"))) == [UID(5), UID(6)])
        #expect(try view.resolve(.uid(seq("100:*"))) == [UID(6)])  // RFC 9051: n:* includes the last UID
        #expect(try view.resolve(.uid(seq("7:99"))) == [])
        #expect(try MailboxView(testUIDs: []).resolve(.uid(seq("1:*"))) == [])
        #expect(try view.resolve(.sequence(seq("2,1,2"))) == [UID(5), UID(6)])
    }

    @Test func recentAccompaniesExists() {
        var view = MailboxView(testUIDs: [1], recent: [1])
        view.absorb(delta(changed: [2]))
        view.markRecent(2...2)
        #expect(view.flush(.full, reportRecent: true) == [.exists(2), .recent(2)])
    }

    @Test func ownStoreReportsAreNotRepeated() {
        var view = MailboxView(testUIDs: [1, 2])
        let seen = MessageFlags(system: .seen)
        view.absorb(delta(changed: [1, 2], flags: seen))
        view.suppressFlagUpdates(matching: [UID(1): seen, UID(2): MessageFlags(system: .flagged)])
        #expect(
            view.flush(.full, reportRecent: false) == [
                .fetchFlags(SequenceNumber(2), uid: UID(2), flags: seen, recent: false)
            ])
    }

    /// Random absorb/flush sequences replayed onto a naive client model: the client's idea of the mailbox must equal
    /// `view.uids` after every flush (STYLE.md §4, model test).
    @Test(arguments: 0..<20)
    func modelAgreesWithView(seed: Int) {
        var rng = SplitMix(seed: UInt64(seed))
        var server: [UInt32] = Array(1...20)
        var nextUID: UInt32 = 21
        var view = MailboxView(testUIDs: server)
        var client = server
        var modSeq: Int64 = 1
        for _ in 0..<200 {
            modSeq += 1
            switch rng.next() % 4 {
            case 0:
                let count = Int(rng.next() % 3) + 1
                let added = (0..<count).map { _ -> UInt32 in
                    defer { nextUID += 1 }
                    return nextUID
                }
                server += added
                view.absorb(delta(changed: added, modSeq: modSeq))
            case 1 where !server.isEmpty:
                let victim = server.remove(at: Int(rng.next() % UInt64(server.count)))
                view.absorb(delta(expunged: [victim], modSeq: modSeq))
            case 2:
                for line in view.flush(rng.next() % 2 == 0 ? .full : .noExpunges, reportRecent: false) {
                    switch line {
                    case .exists(let n):
                        // New messages are those the client did not know; it learns their UIDs by UID FETCH.
                        let known = Set(client)
                        let fresh = view.uids.filter { !known.contains($0.rawValue) }.map(\.rawValue)
                        client += fresh
                        #expect(client.count == n)
                    case .expunge(let seq): client.remove(at: Int(seq.rawValue) - 1)
                    default: break
                    }
                }
                #expect(client == view.uids.map(\.rawValue))
            default:
                break
            }
        }
        _ = view.flush(.full, reportRecent: false)
    }
}

/// A small deterministic generator for reproducible model tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
