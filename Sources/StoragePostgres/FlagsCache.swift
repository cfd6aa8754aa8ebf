import IMAPEngine

/// The flags of recently fetched mailboxes, per instance, so that a flags-only FETCH (a client's resync, often
/// `1:*`) reads only what changed since the entry was taken instead of every message row.
///
/// An entry is an exact picture of the mailbox at its HIGHESTMODSEQ: the store reads the changes above that modseq
/// (messages whose modseq is higher, with their current flags, and the tombstones of those expunged) in one
/// statement with the mailbox's HIGHESTMODSEQ, which gives an exact picture at the new HIGHESTMODSEQ (DESIGN.md §3:
/// every change takes a modseq under the mailbox row's lock). Entries are keyed by mailbox id, never reused, so a
/// recreated mailbox never meets an old entry; an entry is replaced only by a newer one. Bounded by `capacity`
/// bytes (an estimate of what the arrays hold); least recently used mailboxes go first.
public final class FlagsCache: Sendable {
    struct Key: Hashable {
        var account: AccountID
        var mailbox: MailboxID
    }

    struct Entry {
        var highestModSeq: ModSeq
        /// Ascending by UID.
        var records: [MessageFlagsRecord] = []
        var keywordBytes = 0
        /// The mailbox did not fit the cache: a marker that sends its flags-only FETCHes to the rows, so a mailbox
        /// too large to keep is not read whole again for each batch.
        var oversized = false

        init(highestModSeq: ModSeq) {
            self.highestModSeq = highestModSeq
        }

        var cost: Int { 64 + records.count * 32 + keywordBytes }

        func index(of uid: UID) -> Int? {
            let i = records.partitionPoint { $0.uid < uid }
            return i < records.count && records[i].uid == uid ? i : nil
        }

        /// This picture moved forward by `delta`, read from its HIGHESTMODSEQ (and not `expungedIncomplete`).
        func applying(_ delta: MailboxDelta) -> Entry {
            var next = self
            if !delta.expunged.isEmpty {
                let gone = Set(delta.expunged)
                var released = 0
                next.records.removeAll { record in
                    guard gone.contains(record.uid) else { return false }
                    released += Self.keywordCost(record.flags)
                    return true
                }
                next.keywordBytes -= released
            }
            for change in delta.changed {
                if let i = next.index(of: change.uid) {
                    next.keywordBytes -= Self.keywordCost(next.records[i].flags)
                    next.records[i] = change
                } else {
                    // New since (UIDs are allocated in commit order, so almost always at the end).
                    next.records.insert(change, at: next.records.partitionPoint { $0.uid < change.uid })
                }
                next.keywordBytes += Self.keywordCost(change.flags)
            }
            next.highestModSeq = max(next.highestModSeq, delta.highestModSeq)
            return next
        }

        static func keywordCost(_ flags: MessageFlags) -> Int {
            flags.keywords.reduce(0) { $0 + 32 + $1.utf8.count }
        }
    }

    private let entries: LRUCache<Key, Entry>
    var capacity: Int { entries.capacity }

    /// 32 MiB: ten mailboxes of 100,000 messages.
    public static let defaultCapacity = 32 << 20

    init(capacity: Int = defaultCapacity) {
        entries = LRUCache(capacity: capacity) { _, entry in entry.cost }
    }

    /// Bytes held (for tests).
    var held: Int { entries.held }

    func entry(_ key: Key) -> Entry? { entries.value(key) }

    /// Keeps `entry` (only an `oversized` marker when it alone exceeds the capacity) unless a newer one is held,
    /// evicting the least recently used others until the total fits.
    func store(_ entry: Entry, at key: Key) {
        var entry = entry
        if entry.cost > capacity {
            entry = Entry(highestModSeq: entry.highestModSeq)
            entry.oversized = true
        }
        entries.store(entry, at: key) { old, new in old.highestModSeq < new.highestModSeq }
    }
}
