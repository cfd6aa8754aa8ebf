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

    @Test func latchReleasesWaitersAndCancelledTasks() async {
        let latch = Latch()
        let waiter = Task { await latch.wait() }
        while latch.waiterCount == 0 { await Task.yield() }  // the waiter is suspended in the latch
        latch.open()
        await waiter.value
        #expect(latch.waiterCount == 0)
        let second = Latch()
        let cancelled = Task { await second.wait() }
        while second.waiterCount == 0 { await Task.yield() }
        cancelled.cancel()
        await cancelled.value  // returns although the latch stays shut
        #expect(!second.isOpen && second.waiterCount == 0)
        await latch.wait()  // an open latch does not wait
    }
}
