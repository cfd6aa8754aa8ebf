import IMAPEngine

/// The UID lists of recently selected mailboxes, per instance, so that SELECT of a large mailbox reads only what
/// changed since (DESIGN.md §3: UIDs and modseqs are allocated under the mailbox row's lock, so every message a
/// snapshot lacks has a UID ≥ its UIDNEXT, and every expunge after it a tombstone with a higher modseq).
///
/// An entry is used only when the mailbox row still has the same id and UIDVALIDITY, its HIGHESTMODSEQ has not gone
/// backwards (a restored database) and no tombstone newer than the entry was collected (`vanished_floor`); otherwise
/// SELECT reads the whole list again. Bounded by `capacity` units of 4 bytes: each UID is one, and each entry also
/// costs its fixed part and its name (so many small or empty mailboxes are bounded too); least recently used
/// mailboxes go first.
final class SelectCache: Sendable {
    struct Key: Hashable {
        var account: AccountID
        var name: String
    }

    struct Entry {
        var mailbox: MailboxID
        var uidValidity: UIDValidity
        var uidNext: UID
        var highestModSeq: ModSeq
        var uids: [UID]
        /// The first message without `\Seen` at `highestModSeq`.
        var firstUnseen: UID?
    }

    private let entries: LRUCache<Key, Entry>
    var capacity: Int { entries.capacity }

    /// 4 million units (16 MiB): forty mailboxes of 100,000 messages, or 100,000 small ones.
    init(capacity: Int = 4_000_000) {
        entries = LRUCache(capacity: capacity) { key, entry in Self.cost(entry, key) }
    }

    /// Units held (for tests).
    var held: Int { entries.held }

    /// What an entry costs, in units of 4 bytes: its UIDs, its fixed part and its key's name.
    static func cost(_ entry: Entry, _ key: Key) -> Int { entry.uids.count + 32 + key.name.utf8.count / 4 }

    func entry(_ key: Key) -> Entry? { entries.value(key) }

    /// Keeps `entry` unless it alone exceeds the capacity (an older entry for the mailbox is replaced only by a newer
    /// one), evicting the least recently used others until the total fits.
    func store(_ entry: Entry, at key: Key) {
        entries.store(entry, at: key) { old, new in old.mailbox != new.mailbox || old.highestModSeq <= new.highestModSeq
        }
    }

    /// `uids` without `expunged`, then `added` (all above the last of `uids`). Nothing changed: `uids` itself, its
    /// storage shared (appending even nothing to a shared array copies it: 400 KB for every re-SELECT of a
    /// 100,000-message mailbox).
    static func apply(_ uids: [UID], expunged: [UID], added: [UID]) -> [UID] {
        var result = uids
        if !expunged.isEmpty {
            let gone = Set(expunged)
            result.removeAll { gone.contains($0) }
        }
        let fresh = result.last.map { last in added.drop { $0 <= last } } ?? added[...]
        if !fresh.isEmpty { result += fresh }
        return result
    }
}
