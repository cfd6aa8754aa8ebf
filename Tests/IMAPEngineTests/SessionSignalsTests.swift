import Synchronization
import Testing

@testable import IMAPEngine

/// Issue #9 §4: control events are state, never a queue that drops: however many changes pile up while a session is
/// busy, shutdown survives, an account disabled opens the abort latch, and each mailbox keeps its highest modseq.
@Suite struct SessionSignalsTests {
    @Test func nothingIsDroppedBehindABusySession() {
        let signals = SessionSignals()
        signals.post(.change(.accountDisabled))
        signals.post(.shutdown)
        for modSeq in 1...10_000 {
            signals.post(.change(.mailboxChanged(MailboxID(rawValue: Int64(modSeq % 3)), ModSeq(Int64(modSeq)))))
        }
        signals.post(.tick)
        let events = signals.take()
        #expect(events.count == 5)
        #expect(events.first == .shutdown)
        #expect(events.contains(.tick))
        for (mailbox, highest) in [(0, 9999), (1, 10_000), (2, 9998)] {
            let expected = ControlEvent.change(
                .mailboxChanged(MailboxID(rawValue: Int64(mailbox)), ModSeq(Int64(highest))))
            #expect(events.contains(expected))
        }
        #expect(signals.take().isEmpty)
        #expect(signals.abort.isOpen)
    }

    @Test func aLowerModSeqNeverReplacesAHigherOne() {
        let signals = SessionSignals()
        signals.post(.change(.mailboxChanged(MailboxID(rawValue: 7), ModSeq(50))))
        signals.post(.change(.mailboxChanged(MailboxID(rawValue: 7), ModSeq(40))))
        #expect(signals.take() == [.change(.mailboxChanged(MailboxID(rawValue: 7), ModSeq(50)))])
        #expect(!signals.abort.isOpen)
    }

    /// NOTIFY's mailbox-list and METADATA hints are state too: repeats coalesce, names are kept per owner, and past
    /// `maxMetadataBytes` of pending names the session is told it overflowed (RFC 5465 §5.8) instead of holding more.
    @Test func metadataHintsCoalesceAndOverflowInsteadOfGrowing() {
        let signals = SessionSignals()
        let inbox = MailboxID(rawValue: 3)
        signals.post(.change(.mailboxesChanged))
        signals.post(.change(.mailboxesChanged))
        signals.post(.change(.metadataChanged(inbox, ["/private/b", "/private/a"])))
        signals.post(.change(.metadataChanged(inbox, ["/private/a"])))
        signals.post(.change(.metadataChanged(nil, ["/shared/x"])))
        let events = signals.take()
        #expect(events.count == 3)
        #expect(events.contains(.change(.mailboxesChanged)))
        #expect(events.contains(.change(.metadataChanged(inbox, ["/private/a", "/private/b"]))))
        #expect(events.contains(.change(.metadataChanged(nil, ["/shared/x"]))))

        let name = "/private/" + String(repeating: "n", count: 1000)
        for n in 0...(SessionSignals.maxMetadataBytes / 1000) {
            signals.post(.change(.metadataChanged(inbox, [name + "\(n)"])))
        }
        signals.post(.change(.metadataChanged(inbox, ["/private/late"])))
        signals.post(.change(.mailboxChanged(inbox, ModSeq(9))))
        let overflowed = signals.take()
        #expect(overflowed.count == 2, "\(overflowed)")
        #expect(overflowed.contains(.notificationOverflow))
        #expect(overflowed.contains(.change(.mailboxChanged(inbox, ModSeq(9)))))
        #expect(signals.take().isEmpty)
    }

    /// `whenOpen` is how a connection watches the abort latch without a task: the action runs exactly once,
    /// when the latch opens, or at once on a latch already open.
    @Test func latchRunsActionsOnceWhenOpened() {
        let latch = Latch()
        let runs = Mutex(0)
        latch.whenOpen { runs.withLock { $0 += 1 } }
        #expect(runs.withLock { $0 } == 0)
        latch.open()
        latch.open()
        #expect(runs.withLock { $0 } == 1)
        latch.whenOpen { runs.withLock { $0 += 10 } }
        #expect(runs.withLock { $0 } == 11)
    }
}
