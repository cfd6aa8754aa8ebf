import Foundation
import Logging

/// SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 4731 ESEARCH, RFC 5182 SEARCHRES).
///
/// Sequence numbers, `\Recent` and `$` are turned into UIDs here; everything else is answered by the store in one
/// query (DESIGN.md §4: SEARCH compiled to parameterised SQL).
extension Session {
    static let supportedCharsets = ["US-ASCII", "UTF-8"]

    /// Seconds since 1970, for WITHIN.
    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    func handleSearch(tag: Tag, isUID: Bool, _ search: SearchCommand) async throws -> Completion {
        let account = try requireAccount
        let current = try requireView
        // RFC 9051 §6.4.4.1: a SEARCH with SAVE that fails leaves the saved result empty.
        if search.returnOptions?.contains(.save) == true { savedSearch = [] }
        if search.returnOptions?.contains(.update) == true { try checkUpdateTag(tag) }
        if let charset = search.charset, !Self.supportedCharsets.contains(charset.uppercased()) {
            throw IMAPError.no(.badCharset(Self.supportedCharsets), "Unsupported charset")
        }
        // RFC 6855 §3: after ENABLE UTF8=ACCEPT a charset conflicts with the UTF-8 the client declared.
        if utf8Accept, search.charset != nil { throw IMAPError.bad("No CHARSET after ENABLE UTF8=ACCEPT") }
        let usesModSeq = Self.usesModSeq(search.key)
        if usesModSeq { enableCondstore() }
        var matches: [UID] = []
        let query = searchQuery(search.key, view: current)
        if let maxUID = current.lastUID {
            let found = try await store.search(
                account: account, mailbox: current.mailbox, query: query, maxUID: maxUID, logger: logger)
            // Only messages this client knows of (STYLE.md §4.3).
            matches = found.filter { current.index(of: $0) != nil }
        }

        let options = search.returnOptions ?? (rev2 ? .all : nil)
        if let options, options.contains(.save) {
            savedSearch = Self.savedResult(matches, options: options)
        }
        // RFC 5182 §2.4: SAVE alone returns no ESEARCH.
        if options != .save {
            try await answer(
                "SEARCH", tag: tag, isUID: isUID, matches: matches, options: options, usesModSeq: usesModSeq,
                view: current, partial: search.partial)
        }
        if options?.contains(.update) == true {
            try await registerUpdate(
                tag: tag, isUID: isUID, query: query, criteria: nil, results: matches, view: current)
        }
        return Completion("SEARCH completed")
    }

    /// The answer of SEARCH or SORT, in the order of `matches`: `* SEARCH` / `* SORT` with the numbers, or ESEARCH
    /// for RETURN options (RFC 4731; RFC 5267 §3.1: MIN and MAX are the first and last in that order, ALL keeps it
    /// with ranges only for ascending runs). A search by MODSEQ adds the highest modseq of the messages returned
    /// (RFC 7162 §3.1.5; with only MIN and/or MAX, of those).
    func answer(
        _ name: String, tag: Tag, isUID: Bool, matches: [UID], options: SearchReturnOptions?, usesModSeq: Bool,
        view current: MailboxView, partial: ClosedRange<UInt32>? = nil
    ) async throws {
        var highest: ModSeq? = nil
        if usesModSeq, !matches.isEmpty {
            let returned = options.map { Self.savedResult(matches, options: $0.subtracting(.save)) } ?? matches
            highest = try await highestModSeq(of: returned, in: current)
        }
        let numbers: [UInt32] =
            isUID ? matches.map(\.rawValue) : matches.compactMap { current.sequenceNumber(of: $0)?.rawValue }
        var w = responseWriter()
        guard let options else {
            w.raw("* " + name)
            for number in numbers {
                w.raw(" \(number)")
                if w.count >= ResponseSink.batchSize {
                    try await out.send(w)
                    w.removeAll()
                }
            }
            if let highest { w.raw(" (MODSEQ \(highest))") }
            w.crlf()
            try await out.send(w)
            return
        }
        w.raw("* ESEARCH (TAG ")
        w.string(tag)
        w.raw(")")
        if isUID { w.raw(" UID") }
        if let first = numbers.first, let last = numbers.last {
            if options.contains(.min) { w.raw(" MIN \(first)") }
            if options.contains(.max) { w.raw(" MAX \(last)") }
            if options.contains(.all) { w.raw(" ALL " + Self.sortedSet(numbers)) }
        }
        if let partial {
            // RFC 5267 §4.4: the results at these positions (in the answer's order), NIL when there are none.
            let low = Int(partial.lowerBound) - 1
            let slice = low < numbers.count ? Array(numbers[low..<min(numbers.count, Int(partial.upperBound))]) : []
            w.raw(" PARTIAL (\(partial.lowerBound):\(partial.upperBound) ")
            w.raw(slice.isEmpty ? "NIL)" : Self.sortedSet(slice) + ")")
        }
        if options.contains(.count) { w.raw(" COUNT \(numbers.count)") }
        if let highest, !options.isDisjoint(with: [.min, .max, .all, .count]) { w.raw(" MODSEQ \(highest)") }
        w.crlf()
        try await out.send(w)
    }

    static func usesModSeq(_ key: SearchKey) -> Bool {
        switch key {
        case .modSeq: true
        case .not(let inner): usesModSeq(inner)
        case .or(let a, let b): usesModSeq(a) || usesModSeq(b)
        case .and(let keys): keys.contains(where: usesModSeq)
        default: false
        }
    }

    /// The highest modseq among `uids`, read in flags-only batches.
    func highestModSeq(of uids: [UID], in view: MailboxView) async throws -> ModSeq {
        let account = try requireAccount
        var highest = ModSeq.zero
        var start = 0
        while start < uids.count {
            let batch = Array(uids[start..<min(start + Self.fetchBatchMetadata, uids.count)])
            let records = try await store.fetch(
                account: account, mailbox: view.mailbox, uids: batch, columns: [], logger: logger)
            for record in records { highest = max(highest, record.modSeq) }
            start += batch.count
        }
        return highest
    }

    /// RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor COUNT, only those messages are saved.
    static func savedResult(_ matches: [UID], options: SearchReturnOptions) -> [UID] {
        guard options.isDisjoint(with: [.all, .count]), !options.isDisjoint(with: [.min, .max]) else { return matches }
        var saved: [UID] = []
        if options.contains(.min), let first = matches.first { saved.append(first) }
        if options.contains(.max), let last = matches.last, saved.last != last { saved.append(last) }
        return saved
    }

    /// Resolves the session-relative parts of a search program (RFC 9051 §6.4.4).
    func searchQuery(_ key: SearchKey, view: MailboxView) -> SearchQuery {
        switch key {
        case .all: return .all
        case .answered: return .systemFlag(.answered, present: true)
        case .deleted: return .systemFlag(.deleted, present: true)
        case .draft: return .systemFlag(.draft, present: true)
        case .flagged: return .systemFlag(.flagged, present: true)
        case .seen: return .systemFlag(.seen, present: true)
        case .unanswered: return .systemFlag(.answered, present: false)
        case .undeleted: return .systemFlag(.deleted, present: false)
        case .undraft: return .systemFlag(.draft, present: false)
        case .unflagged: return .systemFlag(.flagged, present: false)
        case .unseen: return .systemFlag(.seen, present: false)
        case .recent: return .uids(UIDRanges(view.recent))
        case .new: return .and([.uids(UIDRanges(view.recent)), .systemFlag(.seen, present: false)])
        case .old: return .not(.uids(UIDRanges(view.recent)))
        case .keyword(let name): return .keyword(name, present: true)
        case .unkeyword(let name): return .keyword(name, present: false)
        case .bcc(let s): return .address(.bcc, s)
        case .cc(let s): return .address(.cc, s)
        case .from(let s): return .address(.from, s)
        case .to(let s): return .address(.to, s)
        case .subject(let s): return .subject(s)
        case .body(let s): return .body(s)
        case .text(let s): return .text(s)
        case .header(let name, let value): return .header(name: name, value: value)
        case .before(let d): return .internalDate(.before, d)
        case .on(let d): return .internalDate(.on, d)
        case .since(let d): return .internalDate(.since, d)
        case .sentBefore(let d): return .sentDate(.before, d)
        case .sentOn(let d): return .sentDate(.on, d)
        case .sentSince(let d): return .sentDate(.since, d)
        case .larger(let n): return .larger(n)
        case .smaller(let n): return .smaller(n)
        case .modSeq(let m): return .modSeq(m)
        // RFC 5032 §3: relative to the time the search runs.
        case .older(let seconds): return .arrivedBefore(Self.now() - seconds)
        case .younger(let seconds): return .arrivedSince(Self.now() - seconds)
        case .emailID(let id): return ObjectID.contentID(fromEmailID: id).map { .contentID($0) } ?? .none
        // No thread ids are assigned, so none matches.
        case .threadID: return .none
        case .savedBefore(let d): return .saveDate(.before, d)
        case .savedOn(let d): return .saveDate(.on, d)
        case .savedSince(let d): return .saveDate(.since, d)
        case .saveDateSupported: return .all
        case .uid(let set):
            if set.isLastSearchResult { return .uids(UIDRanges(savedSearch)) }
            guard let last = view.lastUID else { return .none }
            return .uids(UIDRanges(ranges: set.resolved(star: last.rawValue)))
        case .sequence(let set):
            return .uids(UIDRanges(view.uidsForSearch(set, saved: savedSearch)))
        case .not(let inner): return .not(searchQuery(inner, view: view))
        case .or(let a, let b): return .or(searchQuery(a, view: view), searchQuery(b, view: view))
        case .and(let keys): return .and(keys.map { searchQuery($0, view: view) })
        }
    }
}

/// SORT and UID SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO, RFC 5267 ESORT).
extension Session {
    func handleSort(tag: Tag, isUID: Bool, _ sort: SortCommand) async throws -> Completion {
        let current = try requireView
        // RFC 5182 with RFC 5267: SORT RETURN (SAVE) saves like SEARCH; a failed one leaves the result empty.
        if sort.returnOptions?.contains(.save) == true { savedSearch = [] }
        if sort.returnOptions?.contains(.update) == true { try checkUpdateTag(tag) }
        if !Self.supportedCharsets.contains(sort.charset.uppercased()) {
            throw IMAPError.no(.badCharset(Self.supportedCharsets), "Unsupported charset")
        }
        let usesModSeq = Self.usesModSeq(sort.key)
        if usesModSeq { enableCondstore() }
        let query = searchQuery(sort.key, view: current)
        let matches = try await sorted(query, by: sort.criteria, view: current)
        if let options = sort.returnOptions, options.contains(.save) {
            // MIN and MAX are the first and last in sort order; the saved result is a set.
            savedSearch = Self.savedResult(matches, options: options).sorted()
        }
        if sort.returnOptions != .save {
            try await answer(
                "SORT", tag: tag, isUID: isUID, matches: matches, options: sort.returnOptions, usesModSeq: usesModSeq,
                view: current, partial: sort.partial)
        }
        if sort.returnOptions?.contains(.update) == true {
            try await registerUpdate(
                tag: tag, isUID: isUID, query: query, criteria: sort.criteria, results: matches, view: current)
        }
        return Completion("SORT completed")
    }

    /// The sort keys `MessageKeys` carries (the others are sorted by the store).
    static let cachedSortKeys: Set<SortCriterion.Key> = [.arrival, .date, .size, .subject]

    /// The UIDs `query` matches among those this client knows of (STYLE.md §4.3), in `criteria`'s order: ARRIVAL,
    /// DATE, SIZE and SUBJECT sorted here over the process's key cache, the others by the store. SORT and its
    /// updating contexts both sort here.
    func sorted(_ query: SearchQuery, by criteria: [SortCriterion], view: MailboxView) async throws -> [UID] {
        let account = try requireAccount
        guard let maxUID = view.lastUID else { return [] }
        guard criteria.allSatisfy({ Self.cachedSortKeys.contains($0.key) }) else {
            return try await store.sort(
                account: account, mailbox: view.mailbox, query: query, criteria: criteria, maxUID: maxUID,
                logger: logger
            ).filter { view.index(of: $0) != nil }
        }
        let bySubject = criteria.contains { $0.key == .subject }
        let lookup = try await messageKeys(query, view: view, subjectRanks: bySubject)
        let keys = lookup.keys
        let ranks = bySubject ? lookup.subjectRanks ?? MessageKeyCache.subjectRanks(keys) : []
        var order = Array(keys.indices)
        keys.withUnsafeBufferPointer { keys in
            ranks.withUnsafeBufferPointer { ranks in order.sort { Self.precedes($0, $1, keys, ranks, criteria) } }
        }
        return order.map { keys[$0].uid }
    }

    /// The keys of the messages `query` matches among those this client knows of, ascending by UID: for ALL the
    /// view's UIDs, otherwise the store's search; the keys from the process's cache.
    func messageKeys(_ query: SearchQuery, view: MailboxView, subjectRanks: Bool = false) async throws
        -> MessageKeyCache.Lookup
    {
        let account = try requireAccount
        guard let maxUID = view.lastUID else { return MessageKeyCache.Lookup(keys: [], subjectRanks: []) }
        var uids = view.uids
        if query != .all {
            uids = try await store.search(
                account: account, mailbox: view.mailbox, query: query, maxUID: maxUID, logger: logger
            ).filter { view.index(of: $0) != nil }
        }
        return try await server.keyCache.keys(
            for: uids, account: account, mailbox: view.mailbox, complete: query == .all, subjectRanks: subjectRanks,
            store: store, logger: logger)
    }

    /// RFC 5256 §3: by the criteria in turn, then by UID (mailbox order), which REVERSE does not turn. Subjects
    /// compare by their ranks (`MessageKeyCache.subjectRanks`: byte order, as the store's `COLLATE "C"`; i;ascii-casemap
    /// was applied at ingest).
    static func precedes(
        _ a: Int, _ b: Int, _ keys: UnsafeBufferPointer<MessageKeys>, _ subjectRanks: UnsafeBufferPointer<UInt32>,
        _ criteria: [SortCriterion]
    ) -> Bool {
        func order<T: Comparable>(_ x: T, _ y: T) -> Int { x < y ? -1 : x == y ? 0 : 1 }
        for criterion in criteria {
            let result: Int
            switch criterion.key {
            case .arrival: result = order(keys[a].arrival, keys[b].arrival)
            case .date: result = order(keys[a].thread.date, keys[b].thread.date)
            case .size: result = order(keys[a].size, keys[b].size)
            case .subject: result = order(subjectRanks[a], subjectRanks[b])
            default: result = 0
            }
            if result != 0 { return criterion.reverse ? result > 0 : result < 0 }
        }
        return keys[a].uid < keys[b].uid
    }

    /// A sequence-set in sort order (RFC 5267 §3.2): only ascending runs become ranges.
    static func sortedSet(_ numbers: [UInt32]) -> String {
        var parts: [String] = []
        var i = 0
        while i < numbers.count {
            var j = i
            while j + 1 < numbers.count, numbers[j + 1] == numbers[j] + 1 { j += 1 }
            parts.append(j > i ? "\(numbers[i]):\(numbers[j])" : "\(numbers[i])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}

/// THREAD and UID THREAD (RFC 5256 §3, §4).
extension Session {
    func handleThread(isUID: Bool, _ thread: ThreadCommand) async throws -> Completion {
        let current = try requireView
        if !Self.supportedCharsets.contains(thread.charset.uppercased()) {
            throw IMAPError.no(.badCharset(Self.supportedCharsets), "Unsupported charset")
        }
        if Self.usesModSeq(thread.key) { enableCondstore() }
        let rows = try await messageKeys(searchQuery(thread.key, view: current), view: current).keys
        let messages = rows.map(\.thread)
        let threads =
            switch thread.algorithm {
            case .orderedSubject: Threading.orderedSubject(messages)
            case .references: Threading.references(messages)
            case .refs: Threading.references(messages, refs: true)
            }
        let numbers: [UInt32] = rows.map { isUID ? $0.uid.rawValue : current.sequenceNumber(of: $0.uid)?.rawValue ?? 0 }
        let text = Threading.wire(threads) { numbers[$0] }
        try await out.sendLine(text.isEmpty ? "* THREAD" : "* THREAD " + text)
        return Completion("THREAD completed")
    }
}
