/// Builds the MIME tree of a CRLF-normalised message in one pass (RFC 2045 §5, RFC 2046 §5.1.1 and §5.2.1).
///
/// Boundaries work as in Dovecot's message parser: a boundary line is a line that starts with `--` and one of the
/// boundaries of the enclosing multiparts (a prefix match, RFC 2046 §5.1.1), the innermost and then the longest
/// match winning; the CRLF before it belongs to it. A boundary of an outer multipart ends all inner parts, so a
/// missing close delimiter costs nothing. Each byte is looked at by one level only, so the pass is linear.
///
/// Limits, so that no input can blow the stack or the output up: at most `maxDepth` nested levels (deeper containers
/// become application/octet-stream leaves) and at most `maxParts` parts (after that no boundary is recognised any
/// more, so the current part runs to the end), Dovecot's defaults.
struct MIMETreeParser {
    static let maxDepth = 100
    static let maxParts = 10_000

    typealias MediaType = (type: String, subtype: String)

    /// A boundary line that ended a part.
    struct BoundaryLine {
        /// Offset of the leading `--`.
        var start: Int
        /// Offset after the line's CRLF (or the end of the data).
        var end: Int
        /// Index into `boundaries` of the multipart it belongs to.
        var level: Int
        /// `--boundary--`: the close delimiter.
        var isClose: Bool
    }

    private let bytes: [UInt8]
    private var boundaries: [[UInt8]] = []
    private var partCount = 0

    static func parse(_ bytes: [UInt8]) -> MessagePart {
        var parser = MIMETreeParser(bytes: bytes)
        return parser.parseEntity(start: 0, depth: 0, defaultType: ("text", "plain")).part
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses the entity (header, then body) at `start`, up to the next boundary line of an enclosing multipart or
    /// the end of the data, and returns it with the boundary line that ended it.
    ///
    /// This and `parseMultipartBody` are the recursion; they keep few locals (the work is done in helpers), so that
    /// `maxDepth` levels fit a small thread stack even in a debug build.
    private mutating func parseEntity(
        start: Int, depth: Int, defaultType: MediaType
    ) -> (part: MessagePart, stop: BoundaryLine?) {
        partCount += 1
        var (part, boundary, cut) = readHeader(start: start, defaultType: defaultType)
        if part.type == "multipart" || isMessageType(part) {
            if depth + 1 < Self.maxDepth, partCount < Self.maxParts {
                let stop =
                    part.type == "multipart"
                    ? parseMultipartBody(&part, boundary: boundary, depth: depth, cut: cut)
                    : parseEncapsulatedMessage(&part, depth: depth, cut: cut)
                return (part, stop)
            }
            // Too deep or too many parts: an opaque leaf. Dovecot shows such parts as application/octet-stream,
            // which keeps BODYSTRUCTURE well-formed (a multipart or message/rfc822 needs its children).
            part.type = "application"
            part.subtype = "octet-stream"
        }
        let stop = finishLeaf(&part, cut: cut)
        return (part, stop)
    }

    private func isMessageType(_ part: MessagePart) -> Bool {
        part.type == "message" && (part.subtype == "rfc822" || part.subtype == "global")
    }

    /// The entity's header: a part with its header range, media type and encoding (body still empty), the boundary
    /// parameter, and the boundary line that cut the entity short, if one did.
    private mutating func readHeader(
        start: Int, defaultType: MediaType
    ) -> (part: MessagePart, boundary: [UInt8]?, cut: BoundaryLine?) {
        var (bodyStart, cut, cutAfterEmptyLine) = headerEnd(from: start)
        let header = PartHeader(HeaderBlock(bytes: bytes, range: start..<bodyStart))
        var mediaType = defaultType
        if let contentType = header.contentType {
            mediaType = (
                MessageBytes.lowercasedString(contentType.token), MessageBytes.lowercasedString(contentType.subtype)
            )
        }
        let boundary = header.boundary
        if let line = cut, cutAfterEmptyLine, mediaType.type == "multipart", let boundary {
            // The empty line is followed by a boundary line of an enclosing multipart, unless that line is this
            // multipart's own first delimiter (its boundary can have the enclosing one as a prefix): Dovecot, too,
            // puts the part's own boundary in place before looking.
            boundaries.append(boundary)
            let ownLevel = boundaries.count - 1
            let isOwnDelimiter = boundaryLine(at: line.start)?.level == ownLevel
            boundaries.removeLast()
            if isOwnDelimiter {
                bodyStart = line.start
                cut = nil
            }
        }
        let part = MessagePart(
            headerStart: start, bodyStart: bodyStart, bodyEnd: bodyStart, type: mediaType.type,
            subtype: mediaType.subtype, encoding: header.transferEncoding.map(MessageBytes.lowercasedString) ?? "7bit")
        return (part, boundary, cut)
    }

    /// A leaf's body runs to the next boundary line (or the end); its decoded size is known from its encoding.
    private func finishLeaf(_ part: inout MessagePart, cut: BoundaryLine?) -> BoundaryLine? {
        var stop = cut
        if cut == nil {
            stop = nextBoundaryLine(from: part.bodyStart)
            part.bodyEnd = end(before: stop, notBefore: part.bodyStart)
        }
        part.decodedSize = TransferEncoding.decodedSize(bytes[part.bodyRange], encoding: part.encoding)
        return stop
    }

    /// Where the header starting at `start` ends: after its empty line, or at the end of the data. When a boundary line
    /// comes first (or right after the empty line, whose CRLF then belongs to the boundary), the part has no body and
    /// that line is returned too.
    private func headerEnd(from start: Int) -> (bodyStart: Int, cut: BoundaryLine?, cutAfterEmptyLine: Bool) {
        var position = start
        while position < bytes.count {
            if let line = boundaryLine(at: position) { return (end(before: line, notBefore: start), line, false) }
            if bytes[position] == MessageBytes.cr, position + 1 < bytes.count, bytes[position + 1] == MessageBytes.lf {
                if let line = boundaryLine(at: position + 2) { return (position, line, true) }
                return (position + 2, nil, false)
            }
            guard let lf = MessageBytes.firstIndex(of: MessageBytes.lf, in: bytes, range: position..<bytes.count) else {
                break
            }
            position = lf + 1
        }
        return (bytes.count, nil, false)
    }

    /// RFC 2046 §5.1.1: preamble, parts separated by delimiter lines, close delimiter, epilogue.
    private mutating func parseMultipartBody(
        _ part: inout MessagePart, boundary: [UInt8]?, depth: Int, cut: BoundaryLine?
    ) -> BoundaryLine? {
        if let cut {
            part.children = [emptyPart(at: part.bodyStart)]
            return cut
        }
        guard let boundary, var delimiter = firstDelimiter(of: boundary, from: part.bodyStart) else {
            return takeBodyAsOnePart(&part)
        }
        let level = boundaries.count - 1
        let childType: MediaType = part.subtype == "digest" ? ("message", "rfc822") : ("text", "plain")
        while !delimiter.isClose {
            let (child, stop) = parseEntity(start: delimiter.end, depth: depth + 1, defaultType: childType)
            part.children.append(child)
            guard let stop, stop.level >= level else {
                // The end of the data, or an enclosing boundary: this multipart ends without its close delimiter.
                boundaries.removeLast()
                part.bodyEnd = end(before: stop, notBefore: part.bodyStart)
                clampLastChild(of: &part)
                return stop
            }
            delimiter = stop
        }
        return finishMultipart(&part, closeDelimiter: delimiter)
    }

    /// `--inner` CRLF `--outer`: the last part is empty and starts after the CRLF that also precedes `--outer`, which
    /// the multipart does not own; move that empty part back inside its parent.
    private func clampLastChild(of part: inout MessagePart) {
        guard let last = part.children.indices.last, part.children[last].bodyEnd > part.bodyEnd else { return }
        Self.moveEmpty(&part.children[last], to: part.bodyEnd)
    }

    /// Places an empty part (and the empty parts inside it) at `offset`.
    private static func moveEmpty(_ part: inout MessagePart, to offset: Int) {
        part.headerStart = offset
        part.bodyStart = offset
        part.bodyEnd = offset
        for index in part.children.indices { moveEmpty(&part.children[index], to: offset) }
    }

    /// Puts `boundary` in place and finds its first delimiter line; nil (and the boundary removed again) when a line
    /// of an enclosing boundary or the end of the data comes first.
    private mutating func firstDelimiter(of boundary: [UInt8], from start: Int) -> BoundaryLine? {
        boundaries.append(boundary)
        if let line = nextBoundaryLine(from: start), line.level == boundaries.count - 1 { return line }
        boundaries.removeLast()
        return nil
    }

    /// The boundary never shows up (or there is none): the rest of the body is one part, with no header of its own,
    /// so that its text stays reachable (BODY[1], SEARCH).
    private mutating func takeBodyAsOnePart(_ part: inout MessagePart) -> BoundaryLine? {
        let stop = nextBoundaryLine(from: part.bodyStart)
        part.bodyEnd = end(before: stop, notBefore: part.bodyStart)
        partCount += 1
        part.children = [
            MessagePart(
                headerStart: part.bodyStart, bodyStart: part.bodyStart, bodyEnd: part.bodyEnd,
                decodedSize: part.bodyEnd - part.bodyStart)
        ]
        return stop
    }

    /// After the close delimiter: the epilogue runs to the next boundary line of an enclosing multipart (or the end).
    private mutating func finishMultipart(_ part: inout MessagePart, closeDelimiter: BoundaryLine) -> BoundaryLine? {
        boundaries.removeLast()
        if part.children.isEmpty {
            part.children.append(emptyPart(at: end(before: closeDelimiter, notBefore: part.bodyStart)))
        }
        let stop = nextBoundaryLine(from: closeDelimiter.end)
        part.bodyEnd = end(before: stop, notBefore: part.bodyStart)
        return stop
    }

    /// RFC 2046 §5.2.1: the body of a message/rfc822 part is a message. Its transfer encoding is not looked at
    /// (only 7bit, 8bit and binary are allowed there), as in Dovecot.
    private mutating func parseEncapsulatedMessage(
        _ part: inout MessagePart, depth: Int, cut: BoundaryLine?
    ) -> BoundaryLine? {
        if let cut {
            part.children = [emptyPart(at: part.bodyStart)]
            return cut
        }
        let (message, stop) = parseEntity(start: part.bodyStart, depth: depth + 1, defaultType: ("text", "plain"))
        part.bodyEnd = message.bodyEnd
        part.children = [message]
        return stop
    }

    private mutating func emptyPart(at offset: Int) -> MessagePart {
        partCount += 1
        return MessagePart(headerStart: offset, bodyStart: offset, bodyEnd: offset, decodedSize: 0)
    }

    /// Where a part that runs up to `line` ends: before the CRLF that precedes the line, or at the end of the data.
    private func end(before line: BoundaryLine?, notBefore floor: Int) -> Int {
        guard let line else { return bytes.count }
        return max(floor, line.start - 2)
    }

    /// The first boundary line at or after `start`, which is at the beginning of a line.
    private func nextBoundaryLine(from start: Int) -> BoundaryLine? {
        guard !boundaries.isEmpty, partCount < Self.maxParts else { return nil }
        var position = start
        while position < bytes.count {
            if let line = boundaryLine(at: position) { return line }
            guard let lf = MessageBytes.firstIndex(of: MessageBytes.lf, in: bytes, range: position..<bytes.count) else {
                return nil
            }
            position = lf + 1
        }
        return nil
    }

    /// The boundary line at `position` (the start of a line), if it is one.
    private func boundaryLine(at position: Int) -> BoundaryLine? {
        guard !boundaries.isEmpty, partCount < Self.maxParts, position + 1 < bytes.count,
            bytes[position] == UInt8(ascii: "-"), bytes[position + 1] == UInt8(ascii: "-")
        else { return nil }
        let lf = MessageBytes.firstIndex(of: MessageBytes.lf, in: bytes, range: position..<bytes.count)
        let lineEnd = lf.map { $0 > position && bytes[$0 - 1] == MessageBytes.cr ? $0 - 1 : $0 } ?? bytes.count
        let textStart = position + 2
        let textLength = lineEnd - textStart
        var best: Int?
        for level in boundaries.indices.reversed() {
            let boundary = boundaries[level]
            guard boundary.count <= textLength, MessageBytes.hasPrefix(bytes, at: textStart, boundary) else { continue }
            if let best, boundaries[best].count >= boundary.count { continue }
            best = level
            // The whole line is this boundary (or its close delimiter): nothing can match better.
            if boundary.count == textLength || (boundary.count + 2 == textLength && dashes(at: lineEnd - 2)) { break }
        }
        guard let best else { return nil }
        let afterBoundary = textStart + boundaries[best].count
        return BoundaryLine(
            start: position, end: lf.map { $0 + 1 } ?? bytes.count, level: best,
            isClose: afterBoundary + 2 <= lineEnd && dashes(at: afterBoundary))
    }

    private func dashes(at offset: Int) -> Bool {
        offset >= 0 && offset + 1 < bytes.count && bytes[offset] == UInt8(ascii: "-")
            && bytes[offset + 1] == UInt8(ascii: "-")
    }
}
