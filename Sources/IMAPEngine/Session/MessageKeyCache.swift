import Logging
import Synchronization

/// The SORT and THREAD keys (`MessageKeys`) of recently sorted or threaded mailboxes, shared by the sessions of one
/// process, so that sorting or threading a mailbox again reads only the messages that arrived since.
///
/// A message's keys never change: UIDs are not reused within a mailbox, and keys are computed once at ingest. The
/// one exception, keys that `mailadmin db backfill` has yet to compute for messages an older version stored, is never
/// kept (`MessageKeys.isFinal`). So the cache needs no invalidation across instances: what another instance adds is
/// missing here and read on first use; what it expunges stays here unused until a lookup of a whole mailbox finds the
/// entry much larger than the mailbox and trims it. Memory is bounded by `capacity` (an estimate of the keys' bytes);
/// the least recently used mailboxes go first.
public final class MessageKeyCache: Sendable {
    struct Key: Hashable {
        var account: AccountID
        var mailbox: MailboxID
    }

    struct Entry {
        /// Ascending by UID.
        var keys: [MessageKeys] = []
        var bytes = 0
        var lastUse: UInt64 = 0
        /// Parallel to `keys`: each subject's rank among the entry's subjects (`subjectRanks(_:)`); computed when a
        /// SUBJECT sort first asks, dropped whenever `keys` changes.
        var subjectRanks: [UInt32]?
        /// Changes whenever `keys` does (ranks are kept only for the keys they were computed from).
        var generation: UInt64 = 0
    }

    /// Keys in ascending UID order, with each one's subject rank when asked for and all came from the cache.
    public struct Lookup: Sendable {
        public var keys: [MessageKeys]
        public var subjectRanks: [UInt32]?
    }

    struct State {
        var entries: [Key: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }

    /// Messages per store read when filling the cache: each read joins the mailbox's contents once, so fewer is
    /// faster, but one read holds its keys twice (as read and as decoded); a message's keys are usually about 100
    /// bytes, at most about 4 KiB (a 1 KiB subject and ten 250-byte references).
    static let readChunk = 25_000

    public let capacity: Int
    private let state = Mutex(State())

    /// 128 MiB: about a million messages of ordinary keys.
    public static let defaultCapacity = 128 << 20

    public init(capacity: Int = MessageKeyCache.defaultCapacity) {
        self.capacity = capacity
    }

    /// Bytes held, by estimate (for tests and metrics).
    public var bytes: Int { state.withLock { $0.bytes } }

    /// The keys of the messages `uids` (ascending) that exist, in that order: from the cache, the rest from the
    /// store. `complete`: `uids` is the whole mailbox as the caller sees it (lets the entry shed expunged messages).
    /// With `subjectRanks`, also each subject's rank (equal subjects, equal ranks; in byte order), kept with the entry
    /// so that sorting by subject again costs an integer sort.
    public func keys(
        for uids: [UID], account: AccountID, mailbox: MailboxID, complete: Bool, subjectRanks wanted: Bool = false,
        store: any MailStore, logger: Logger
    ) async throws(StoreError) -> Lookup {
        let key = Key(account: account, mailbox: mailbox)
        var fetchedAlready: [MessageKeys]? = nil
        for _ in 0..<2 {
            let cached = state.withLock { state -> Entry in
                state.clock += 1
                state.entries[key]?.lastUse = state.clock
                return state.entries[key] ?? Entry()
            }
            var found: [MessageKeys] = []
            var positions: [Int] = []
            var missing: [UID] = []
            found.reserveCapacity(min(uids.count, cached.keys.count))
            positions.reserveCapacity(min(uids.count, cached.keys.count))
            var j = 0
            for uid in uids {
                while j < cached.keys.count, cached.keys[j].uid < uid { j += 1 }
                if j < cached.keys.count, cached.keys[j].uid == uid {
                    found.append(cached.keys[j])
                    positions.append(j)
                } else {
                    missing.append(uid)
                }
            }
            if missing.isEmpty {
                if complete, cached.keys.count > uids.count + uids.count / 4 + 64 {
                    replace(key, with: found)
                    return Lookup(keys: found, subjectRanks: wanted ? Self.subjectRanks(found) : nil)
                }
                guard wanted else { return Lookup(keys: found, subjectRanks: nil) }
                let ranks = cached.subjectRanks ?? remember(Self.subjectRanks(cached.keys), for: cached, at: key)
                return Lookup(keys: found, subjectRanks: positions.map { ranks[$0] })
            }
            if let fetchedAlready { return Lookup(keys: fetchedAlready, subjectRanks: nil) }

            var fetched: [MessageKeys] = []
            var start = 0
            while start < missing.count {
                let chunk = missing[start..<min(start + Self.readChunk, missing.count)]
                fetched += try await store.messageKeys(
                    account: account, mailbox: mailbox, uids: UIDRanges(chunk), logger: logger)
                start += Self.readChunk
            }
            let merged = Self.merge(found, fetched)
            if complete {
                replace(key, with: merged.filter(\.isFinal))
            } else {
                insert(key, fetched.filter(\.isFinal))
            }
            // Keys an older version stored are not kept: no ranks for them.
            guard wanted, fetched.allSatisfy(\.isFinal) else { return Lookup(keys: merged, subjectRanks: nil) }
            fetchedAlready = merged  // the second look finds them all, unless the entry was too large to keep
        }
        return Lookup(keys: fetchedAlready ?? [], subjectRanks: nil)
    }

    /// Each subject's rank among `keys`' subjects: equal subjects get equal ranks, in the order of their UTF-8 bytes.
    public static func subjectRanks(_ keys: [MessageKeys]) -> [UInt32] {
        let subjects = keys.map { Array($0.thread.subject.utf8) }
        var order = Array(keys.indices)
        subjects.withUnsafeBufferPointer { subjects in
            order.sort { a, b in
                let (x, y) = (subjects[a], subjects[b])
                let common = min(x.count, y.count)
                for i in 0..<common where x[i] != y[i] { return x[i] < y[i] }
                return x.count < y.count
            }
        }
        var ranks = [UInt32](repeating: 0, count: keys.count)
        var rank: UInt32 = 0
        for (i, index) in order.enumerated() {
            if i > 0, subjects[index] != subjects[order[i - 1]] { rank += 1 }
            ranks[index] = rank
        }
        return ranks
    }

    /// Keeps `ranks` with the entry they were computed for, unless it changed meanwhile; returns them.
    private func remember(_ ranks: [UInt32], for entry: Entry, at key: Key) -> [UInt32] {
        state.withLock { state in
            guard let current = state.entries[key], current.generation == entry.generation,
                current.subjectRanks == nil
            else { return }
            state.entries[key]?.subjectRanks = ranks
            state.entries[key]?.bytes += 4 * ranks.count
            state.bytes += 4 * ranks.count
        }
        return ranks
    }

    /// Two ascending lists as one (a UID in both is kept once).
    static func merge(_ a: [MessageKeys], _ b: [MessageKeys]) -> [MessageKeys] {
        if b.isEmpty { return a }
        if a.isEmpty { return b }
        var result: [MessageKeys] = []
        result.reserveCapacity(a.count + b.count)
        var (i, j) = (0, 0)
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i].uid < b[j].uid) {
                result.append(a[i])
                i += 1
            } else {
                if i < a.count, a[i].uid == b[j].uid { i += 1 }
                result.append(b[j])
                j += 1
            }
        }
        return result
    }

    /// An estimate of the memory one message's keys take.
    static func estimate(_ keys: MessageKeys) -> Int {
        var bytes = 112 + keys.thread.subject.utf8.count + (keys.thread.messageID?.utf8.count ?? 0)
        for reference in keys.thread.references { bytes += 16 + reference.utf8.count }
        return bytes
    }

    private func replace(_ key: Key, with keys: [MessageKeys]) {
        state.withLock { state in
            let old = state.entries.removeValue(forKey: key)
            state.bytes -= old?.bytes ?? 0
            var entry = Entry()
            entry.keys = keys
            entry.bytes = keys.reduce(0) { $0 + Self.estimate($1) }
            store(entry, at: key, in: &state)
        }
    }

    private func insert(_ key: Key, _ keys: [MessageKeys]) {
        guard !keys.isEmpty else { return }
        state.withLock { state in
            var entry = state.entries.removeValue(forKey: key) ?? Entry()
            state.bytes -= entry.bytes
            // The keys change: ranks computed for the old ones no longer line up.
            if let ranks = entry.subjectRanks {
                entry.bytes -= 4 * ranks.count
                entry.subjectRanks = nil
            }
            if let last = entry.keys.last, let first = keys.first, first.uid <= last.uid {
                entry.keys = Self.merge(entry.keys, keys)
                entry.bytes = entry.keys.reduce(0) { $0 + Self.estimate($1) }
            } else {
                entry.keys += keys
                entry.bytes += keys.reduce(0) { $0 + Self.estimate($1) }
            }
            store(entry, at: key, in: &state)
        }
    }

    /// Keeps `entry` unless it alone exceeds the capacity, then evicts the least recently used others until the
    /// total fits.
    private func store(_ entry: Entry, at key: Key, in state: inout State) {
        guard entry.bytes <= capacity else { return }
        var entry = entry
        state.clock += 1
        entry.lastUse = state.clock
        entry.generation = state.clock
        state.entries[key] = entry
        state.bytes += entry.bytes
        while state.bytes > capacity,
            let victim = state.entries.filter({ $0.key != key }).min(by: { $0.value.lastUse < $1.value.lastUse })
        {
            state.bytes -= victim.value.bytes
            state.entries[victim.key] = nil
        }
    }
}
