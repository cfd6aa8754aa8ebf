import Logging

/// FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY).
///
/// Streams: UIDs are read from the store in batches, each batch's responses are written (with backpressure) while
/// the next batch is read, and large literals are read and written in chunks. Memory stays flat however large the
/// mailbox or the message (DESIGN.md §2).
extension Session {
    /// Messages per metadata query: small when bodies are read, larger for flags-only syncs.
    static let fetchBatchWithBodies = 100
    static let fetchBatchMetadata = 2000
    /// Literals larger than this are read from the store and written in chunks of this size.
    static let streamChunk = 1 << 20

    func handleFetch(_ selector: MessageSelector, items requested: [FetchAttribute]) async throws -> Completion {
        let account = try requireAccount
        let current = try requireView
        let uids = try current.resolve(selector, saved: savedSearch)
        var items = requested
        if case .uid = selector, !items.contains(.uid) { items.insert(.uid, at: 0) }
        guard !uids.isEmpty else { return Completion("FETCH completed") }

        // RFC 9051 §6.4.5: BODY[…] and BINARY[…] without .PEEK set \Seen; the new flags are reported in the response.
        var seenSet: [UID: MessageFlags] = [:]
        if !current.readOnly, items.contains(where: \.setsSeen) {
            let results = try await store.updateFlags(
                account: account, mailbox: current.mailbox, uids: uids,
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .seen)), logger: logger)
            for result in results where result.changed { seenSet[result.uid] = result.flags }
            for (uid, flags) in seenSet { reportedFlags[uid] = flags }
            // Pull at the sync point so these own changes are recognised and not announced again.
            if !seenSet.isEmpty { viewIsStale = true }
        }

        let plan = FetchPlan(items: items)
        let batchSize = plan.needsContent ? Self.fetchBatchWithBodies : Self.fetchBatchMetadata
        // The next batch is read while this one is written, so the store and the client side overlap; at most two
        // batches are in memory.
        let (store, logger, mailbox, columns) = (self.store, self.logger, current.mailbox, plan.columns)
        func read(_ batch: ArraySlice<UID>) -> Task<[MessageRecord], any Error> {
            let batch = Array(batch)
            return Task {
                try await store.fetch(account: account, mailbox: mailbox, uids: batch, columns: columns, logger: logger)
            }
        }
        var missing = false
        var start = 0
        var next: Task<[MessageRecord], any Error>? = read(uids[0..<min(batchSize, uids.count)])
        defer { next?.cancel() }
        while let reading = next {
            let count = min(batchSize, uids.count - start)
            start += count
            next = start < uids.count ? read(uids[start..<min(start + batchSize, uids.count)]) : nil
            let records = try await reading.value
            if records.count < count { missing = true }
            try await writeFetchResponses(records, plan: plan, seenSet: seenSet, account: account)
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
        // Resolve every section to bytes or a slice, then read the small slices in one store call per ~4 MiB.
        var rendered: [[FetchValue]] = []
        var slices: [ContentSlice] = []
        var sliceOwners: [(message: Int, item: Int)] = []
        for (m, record) in records.enumerated() {
            let values = try plan.values(for: record)
            for (i, value) in values.enumerated() {
                if case .slice(let slice, _) = value, slice.range.count <= Self.streamChunk {
                    slices.append(slice)
                    sliceOwners.append((m, i))
                }
            }
            rendered.append(values)
        }
        var fetched: [Int: [Int: [UInt8]]] = [:]
        var group: [ContentSlice] = []
        var groupOwners: [(message: Int, item: Int)] = []
        var groupBytes = 0
        func readGroup() async throws {
            guard !group.isEmpty else { return }
            let bytes = try await store.contentBytes(account: account, slices: group, logger: logger)
            for (owner, data) in zip(groupOwners, bytes) { fetched[owner.message, default: [:]][owner.item] = data }
            group = []
            groupOwners = []
            groupBytes = 0
        }
        for (slice, owner) in zip(slices, sliceOwners) {
            group.append(slice)
            groupOwners.append(owner)
            groupBytes += slice.range.count
            if groupBytes >= 4 << 20 { try await readGroup() }
        }
        try await readGroup()

        if plan.items.contains(.flags) || !seenSet.isEmpty {
            let announcements = self.view?.announceKeywords(of: records.map(\.flags)) ?? []
            if !announcements.isEmpty {
                var w = responseWriter()
                for response in announcements { w.untagged(response) }
                try await out.send(w)
            }
        }
        for (m, record) in records.enumerated() {
            guard let seq = view.sequenceNumber(of: record.uid) else { continue }
            var w = responseWriter()
            w.raw("* \(seq) FETCH (")
            var first = true
            for (i, item) in plan.items.enumerated() {
                if !first { w.raw(" ") }
                first = false
                try await writeFetchItem(
                    item, value: rendered[m][i], fetched: fetched[m]?[i], record: record, view: view, into: &w,
                    account: account)
            }
            if let flags = seenSet[record.uid], !plan.items.contains(.flags) {
                w.raw(first ? "FLAGS " : " FLAGS ")
                w.flags(flags, recent: view.recent.contains(record.uid))
            }
            w.line(")")
            try await out.send(w)
        }
    }

    private func writeFetchItem(
        _ item: FetchAttribute, value: FetchValue, fetched: [UInt8]?, record: MessageRecord, view: MailboxView,
        into w: inout ResponseWriter, account: AccountID
    ) async throws {
        switch item {
        case .uid: w.raw("UID \(record.uid)")
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
            w.raw(FetchPlan.responseName(item))
            w.raw(" ")
            switch value {
            case .missing:
                w.raw("NIL")
            case .bytes(let bytes, let binary):
                writeLiteral(bytes, binary: binary, into: &w)
            case .slice(let slice, let transform):
                if let fetched {
                    writeLiteral(try transformed(fetched, transform), binary: transform?.isBinary ?? false, into: &w)
                } else if let transform {
                    // A large part that needs decoding or filtering: read it whole (bounded by the APPEND limit).
                    let raw = try await store.contentBytes(account: account, slices: [slice], logger: logger)
                    writeLiteral(try transformed(raw.first ?? [], transform), binary: transform.isBinary, into: &w)
                } else {
                    // Stream a large literal: header now, then chunks straight from the store.
                    w.raw("{\(slice.range.count)}\r\n")
                    try await out.send(w)
                    w.removeAll()
                    var offset = slice.range.lowerBound
                    while offset < slice.range.upperBound {
                        let end = min(offset + Self.streamChunk, slice.range.upperBound)
                        let chunk = try await store.contentBytes(
                            account: account, slices: [ContentSlice(contentID: slice.contentID, range: offset..<end)],
                            logger: logger)
                        try await out.send((chunk.first ?? []).map { $0 == 0 ? 0x80 : $0 })
                        offset = end
                    }
                }
            case .size:
                w.raw("NIL")
            }
        }
    }

    private func transformed(_ bytes: [UInt8], _ transform: FetchValue.Transform?) throws -> [UInt8] {
        switch transform {
        case nil:
            return bytes
        case .decode(let encoding, let partial):
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

/// One FETCH item's data before it is written.
enum FetchValue {
    /// Work done on stored bytes before they are sent.
    enum Transform {
        /// BINARY: undo the Content-Transfer-Encoding, then apply the partial.
        case decode(encoding: String, partial: Partial?)
        /// HEADER.FIELDS of a part: keep the named lines, then apply the partial.
        case filterHeader(names: [String], not: Bool, partial: Partial?)

        var isBinary: Bool {
            if case .decode = self { return true }
            return false
        }
    }
    /// Not a section, or no such section: NIL.
    case missing
    case bytes([UInt8], binary: Bool)
    /// Content to read from the store, transformed before it is sent.
    case slice(ContentSlice, transform: Transform?)
    case size(Int)
}

/// What a FETCH's items need from the store and how each section maps onto stored bytes.
struct FetchPlan {
    let items: [FetchAttribute]
    let columns: FetchColumns
    let needsContent: Bool

    init(items: [FetchAttribute]) {
        self.items = items
        var columns: FetchColumns = []
        var needsContent = false
        for item in items {
            switch item {
            case .envelope: columns.insert(.envelope)
            case .body: columns.insert(.body)
            case .bodyStructure: columns.insert(.bodyStructure)
            case .bodySection(let section, _, _, _):
                if !section.part.isEmpty {
                    columns.insert(.parts)
                    needsContent = true
                } else if case .headerFields = section.text {
                    columns.insert(.header)
                } else if case .headerFieldsNot = section.text {
                    columns.insert(.header)
                } else {
                    needsContent = true
                }
            case .binary(let part, _, _), .binarySize(let part):
                if !part.isEmpty { columns.insert(.parts) }
                if case .binary = item { needsContent = true }
            case .flags, .internalDate, .rfc822Size, .uid: break
            }
        }
        if needsContent { columns.insert(.layout) }
        self.columns = columns
        self.needsContent = needsContent
    }

    /// The item name in the response: `BODY[1.MIME]<0>`, `RFC822.HEADER`, `BINARY[2]`.
    static func responseName(_ item: FetchAttribute) -> String {
        switch item {
        case .bodySection(let section, let partial, _, let legacy):
            switch legacy {
            case .rfc822: return "RFC822"
            case .rfc822Header: return "RFC822.HEADER"
            case .rfc822Text: return "RFC822.TEXT"
            case nil:
                return "BODY[\(section.wire)]" + (partial.map { "<\($0.origin)>" } ?? "")
            }
        case .binary(let part, let partial, _):
            return "BINARY[" + part.map(String.init).joined(separator: ".") + "]"
                + (partial.map { "<\($0.origin)>" } ?? "")
        default:
            return ""
        }
    }

    func values(for record: MessageRecord) throws -> [FetchValue] {
        try items.map { item in try value(of: item, record: record) }
    }

    private func value(of item: FetchAttribute, record: MessageRecord) throws -> FetchValue {
        switch item {
        case .bodySection(let section, let partial, _, _):
            return sectionValue(section, partial: partial, record: record)
        case .binary(let part, let partial, _):
            if part.isEmpty {
                return .slice(
                    ContentSlice(contentID: record.contentID, range: Self.clamp(0..<record.size, partial)),
                    transform: nil)
            }
            guard let leaf = record.parts?.binaryPart(part) else { return .missing }
            let slice = ContentSlice(contentID: record.contentID, range: leaf.bodyStart..<leaf.bodyEnd)
            switch leaf.encoding {
            case _ where Self.identityEncodings.contains(leaf.encoding):
                return .slice(
                    ContentSlice(contentID: record.contentID, range: Self.clamp(slice.range, partial)),
                    transform: .decode(encoding: leaf.encoding, partial: nil))
            default:
                return .slice(slice, transform: .decode(encoding: leaf.encoding, partial: partial))
            }
        case .binarySize(let part):
            if part.isEmpty { return .size(record.size) }
            // RFC 9051 §9: BINARY.SIZE is always a number, so a part that does not exist is an error, not NIL.
            guard let leaf = record.parts?.binaryPart(part) else {
                throw IMAPError.no(.nonexistent, "No such body part for BINARY.SIZE")
            }
            if let size = leaf.decodedSize { return .size(size) }
            guard Self.identityEncodings.contains(leaf.encoding) else {
                throw IMAPError.no(.unknownCTE, "Unknown Content-Transfer-Encoding")
            }
            return .size(leaf.bodyEnd - leaf.bodyStart)
        default:
            return .missing
        }
    }

    private func sectionValue(_ section: Section, partial: Partial?, record: MessageRecord) -> FetchValue {
        let id = record.contentID
        if section.part.isEmpty {
            switch section.text {
            case nil:
                return .slice(ContentSlice(contentID: id, range: Self.clamp(0..<record.size, partial)), transform: nil)
            case .header:
                return .slice(
                    ContentSlice(contentID: id, range: Self.clamp(0..<record.headerLength, partial)), transform: nil)
            case .text:
                return .slice(
                    ContentSlice(contentID: id, range: Self.clamp(record.headerLength..<record.size, partial)),
                    transform: nil)
            case .headerFields(let names):
                return .bytes(
                    Self.apply(partial, to: HeaderFilter.filter(record.header, names: names, not: false)), binary: false
                )
            case .headerFieldsNot(let names):
                return .bytes(
                    Self.apply(partial, to: HeaderFilter.filter(record.header, names: names, not: true)), binary: false)
            case .mime:
                return .missing
            }
        }
        guard let parts = record.parts, let range = parts.range(part: section.part, text: section.text) else {
            return .missing
        }
        switch section.text {
        case .headerFields(let names):
            // The part's header is small: it is read whole and filtered when written.
            return .slice(
                ContentSlice(contentID: id, range: range),
                transform: .filterHeader(names: names, not: false, partial: partial))
        case .headerFieldsNot(let names):
            return .slice(
                ContentSlice(contentID: id, range: range),
                transform: .filterHeader(names: names, not: true, partial: partial))
        default:
            return .slice(ContentSlice(contentID: id, range: Self.clamp(range, partial)), transform: nil)
        }
    }

    /// Transfer encodings whose decoded form is the stored form.
    static let identityEncodings: Set<String> = ["7bit", "8bit", "binary"]

    /// `<origin.length>` applied to a range: an origin past the end gives an empty range (RFC 9051 §6.4.5).
    static func clamp(_ range: Range<Int>, _ partial: Partial?) -> Range<Int> {
        guard let partial else { return range }
        let start = min(range.upperBound, range.lowerBound + partial.origin)
        let end = min(range.upperBound, start + partial.length)
        return start..<end
    }

    static func apply(_ partial: Partial?, to bytes: [UInt8]) -> [UInt8] {
        guard let partial else { return bytes }
        let range = clamp(0..<bytes.count, partial)
        return Array(bytes[range])
    }
}
