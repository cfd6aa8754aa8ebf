/// One FETCH item's data before it is written.
enum FetchValue {
    /// Work done on stored bytes before they are sent.
    enum Transform {
        /// BINARY: undo the Content-Transfer-Encoding, then apply the partial. `decodedSize` (computed at ingest)
        /// lets a large part be decoded while it streams.
        case decode(encoding: String, partial: Partial?, decodedSize: Int?)
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
    /// `responseName` of each item, made once per FETCH rather than once per message.
    let responseNames: [String]
    /// The HEADER.FIELDS (and .NOT) names of the items, prepared once per FETCH.
    private let headerNames: [[String]: HeaderFilter.Names]

    init(items: [FetchAttribute]) {
        self.items = items
        var columns: FetchColumns = []
        var needsContent = false
        // Whether every top-level header item is HEADER.FIELDS that a header summary covers.
        var summarySuffices = true
        for item in items {
            switch item {
            case .envelope: columns.insert(.envelope)
            case .body: columns.insert(.body)
            case .bodyStructure: columns.insert(.bodyStructure)
            case .bodySection(let section, _, _, _):
                if !section.part.isEmpty {
                    columns.insert(.parts)
                    needsContent = true
                } else {
                    switch section.text {
                    // The top-level header comes with the message row (when not over `FetchColumns.headerLimit`):
                    // a client's header download (BODY.PEEK[HEADER], RFC822.HEADER) then reads one statement per
                    // large batch, not two per batch of `fetchBatchWithBodies`.
                    case .headerFields(let names):
                        columns.insert(.header)
                        if !HeaderFilter.coveredBySummary(names) { summarySuffices = false }
                    case .header, .headerFieldsNot:
                        columns.insert(.header)
                        summarySuffices = false
                    default: needsContent = true
                    }
                }
            case .binary(let part, _, _), .binarySize(let part):
                if !part.isEmpty { columns.insert(.parts) }
                if case .binary = item { needsContent = true }
            case .flags, .internalDate, .rfc822Size, .uid, .modSeq, .emailID, .threadID: break
            case .saveDate: columns.insert(.saveDate)
            case .preview: columns.insert(.preview)
            }
        }
        if needsContent { columns.insert(.layout) }
        if columns.contains(.header), summarySuffices { columns.insert(.headerSummary) }
        self.columns = columns
        self.needsContent = needsContent
        responseNames = items.map(Self.responseName)
        var headerNames: [[String]: HeaderFilter.Names] = [:]
        for case .bodySection(let section, _, _, _) in items {
            switch section.text {
            case .headerFields(let names), .headerFieldsNot(let names): headerNames[names] = HeaderFilter.Names(names)
            default: break
            }
        }
        self.headerNames = headerNames
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
            // Refused before anything of the message is written (ingest found no decoder for it).
            guard leaf.decodedSize != nil || Self.identityEncodings.contains(leaf.encoding) else {
                throw IMAPError.no(.unknownCTE, "Unknown Content-Transfer-Encoding")
            }
            let slice = ContentSlice(contentID: record.contentID, range: leaf.bodyStart..<leaf.bodyEnd)
            switch leaf.encoding {
            case _ where Self.identityEncodings.contains(leaf.encoding):
                let range = Self.clamp(slice.range, partial)
                return .slice(
                    ContentSlice(contentID: record.contentID, range: range),
                    transform: .decode(encoding: leaf.encoding, partial: nil, decodedSize: range.count))
            default:
                return .slice(
                    slice, transform: .decode(encoding: leaf.encoding, partial: partial, decodedSize: leaf.decodedSize))
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
                guard let header = record.header else {
                    // Too long to come with the message row: read as a section.
                    return .slice(
                        ContentSlice(contentID: id, range: Self.clamp(0..<record.headerLength, partial)),
                        transform: nil)
                }
                return .bytes(Self.apply(partial, to: header), binary: false)
            case .text:
                return .slice(
                    ContentSlice(contentID: id, range: Self.clamp(record.headerLength..<record.size, partial)),
                    transform: nil)
            case .headerFields(let names), .headerFieldsNot(let names):
                let not = section.text == .headerFieldsNot(names)
                guard let header = record.header else {
                    // A header too long to come with the message row: read and filtered as a section.
                    return .slice(
                        ContentSlice(contentID: id, range: 0..<record.headerLength),
                        transform: .filterHeader(names: names, not: not, partial: partial))
                }
                let prepared = headerNames[names] ?? HeaderFilter.Names(names)
                return .bytes(
                    Self.apply(partial, to: HeaderFilter.filter(header, names: prepared, not: not)), binary: false)
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
