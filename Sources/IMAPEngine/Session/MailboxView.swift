/// What *this client* has been told about its selected mailbox (STYLE.md §4). Owned by one session, never shared.
///
/// Invariants:
/// - `uids` is strictly increasing; message sequence number n is `uids[n - 1]` (RFC 9051 §2.3.1.2).
/// - `uids` changes only in `flush`, which returns the untagged responses that tell the client of the change, so the
///   client's idea of the mailbox and `uids` never diverge.
/// - Changes learnt from the store (`absorb`) wait in `pending` until a command allows announcing them; EXPUNGE is
///   withheld while a FETCH, STORE or SEARCH by sequence number runs (RFC 9051 §7.5.1, `FlushPolicy.noExpunges`).
/// - A UID the client has not been told about (above `uids.last`) is never mentioned.
struct MailboxView: Sendable {
    let mailbox: MailboxID
    let name: MailboxName
    let uidValidity: UIDValidity
    let readOnly: Bool
    private(set) var uids: [UID]
    /// Above every UID the mailbox has given out, as far as this view knows.
    private(set) var uidNext: UID
    /// The store modseq folded in so far.
    private(set) var highestModSeq: ModSeq
    /// UIDs this session announces with `\Recent` (IMAP4rev1).
    private(set) var recent: Set<UID>
    /// Keywords announced in FLAGS.
    private(set) var keywords: [String]

    private var pendingFlags: [UID: (flags: MessageFlags, modSeq: ModSeq)] = [:]
    private var pendingExpunges: Set<UID> = []
    /// The lowest modseq among `pendingExpunges` (RFC 7162 §3.2: a HIGHESTMODSEQ announced while they are withheld
    /// must stay below it).
    private var pendingExpungeFloor: ModSeq?
    /// New UIDs above `uids.last`, ascending, not yet announced.
    private var pendingAdded: [UID] = []
    private var pendingKeywords: [String] = []

    init(snapshot: MailboxSnapshot, readOnly: Bool) {
        mailbox = snapshot.id
        name = snapshot.name
        uidValidity = snapshot.uidValidity
        self.readOnly = readOnly
        uids = snapshot.uids
        uidNext = snapshot.uidNext
        highestModSeq = snapshot.highestModSeq
        recent = Set(snapshot.recent)
        keywords = snapshot.keywords
        checkInvariants()
    }

    var count: Int { uids.count }
    var lastUID: UID? { uids.last }
    var hasPendingAdditions: Bool { !pendingAdded.isEmpty }
    var hasPendingExpunges: Bool { !pendingExpunges.isEmpty }
    var highestPendingUID: UID? { pendingAdded.last }

    func sequenceNumber(of uid: UID) -> SequenceNumber? {
        guard let index = index(of: uid) else { return nil }
        return SequenceNumber(UInt32(index + 1))
    }

    func index(of uid: UID) -> Int? {
        let i = lowerBound(uid)
        return i < uids.count && uids[i] == uid ? i : nil
    }

    /// First index whose UID is ≥ `uid`.
    func lowerBound(_ uid: UID) -> Int {
        var low = 0
        var high = uids.count
        while low < high {
            let mid = (low + high) / 2
            if uids[mid] < uid { low = mid + 1 } else { high = mid }
        }
        return low
    }

    func isPendingExpunge(_ uid: UID) -> Bool { pendingExpunges.contains(uid) }

    /// The UIDs of `ranges`, below `uidNext`, that this view does not hold: what may have been expunged when the
    /// store no longer remembers (RFC 7162 §3.2.5.2).
    func absentUIDs(in ranges: UIDRanges) -> UIDRanges {
        guard uidNext.rawValue > 1 else { return UIDRanges() }
        var absent: [ClosedRange<UInt32>] = []
        for range in ranges.clamped(to: 1...(uidNext.rawValue - 1)).ranges {
            var next = range.lowerBound
            var i = lowerBound(UID(range.lowerBound))
            while i < uids.count, uids[i].rawValue <= range.upperBound {
                if uids[i].rawValue > next { absent.append(next...(uids[i].rawValue - 1)) }
                next = uids[i].rawValue + 1
                i += 1
            }
            if next <= range.upperBound, next > 0 { absent.append(next...range.upperBound) }
        }
        return UIDRanges(ranges: absent)
    }

    /// The UIDs a selector names, ascending and without duplicates. Sequence numbers out of range are a client
    /// error (RFC 9051 §9 `seq-number`: BAD, including `*` on an empty mailbox); UIDs that do not exist are skipped.
    func resolve(_ selector: MessageSelector, saved: [UID] = []) throws(IMAPError) -> [UID] {
        switch selector {
        case .sequence(let set) where set.isLastSearchResult, .uid(let set) where set.isLastSearchResult:
            return saved.filter { index(of: $0) != nil }
        case .sequence(let set):
            if uids.isEmpty { throw IMAPError.bad("No messages in the mailbox; invalid sequence set") }
            // Normalised before anything is expanded: `1:*,1:*,…` costs one pass over the mailbox, not one per range.
            let ranges = UIDRanges(ranges: set.resolved(star: UInt32(uids.count))).ranges
            if let highest = ranges.last?.upperBound, highest > UInt32(uids.count) {
                throw IMAPError.bad("Invalid sequence number: \(highest) > \(uids.count) messages")
            }
            var result: [UID] = []
            for range in ranges { result.append(contentsOf: uids[(Int(range.lowerBound) - 1)..<Int(range.upperBound)]) }
            return result
        case .uid(let set):
            guard let last = uids.last else { return [] }
            return uids(in: UIDRanges(ranges: set.resolved(star: last.rawValue)))
        }
    }

    /// The view's UIDs inside `ranges`, ascending.
    func uids(in ranges: UIDRanges) -> [UID] {
        var result: [UID] = []
        for range in ranges.ranges {
            var i = lowerBound(UID(range.lowerBound))
            while i < uids.count, uids[i].rawValue <= range.upperBound {
                result.append(uids[i])
                i += 1
            }
        }
        return result
    }

    /// Sequence numbers for SEARCH: out-of-range numbers match nothing instead of failing (as Dovecot does).
    func uidsForSearch(_ set: NumberSet, saved: [UID]) -> [UID] {
        if set.isLastSearchResult { return saved.filter { index(of: $0) != nil } }
        guard !uids.isEmpty else { return [] }
        var result: [UID] = []
        for range in UIDRanges(ranges: set.resolved(star: UInt32(uids.count))).ranges
        where range.lowerBound <= UInt32(uids.count) {
            result.append(
                contentsOf: uids[(Int(range.lowerBound) - 1)..<Int(min(range.upperBound, UInt32(uids.count)))])
        }
        return result
    }

    /// Folds a store delta in; announces nothing.
    mutating func absorb(_ delta: MailboxDelta) {
        let horizon = pendingAdded.last ?? uids.last ?? UID(0)
        for change in delta.changed {
            if index(of: change.uid) != nil {
                if !pendingExpunges.contains(change.uid) { pendingFlags[change.uid] = (change.flags, change.modSeq) }
            } else if change.uid > horizon {
                if pendingAdded.last.map({ change.uid > $0 }) ?? true { pendingAdded.append(change.uid) }
            }
            for keyword in change.flags.keywords where !keywords.contains(keyword) && !pendingKeywords.contains(keyword)
            {
                pendingKeywords.append(keyword)
            }
        }
        for uid in delta.expunged {
            if index(of: uid) != nil {
                pendingExpunges.insert(uid)
                pendingFlags[uid] = nil
                if let floor = delta.lowestExpungedModSeq {
                    pendingExpungeFloor = min(pendingExpungeFloor ?? floor, floor)
                }
            } else if let i = pendingAdded.firstIndex(of: uid) {
                pendingAdded.remove(at: i)
            }
        }
        highestModSeq = max(highestModSeq, delta.highestModSeq)
    }

    /// Keywords of `flags` the client has not been told of join FLAGS now; the returned FLAGS and PERMANENTFLAGS
    /// responses must be sent before the response that uses them (RFC 9051 §7.3.5; imaptest checks this).
    mutating func announceKeywords(of flags: some Sequence<MessageFlags>) -> [Untagged] {
        var added = false
        for message in flags {
            for keyword in message.keywords where !keywords.contains(keyword) {
                keywords.append(keyword)
                pendingKeywords.removeAll { $0 == keyword }
                added = true
            }
        }
        guard added else { return [] }
        return readOnly
            ? [.flags(keywords: keywords)] : [.flags(keywords: keywords), .permanentFlags(keywords: keywords)]
    }

    /// Marks UIDs as this session's `\Recent`.
    mutating func markRecent(_ range: ClosedRange<UInt32>) {
        for uid in pendingAdded where range.contains(uid.rawValue) { recent.insert(uid) }
        for uid in uids where range.contains(uid.rawValue) { recent.insert(uid) }
    }

    /// Forgets pending flag updates the client was already told of (a STORE's own FETCH responses); an update that
    /// differs (another session changed the flags since) is kept.
    mutating func suppressFlagUpdates(matching reported: [UID: MessageFlags]) {
        for (uid, flags) in reported where pendingFlags[uid]?.flags == flags { pendingFlags[uid] = nil }
    }

    /// Announces pending changes as far as `policy` allows (STYLE.md §4.3): flag FETCHes, then EXPUNGEs from the
    /// highest sequence number down (one VANISHED under QRESYNC), then EXISTS (and RECENT for IMAP4rev1). With
    /// `modSeqs` (CONDSTORE) flag FETCHes carry MODSEQ, and expunges withheld by `policy` are covered by a
    /// HIGHESTMODSEQ below theirs (RFC 7162 §3.2), since the FETCHes may carry higher modseqs.
    mutating func flush(_ policy: FlushPolicy, reportRecent: Bool, modSeqs: Bool = false, vanished: Bool = false)
        -> [Untagged]
    {
        guard policy != .none else { return [] }
        var out: [Untagged] = []
        if !pendingKeywords.isEmpty {
            keywords.append(contentsOf: pendingKeywords)
            pendingKeywords = []
            out.append(.flags(keywords: keywords))
            if !readOnly { out.append(.permanentFlags(keywords: keywords)) }
        }
        if !pendingFlags.isEmpty {
            for (uid, pending) in pendingFlags.sorted(by: { $0.key < $1.key }) {
                guard let seq = sequenceNumber(of: uid) else { continue }
                out.append(
                    .fetchFlags(
                        seq, uid: uid, flags: pending.flags, recent: recent.contains(uid),
                        modSeq: modSeqs ? pending.modSeq : nil))
            }
            pendingFlags = [:]
        }
        if policy == .full, !pendingExpunges.isEmpty {
            let indices = pendingExpunges.compactMap { index(of: $0) }.sorted(by: >)
            if vanished {
                out.append(.vanished(UIDRanges(indices.map { uids[$0] }), earlier: false))
                for i in indices { recent.remove(uids[i]) }
            } else {
                for i in indices {
                    out.append(.expunge(SequenceNumber(UInt32(i + 1))))
                    recent.remove(uids[i])
                }
            }
            let gone = pendingExpunges
            uids.removeAll { gone.contains($0) }
            pendingExpunges = []
            pendingExpungeFloor = nil
        } else if modSeqs, let floor = pendingExpungeFloor {
            // Even with nothing else to say: the command's own FETCH responses may have carried higher MODSEQs.
            out.append(.highestModSeq(ModSeq(floor.rawValue - 1)))
        }
        if !pendingAdded.isEmpty {
            if let last = pendingAdded.last, last >= uidNext { uidNext = UID(last.rawValue + 1) }
            uids.append(contentsOf: pendingAdded)
            pendingAdded = []
            out.append(.exists(uids.count))
        }
        // RFC 3501 §7.3.2: RECENT accompanies the EXISTS that brought the new messages.
        if reportRecent, out.last.map({ if case .exists = $0 { true } else { false } }) == true {
            out.append(.recent(recent.count))
        }
        checkInvariants()
        return out
    }

    private func checkInvariants() {
        #if DEBUG
            for i in uids.indices.dropFirst() { assert(uids[i - 1] < uids[i], "view UIDs must be strictly increasing") }
        #endif
    }
}

/// When a command may announce which changes (STYLE.md §3, RFC 9051 §7.5.1).
enum FlushPolicy: Sendable, Equatable {
    /// Nothing (SELECT builds a fresh view; LOGOUT).
    case none
    /// Everything except EXPUNGE: FETCH, STORE and SEARCH by sequence number, and the commands that must not
    /// shift sequence numbers under the client (RFC 9051 §7.5.1).
    case noExpunges
    case full
}
