import Logging

/// FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY).
///
/// Streams, with memory bounded whatever the client asks (DESIGN-level notes in docs/limits.md): message rows are
/// read in batches that stop at a byte budget, each batch is written (with backpressure) while the next is read, and
/// sections are read as they are written: small ones a few at a time up to `sectionWindow` bytes, large ones (and
/// large parts to decode or filter) in chunks of `streamChunk`. No batch's bodies are ever held together.
extension Session {
    /// Messages per metadata query: small when bodies are read, larger for flags-only syncs.
    static let fetchBatchWithBodies = 100
    static let fetchBatchMetadata = 2000
    /// Bytes of content columns (ENVELOPE, BODYSTRUCTURE, header, MIME tree) one batch may hold.
    static let fetchBatchBytes = 4 << 20
    /// Literals larger than this are read from the store and written in chunks of this size.
    static let streamChunk = 1 << 20
    /// Small sections are read ahead, several per store call, up to this many bytes.
    static let sectionWindow = 2 << 20

    func handleFetch(
        _ selector: MessageSelector, items requested: [FetchAttribute], modifiers: FetchModifiers = FetchModifiers()
    ) async throws -> Completion {
        let account = try requireAccount
        let current = try requireView
        guard requested.count <= server.limits.maxFetchItems else {
            throw IMAPError.bad(.limit, "Too many FETCH items (at most \(server.limits.maxFetchItems))")
        }
        // RFC 7162 §3.2.3: VANISHED only after ENABLE QRESYNC.
        if modifiers.vanished && !qresync { throw IMAPError.bad("VANISHED without ENABLE QRESYNC") }
        var uids = try current.resolve(selector, saved: savedSearch)
        var items = requested
        if case .uid = selector, !items.contains(.uid) { items.insert(.uid, at: 0) }
        // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ; both are CONDSTORE enabling commands.
        if modifiers.changedSince != nil, !items.contains(.modSeq) { items.append(.modSeq) }
        if items.contains(.modSeq) { enableCondstore() }
        // (VANISHED is answered even when none of the UIDs asked for is left: that is when the client most needs it.)
        if let since = modifiers.changedSince, !uids.isEmpty || modifiers.vanished {
            // Only messages changed since: found through the modseq index, not by reading every row asked for.
            let delta = try await store.changes(
                account: account, mailbox: current.mailbox, since: since, logger: logger)
            let changed = Set(delta.changed.map(\.uid))
            uids = uids.filter { changed.contains($0) }
            if modifiers.vanished, case .uid(let set) = selector {
                // RFC 7162 §3.2.6: expunged messages of the set, that this client's view no longer holds. `*` reaches
                // past the highest UID left: messages expunged from the end vanished too.
                let asked = UIDRanges(ranges: set.resolved(star: UInt32.max))
                let gone =
                    delta.expungedIncomplete
                    ? current.absentUIDs(in: asked)
                    : UIDRanges(delta.expunged.filter { asked.contains($0) && current.index(of: $0) == nil })
                if !gone.isEmpty {
                    var w = responseWriter()
                    w.untagged(.vanished(gone, earlier: true))
                    try await out.send(w)
                }
            }
        }
        guard !uids.isEmpty else { return Completion("FETCH completed") }

        // RFC 9051 §6.4.5: BODY[…] and BINARY[…] without .PEEK set \Seen; the new flags are reported in the response.
        var seenSet: [UID: MessageFlags] = [:]
        if !current.readOnly, items.contains(where: \.setsSeen) {
            let results = try await store.updateFlags(
                account: account, mailbox: current.mailbox, uids: uids,
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .seen)), logger: logger)
            showed(upTo: results.lazy.map(\.modSeq).max())
            for result in results where result.changed { seenSet[result.uid] = result.flags }
            for (uid, flags) in seenSet { reportedFlags[uid] = flags }
            if !seenSet.isEmpty {
                // These own changes must be recognised and not announced again (`reportedFlags`): the sync point
                // takes them in with the feed's deltas, or pulls.
                wroteSelected(Self.ownChange(results).delta)
            }
        }

        if seenSet.isEmpty, items.allSatisfy({ $0 == .uid || $0 == .flags || $0 == .modSeq }) {
            return try await fetchFlagsOnly(uids, items: items, account: account, mailbox: current.mailbox)
        }
        let plan = FetchPlan(items: items)
        let batchSize = plan.needsContent ? Self.fetchBatchWithBodies : Self.fetchBatchMetadata
        // The next batch is read while this one is written, so the store and the client side overlap; at most two
        // batches are in memory.
        let (store, logger, mailbox, columns) = (self.store, self.logger, current.mailbox, plan.columns)
        // On the connection's loop, as the session is (an unstructured task does not inherit that preference): the
        // store's answer then wakes no other thread.
        let executor = EventLoopTaskExecutor(out.eventLoop)
        func read(from start: Int) -> Task<FetchedBatch, any Error> {
            let batch = Array(uids[start..<min(start + batchSize, uids.count)])
            return Task(executorPreference: executor) {
                try await store.fetch(
                    account: account, mailbox: mailbox, uids: batch, columns: columns,
                    byteBudget: Self.fetchBatchBytes, logger: logger)
            }
        }
        var missing = false
        var start = 0
        var next: Task<FetchedBatch, any Error>? = read(from: 0)
        defer { next?.cancel() }
        lostContent = false
        while let reading = next {
            // The read-ahead is a task of its own: cancelled with this one (the peer left), it returns at once.
            let batch = try await withTaskCancellationHandler {
                try await reading.value
            } onCancel: {
                reading.cancel()
            }
            let covered = max(1, batch.covered)
            if batch.records.count < covered { missing = true }
            start += covered
            next = start < uids.count ? read(from: start) : nil
            showed(upTo: batch.records.lazy.map(\.modSeq).max())
            try await writeFetchResponses(batch.records, plan: plan, seenSet: seenSet, account: account)
        }
        if missing || lostContent {
            // RFC 9051 §7.1: some messages were expunged and their content is gone (before or while they were read).
            throw IMAPError.no(.expungeIssued, "Some messages were expunged before they could be fetched")
        }
        return Completion("FETCH completed")
    }

    /// Sends FLAGS (and PERMANENTFLAGS) for keywords of `flags` the client has not been told of, before the FETCH
    /// responses that carry them (RFC 9051 §7.3.5).
    private func sendKeywordAnnouncements(of flags: some Sequence<MessageFlags>) async throws {
        let announcements = view?.announceKeywords(of: flags) ?? []
        guard !announcements.isEmpty else { return }
        var w = responseWriter()
        for response in announcements { w.untagged(response) }
        try await out.send(w)
    }

    /// UIDs per `flags` call of a flags-only FETCH (what one holds: about 32 bytes a message).
    static let flagsBatch = 16384

    /// A flags-only FETCH (a client's resync: UID, FLAGS, MODSEQ): the store answers from what it keeps of the
    /// mailbox, and the lines are written without the general per-item machinery.
    private func fetchFlagsOnly(_ uids: [UID], items: [FetchAttribute], account: AccountID, mailbox: MailboxID)
        async throws -> Completion
    {
        var missing = false
        var start = 0
        while start < uids.count {
            let batch = Array(uids[start..<min(start + Self.flagsBatch, uids.count)])
            start += batch.count
            let records = try await store.flags(account: account, mailbox: mailbox, uids: batch, logger: logger)
            if records.count < batch.count { missing = true }
            showed(upTo: records.lazy.map(\.modSeq).max())
            if items.contains(.flags) { try await sendKeywordAnnouncements(of: records.lazy.map(\.flags)) }
            guard let view else { break }
            var w = responseWriter()
            for record in records {
                guard let index = view.index(of: record.uid) else { continue }
                w.raw("* ")
                w.number(UInt64(index + 1))
                w.raw(" FETCH (")
                for (i, item) in items.enumerated() {
                    if i > 0 { w.raw(" ") }
                    switch item {
                    case .uid:
                        w.raw("UID ")
                        w.number(UInt64(record.uid.rawValue))
                    case .modSeq:
                        w.raw("MODSEQ (")
                        w.number(UInt64(clamping: record.modSeq.rawValue))
                        w.raw(")")
                    default:
                        w.raw("FLAGS ")
                        w.flags(record.flags, recent: view.recent.contains(record.uid))
                    }
                }
                w.raw(")\r\n")
                if w.count >= ResponseSink.batchSize {
                    try await out.send(w)
                    w.removeAll()
                }
            }
            try await out.send(w)
        }
        if missing {
            // RFC 9051 §7.1: some messages were expunged and their content is gone.
            throw IMAPError.no(.expungeIssued, "Some messages were expunged before they could be fetched")
        }
        return Completion("FETCH completed")
    }

    private func writeFetchResponses(
        _ records: [MessageRecord], plan: FetchPlan, seenSet: [UID: MessageFlags], account: AccountID
    ) async throws {
        guard let view else { return }
        // The small sections of the batch, in the order they are written, are read a window at a time. Each message's
        // values are worked out once (HEADER.FIELDS filters the header then: done twice, it was a seventh of the CPU
        // time of a header download).
        var queue: [SectionReader.Entry] = []
        var planned = [[FetchValue]?](repeating: nil, count: records.count)
        for (m, record) in records.enumerated() where view.sequenceNumber(of: record.uid) != nil {
            let values = try plan.values(for: record)
            planned[m] = values
            for (i, value) in values.enumerated() {
                if case .slice(let slice, _) = value, slice.range.count <= Self.streamChunk {
                    queue.append(.init(message: m, item: i, slice: slice))
                }
            }
        }
        var reader = SectionReader(queue: queue, budget: Self.sectionWindow)

        if plan.items.contains(.flags) || !seenSet.isEmpty {
            try await sendKeywordAnnouncements(of: records.lazy.map(\.flags))
        }
        for (m, record) in records.enumerated() {
            // `view` is the snapshot the first loop planned with: a message with a number here has its values.
            guard let seq = view.sequenceNumber(of: record.uid), let values = planned[m] else { continue }
            planned[m] = nil
            var w = responseWriter()
            w.raw("* \(seq) FETCH (")
            for (i, item) in plan.items.enumerated() {
                if i > 0 { w.raw(" ") }
                var fetched: [UInt8]?
                if case .slice(let slice, _) = values[i], slice.range.count <= Self.streamChunk {
                    let bytes = try await reader.bytes(message: m, item: i, session: self, account: account)
                    // Shorter than the section: the content was released (expunged, quota) after the row was read.
                    if bytes.count < slice.range.count { lostContent = true }
                    fetched = bytes
                }
                try await writeFetchItem(
                    item, name: plan.responseNames[i], value: values[i], fetched: fetched, record: record, view: view,
                    into: &w, account: account)
                if w.count >= ResponseSink.batchSize {
                    try await out.send(w)
                    w.removeAll()
                }
            }
            if let flags = seenSet[record.uid] {
                if !plan.items.contains(.flags) {
                    w.raw(plan.items.isEmpty ? "FLAGS " : " FLAGS ")
                    w.flags(flags, recent: view.recent.contains(record.uid))
                }
                // RFC 7162 §3.2.4: a FETCH that set \Seen reports UID and MODSEQ once CONDSTORE is enabled.
                if condstore && !plan.items.contains(.uid) { w.raw(" UID \(record.uid)") }
                if condstore && !plan.items.contains(.modSeq) { w.raw(" MODSEQ (\(record.modSeq))") }
            }
            w.line(")")
            try await out.send(w)
        }
    }

    /// `name`: the item's `FetchPlan.responseName`.
    private func writeFetchItem(
        _ item: FetchAttribute, name: String, value: FetchValue, fetched: [UInt8]?, record: MessageRecord,
        view: MailboxView,
        into w: inout ResponseWriter, account: AccountID
    ) async throws {
        switch item {
        case .uid: w.raw("UID \(record.uid)")
        case .modSeq: w.raw("MODSEQ (\(record.modSeq))")
        case .emailID: w.raw("EMAILID (\(ObjectID.email(contentID: record.contentID)))")
        case .threadID: w.raw("THREADID NIL")
        case .saveDate:
            w.raw("SAVEDATE ")
            if let saved = record.saveDate {
                w.raw(InternalDate(secondsSinceEpoch: saved, zoneMinutes: 0).wire)
            } else {
                w.raw("NIL")
            }
        case .preview:
            w.raw("PREVIEW ")
            w.nstring(record.preview)
        case .flags:
            w.raw("FLAGS ")
            w.flags(record.flags, recent: view.recent.contains(record.uid))
        case .internalDate: w.raw("INTERNALDATE " + record.internalDate.wire)
        case .rfc822Size: w.raw("RFC822.SIZE \(record.size)")
        case .envelope:
            w.raw("ENVELOPE ")
            w.raw(record.envelope)
        case .body:
            w.raw("BODY ")
            w.raw(record.body)
        case .bodyStructure:
            w.raw("BODYSTRUCTURE ")
            w.raw(record.bodyStructure)
        case .binarySize(let part):
            w.raw("BINARY.SIZE[" + part.map(String.init).joined(separator: ".") + "] ")
            if case .size(let n) = value { w.raw(String(n)) } else { w.raw("NIL") }
        case .bodySection, .binary:
            w.raw(name)
            w.raw(" ")
            switch value {
            case .missing, .size:
                w.raw("NIL")
            case .bytes(let bytes, let binary):
                writeLiteral(bytes, binary: binary, into: &w)
            case .slice(let slice, let transform):
                if let fetched {
                    writeLiteral(try transformed(fetched, transform), binary: transform?.isBinary ?? false, into: &w)
                } else {
                    try await streamLiteral(slice, transform: transform, into: &w, account: account)
                }
            }
        }
    }

    /// A large section, read from the store and written in chunks. A part to decode goes through the decoder as it
    /// streams (its decoded size is known from ingest); a header to filter is read twice, once to learn the size of
    /// the literal and once to send it. Either way one chunk is in memory at a time.
    private func streamLiteral(
        _ slice: ContentSlice, transform: FetchValue.Transform?, into w: inout ResponseWriter, account: AccountID
    ) async throws {
        switch transform {
        case nil:
            w.raw("{\(slice.range.count)}\r\n")
            try await out.send(w)
            w.removeAll()
            try await forEachChunk(of: slice, account: account) { chunk in
                // A literal cannot carry NUL (RFC 9051 CHAR8): sent as 0x80, as Dovecot does.
                try await out.send(chunk.contains(0) ? chunk.map { $0 == 0 ? 0x80 : $0 } : chunk)
            }
        case .decode(let encoding, let partial, let decodedSize):
            guard let decodedSize, var decoder = TransferEncoding.Decoder(encoding: encoding) else {
                throw IMAPError.no(.unknownCTE, "Unknown Content-Transfer-Encoding")
            }
            var window = PartialWindow(FetchPlan.clamp(0..<decodedSize, partial))
            // literal8 (RFC 3516): a streamed part may hold NUL, which only literal8 can carry.
            w.raw("~{\(window.count)}\r\n")
            try await out.send(w)
            w.removeAll()
            var decoded: [UInt8] = []
            try await forEachChunk(of: slice, account: account) { chunk in
                decoded.removeAll(keepingCapacity: true)
                decoder.feed(chunk, into: &decoded)
                try await out.send(window.take(decoded))
            }
            decoded.removeAll()
            decoder.finish(into: &decoded)
            try await out.send(window.take(decoded))
            if window.remaining > 0 {
                // The size stored at ingest and this decoder disagree: keep the literal's promise.
                logger.error("decoded size mismatch", metadata: ["imap.missing": "\(window.remaining)"])
                try await out.send([UInt8](repeating: 0x20, count: window.remaining))
            }
        case .filterHeader(let names, let not, let partial):
            var size = 0
            var counter = HeaderFilter.Stream(names: names, not: not)
            var output: [UInt8] = []
            try await forEachChunk(of: slice, account: account) { chunk in
                output.removeAll(keepingCapacity: true)
                counter.feed(chunk, into: &output)
                size += output.count
            }
            output.removeAll()
            counter.finish(into: &output)
            size += output.count
            var window = PartialWindow(FetchPlan.clamp(0..<size, partial))
            w.raw("{\(window.count)}\r\n")
            try await out.send(w)
            w.removeAll()
            var filter = HeaderFilter.Stream(names: names, not: not)
            try await forEachChunk(of: slice, account: account) { chunk in
                output.removeAll(keepingCapacity: true)
                filter.feed(chunk, into: &output)
                try await out.send(window.take(output))
            }
            output.removeAll()
            filter.finish(into: &output)
            try await out.send(window.take(output))
            if window.remaining > 0 {
                // The header changed between the two reads (it cannot: contents are immutable); keep the promise.
                try await out.send([UInt8](repeating: 0x20, count: window.remaining))
            }
        }
    }

    /// Reads `slice` from the store `streamChunk` bytes at a time.
    private func forEachChunk(
        of slice: ContentSlice, account: AccountID, _ body: ([UInt8]) async throws -> Void
    ) async throws {
        var offset = slice.range.lowerBound
        while offset < slice.range.upperBound {
            let end = min(offset + Self.streamChunk, slice.range.upperBound)
            let chunk = try await store.contentBytes(
                account: account, slices: [ContentSlice(contentID: slice.contentID, range: offset..<end)],
                logger: logger)
            var bytes = chunk.first ?? []
            if bytes.count < end - offset {
                // The content was released (expunged, quota) while it streamed: the literal's length was promised,
                // so it is kept with padding, and the command ends NO [EXPUNGEISSUED].
                lostContent = true
                bytes += [UInt8](repeating: 0x20, count: end - offset - bytes.count)
            }
            try await body(bytes)
            offset = end
        }
    }

    func transformed(_ bytes: [UInt8], _ transform: FetchValue.Transform?) throws -> [UInt8] {
        switch transform {
        case nil:
            return bytes
        case .decode(let encoding, let partial, _):
            guard let decoded = TransferEncoding.decode(bytes, encoding: encoding) else {
                throw IMAPError.no(.unknownCTE, "Unknown Content-Transfer-Encoding")
            }
            return FetchPlan.apply(partial, to: decoded)
        case .filterHeader(let names, let not, let partial):
            return FetchPlan.apply(partial, to: HeaderFilter.filter(bytes, names: names, not: not))
        }
    }

    /// `{n}` literal, or `~{n}` (RFC 3516 literal8) when a BINARY value contains NUL. A literal cannot carry NUL
    /// (RFC 9051 `CHAR8`), so NUL in a BODY[] value is sent as 0x80, as Dovecot does.
    private func writeLiteral(_ bytes: [UInt8], binary: Bool, into w: inout ResponseWriter) {
        if binary && bytes.contains(0) {
            w.raw("~")
        } else if !binary && bytes.contains(0) {
            w.literal(bytes.map { $0 == 0 ? 0x80 : $0 })
            return
        }
        w.literal(bytes)
    }
}

/// The small sections of one FETCH batch, read ahead a window at a time (one store call for many small messages)
/// and handed out in the order they are written; what was handed out is not kept.
struct SectionReader {
    struct Entry {
        var message: Int
        var item: Int
        var slice: ContentSlice
    }

    private let queue: [Entry]
    private let budget: Int
    private var next = 0
    private var window: [Int: [Int: [UInt8]]] = [:]

    init(queue: [Entry], budget: Int) {
        self.queue = queue
        self.budget = budget
    }

    mutating func bytes(message: Int, item: Int, session: Session, account: AccountID) async throws -> [UInt8] {
        if let bytes = window[message]?.removeValue(forKey: item) { return bytes }
        // Not read yet: the next window starts here (entries are asked for in queue order).
        window = [:]
        while next < queue.count, queue[next].message != message || queue[next].item != item { next += 1 }
        var group: [Entry] = []
        var total = 0
        while next < queue.count, group.isEmpty || total + queue[next].slice.range.count <= budget {
            group.append(queue[next])
            total += queue[next].slice.range.count
            next += 1
        }
        let contents = try await session.store.contentBytes(
            account: account, slices: group.map(\.slice), logger: session.logger)
        for (entry, bytes) in zip(group, contents) { window[entry.message, default: [:]][entry.item] = bytes }
        return window[message]?.removeValue(forKey: item) ?? []
    }
}

/// The `<origin.length>` part of a stream: how much of what comes next to skip, and how much to send.
struct PartialWindow {
    private var skip: Int
    private(set) var remaining: Int
    let count: Int

    init(_ range: Range<Int>) {
        skip = range.lowerBound
        remaining = range.count
        count = range.count
    }

    mutating func take(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        var slice = bytes[...]
        let skipped = min(skip, slice.count)
        slice = slice.dropFirst(skipped)
        skip -= skipped
        let taken = slice.prefix(remaining)
        remaining -= taken.count
        return taken
    }
}
