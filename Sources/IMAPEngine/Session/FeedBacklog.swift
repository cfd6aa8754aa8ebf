/// The changes to one mailbox that the change feed described, one per modseq and each one above the one before: what
/// a session can take into its view without reading the changes from the store (issue 11: ten sessions on one INBOX
/// read every change nine times).
///
/// A store that describes a change sends its delta with the notification: the messages it added or whose flags it
/// changed (with their flags after it), the UIDs it expunged, the first UID not yet claimed as `\Recent`. Each change
/// raises the mailbox's HIGHESTMODSEQ by exactly one under the mailbox row lock, so deltas for consecutive modseqs are
/// the whole story between them. The session's own writes add theirs (it knows what it changed). A change announced
/// without a delta (too large to describe), or a staleness of another kind, makes the backlog `broken`; a modseq not
/// described yet (its notification still on its way) leaves a gap. Either way the session reads from the store.
struct FeedBacklog: Sendable, Equatable {
    /// At most this many deltas are kept (more: read from the store, which is cheaper by then).
    static let limit = 64

    /// Known deltas above the view, ascending by modseq, one per modseq.
    private(set) var deltas: [MailboxDelta] = []
    /// Something the deltas do not describe happened since the last time the view was current.
    private(set) var broken = false
    /// The highest modseq announced or written, described or not.
    private(set) var announced: ModSeq?

    /// Takes a change the feed announced up to `modSeq` with `deltas` (those that lead to `modSeq`, possibly not
    /// all of them: the rest may be known already or come on their own), for a view whose HIGHESTMODSEQ is `current`.
    mutating func add(_ new: [MailboxDelta], upTo modSeq: ModSeq, after current: ModSeq) {
        guard modSeq > current else { return }
        announced = max(announced ?? modSeq, modSeq)
        // The change at `modSeq` itself must be described, or it can only be read from the store.
        guard new.last?.highestModSeq == modSeq else { return breakOff() }
        for delta in new where delta.highestModSeq > current { insert(delta) }
    }

    /// Takes the session's own write (what it changed, at its modseq), for a view at `current`.
    mutating func record(_ own: MailboxDelta, after current: ModSeq) {
        guard own.highestModSeq > current else { return }
        announced = max(announced ?? own.highestModSeq, own.highestModSeq)
        insert(own)
    }

    /// The client saw the mailbox as of `modSeq` (a read of current rows): the deltas must reach it.
    mutating func expect(_ modSeq: ModSeq) {
        announced = max(announced ?? modSeq, modSeq)
    }

    private mutating func insert(_ delta: MailboxDelta) {
        guard !broken else { return }
        if let i = deltas.firstIndex(where: { $0.highestModSeq >= delta.highestModSeq }) {
            // The same change told twice (a write of the session's own and its notification) is kept once.
            guard deltas[i].highestModSeq != delta.highestModSeq else { return }
            deltas.insert(delta, at: i)
        } else {
            deltas.append(delta)
        }
        if deltas.count > Self.limit { breakOff() }
    }

    /// Something else made the view stale: the deltas no longer tell everything.
    mutating func breakOff() {
        broken = true
        deltas = []
    }

    /// The deltas that bring a view at `current` up to everything announced, when every modseq in between is
    /// described.
    func covering(_ current: ModSeq) -> [MailboxDelta]? {
        guard !broken, let announced, announced > current else { return nil }
        let from = deltas.firstIndex { $0.highestModSeq > current } ?? deltas.count
        // One delta per modseq, ascending: as many as modseqs in between means all of them.
        guard Int64(deltas.count - from) == announced.rawValue - current.rawValue else { return nil }
        return Array(deltas[from...])
    }
}

/// The changes announced for one mailbox since the session last looked (`SessionSignals`): the highest modseq, and
/// the deltas that lead there while they stay consecutive, up to `FeedBacklog.limit`.
struct PendingChange: Sendable {
    private(set) var modSeq: ModSeq
    private(set) var deltas: [MailboxDelta]

    init(modSeq: ModSeq, deltas: [MailboxDelta]) {
        self.modSeq = modSeq
        self.deltas = Array(deltas.suffix(FeedBacklog.limit))
    }

    /// Folds in a later announcement.
    mutating func fold(_ new: [MailboxDelta], upTo next: ModSeq) {
        guard next > modSeq else { return }
        // Consecutive: the deltas so far reach `modSeq` and the new ones start right above it.
        if let last = deltas.last, last.highestModSeq == modSeq,
            let first = new.first(where: { $0.highestModSeq > modSeq }),
            first.highestModSeq.rawValue == modSeq.rawValue + 1, deltas.count + new.count <= FeedBacklog.limit
        {
            deltas.append(contentsOf: new.filter { $0.highestModSeq > modSeq })
        } else {
            deltas = []
        }
        modSeq = next
    }

    /// Keeps the modseq alone (the session then reads the changes).
    mutating func dropDeltas() { deltas = [] }
}
