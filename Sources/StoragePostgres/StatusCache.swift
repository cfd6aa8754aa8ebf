import IMAPEngine

/// The STATUS counts of recently asked mailboxes, per instance, so that STATUS of an unchanged mailbox reads its
/// mailbox row and no messages (a client polls STATUS of every folder; counting a 100,000-message mailbox took 53 ms
/// of PostgreSQL time each time).
///
/// An entry is used only when the mailbox row still has the same id, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and first
/// unclaimed `\Recent` UID as when the counts were read, in the same statement (DESIGN.md §3): every append, expunge
/// and flag change moves UIDNEXT or HIGHESTMODSEQ under the mailbox row's lock, and a `\Recent` claim moves the first
/// unclaimed UID. Anything else (a mailbox deleted and made again, a restored database) reads the counts again; an
/// out-of-date entry costs a count, never a wrong answer. Bounded by `capacity` bytes (each entry about 100 bytes and
/// its name), least recently asked first out.
final class StatusCache: Sendable {
    /// The SELECT cache's key: the account and the mailbox name.
    typealias Key = SelectCache.Key

    struct Entry: Equatable {
        var mailbox: MailboxID
        var uidValidity: UIDValidity
        var uidNext: UID
        var highestModSeq: ModSeq
        var firstRecentUID: Int64
        var messages: Int
        var unseen: Int
        var deleted: Int
        var size: Int64
        var recent: Int

        var status: MailboxStatus {
            MailboxStatus(
                messages: messages, unseen: unseen, deleted: deleted, size: size, recent: recent, uidNext: uidNext,
                uidValidity: uidValidity, highestModSeq: highestModSeq, id: mailbox)
        }
    }

    private let entries: LRUCache<Key, Entry>
    var capacity: Int { entries.capacity }

    /// 8 MiB: about 80,000 mailboxes.
    init(capacity: Int = 8 << 20) {
        entries = LRUCache(capacity: capacity) { key, _ in Self.cost(key) }
    }

    /// Bytes held (for tests).
    var held: Int { entries.held }

    /// What an entry costs in bytes: its fixed part and its key's name.
    static func cost(_ key: Key) -> Int { 96 + key.name.utf8.count }

    func entry(_ key: Key) -> Entry? { entries.value(key) }

    /// Keeps `entry`; an entry for the same mailbox is replaced only by one at least as new.
    func store(_ entry: Entry, at key: Key) {
        entries.store(entry, at: key) { old, new in
            old.mailbox != new.mailbox || old.highestModSeq <= new.highestModSeq
        }
    }
}
