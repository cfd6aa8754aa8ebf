import Synchronization

/// Events a session reacts to besides client input: change-feed hints, the autologout tick, shutdown and an account
/// disabled by the administrator.
///
/// They are kept as state, not queued: a change feed that outpaces a session busy writing to a slow client only
/// raises a modseq it already holds, so nothing is ever dropped (a bounded queue would drop the oldest, an unbounded
/// one would grow without limit), and the memory is one entry per mailbox of the account at most. Posting wakes the
/// session through its event queue; the session then takes everything pending at once.
///
/// An account disabled by the administrator opens `abort` instead: a session between commands sees it at once and
/// says BYE; one in the middle of a command is cancelled shortly after (`IMAPConnection.run`).
final class SessionSignals: Sendable {
    private struct Pending {
        var shutdown = false
        var resync = false
        var tick = false
        /// The highest modseq announced per mailbox since the session last looked, with the deltas that lead there
        /// while they are consecutive.
        var changed: [MailboxID: PendingChange] = [:]
        /// Deltas held over all mailboxes: at most `FeedBacklog.limit` (only the selected mailbox's are of use, and
        /// an account may have thousands of mailboxes).
        var deltaCount = 0
        var mailboxes = false
        /// METADATA entry names changed per owner (nil: the server), at most `maxMetadataBytes` of names in all.
        var metadata: [MailboxID?: Set<String>] = [:]
        var metadataBytes = 0
        /// More metadata changes than that arrived before the session looked (NOTIFY overflows).
        var overflow = false

        var isEmpty: Bool {
            !shutdown && !resync && !tick && changed.isEmpty && !mailboxes && metadata.isEmpty && !overflow
        }
    }

    /// How many bytes of changed METADATA entry names a session that does not keep up may have pending: every entry
    /// of an account (1,000) with names of ordinary length fits.
    static let maxMetadataBytes = 64 << 10

    private let pending = Mutex(Pending())
    /// Called whenever something was posted (the session's event queue coalesces several into one wake-up).
    private let wake: @Sendable () -> Void
    /// Opened when the account is disabled or deleted.
    let abort = Latch()
    /// Opened by the session as it starts saying BYE for `abort` (it closes the connection itself after).
    let abortAnswered = Latch()

    /// The BYE of a session whose account was disabled or deleted.
    static let disabledBye = "* BYE Account disabled by the administrator."

    init(wake: @escaping @Sendable () -> Void = {}) {
        self.wake = wake
    }

    func post(_ event: ControlEvent) {
        if case .change(.accountDisabled) = event {
            abort.open()
            wake()
            return
        }
        pending.withLock { pending in
            switch event {
            case .change(.accountDisabled): break
            case .change(.resync): pending.resync = true
            case .change(.mailboxesChanged): pending.mailboxes = true
            case .change(.metadataChanged(let owner, let names)):
                guard !pending.overflow else { break }
                for name in names where pending.metadata[owner, default: []].insert(name).inserted {
                    pending.metadataBytes += name.utf8.count
                }
                if pending.metadataBytes > Self.maxMetadataBytes {
                    pending.metadata = [:]
                    pending.metadataBytes = 0
                    pending.overflow = true
                }
            case .notificationOverflow: pending.overflow = true
            case .change(.mailboxChanged(let mailbox, let modSeq, let deltas)):
                let before = pending.changed[mailbox]?.deltas.count ?? 0
                if pending.changed[mailbox] != nil {
                    pending.changed[mailbox]?.fold(deltas, upTo: modSeq)
                } else {
                    pending.changed[mailbox] = PendingChange(modSeq: modSeq, deltas: deltas)
                }
                let after = pending.changed[mailbox]?.deltas.count ?? 0
                pending.deltaCount += after - before
                if pending.deltaCount > FeedBacklog.limit {
                    pending.changed[mailbox]?.dropDeltas()
                    pending.deltaCount -= after
                }
            case .tick: pending.tick = true
            case .shutdown: pending.shutdown = true
            }
        }
        wake()
    }

    /// The change announced for `mailbox` since the last look, taken alone (a sync point in the middle of a command
    /// looks for the notifications of changes right below its own write).
    func takeChange(of mailbox: MailboxID) -> PendingChange? {
        pending.withLock { pending in
            let taken = pending.changed.removeValue(forKey: mailbox)
            pending.deltaCount -= taken?.deltas.count ?? 0
            return taken
        }
    }

    /// Everything posted since the last call, shutdown first.
    func take() -> [ControlEvent] {
        let taken = pending.withLock { pending -> Pending in
            let taken = pending
            pending = Pending()
            return taken
        }
        guard !taken.isEmpty else { return [] }
        var events: [ControlEvent] = []
        if taken.shutdown { events.append(.shutdown) }
        if taken.resync { events.append(.change(.resync)) }
        if taken.overflow { events.append(.notificationOverflow) }
        if taken.mailboxes { events.append(.change(.mailboxesChanged)) }
        for (owner, names) in taken.metadata { events.append(.change(.metadataChanged(owner, names.sorted()))) }
        for (mailbox, entry) in taken.changed {
            events.append(.change(.mailboxChanged(mailbox, entry.modSeq, deltas: entry.deltas)))
        }
        if taken.tick { events.append(.tick) }
        return events
    }
}
