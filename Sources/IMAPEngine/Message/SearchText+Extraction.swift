/// How the search text is taken out of a parsed message.
extension SearchText {
    init(bytes: [UInt8], root: MessagePart, header: HeaderBlock, envelope: MessageEnvelope) {
        self.init(
            from: Self.addressText(envelope.from), to: Self.addressText(envelope.to),
            cc: Self.addressText(envelope.cc), bcc: Self.addressText(envelope.bcc),
            subject: Self.searchable(envelope.subject.map(HeaderText.decode) ?? ""),
            headers: Self.headerText(header))
        var collector = BodyTextCollector(bytes: bytes)
        collector.collect(root, depth: 0)
        body = collector.text
    }

    /// Lowercased, with line breaks turned into spaces and NULs left out.
    static func searchable(_ text: String) -> String {
        clean(text.lowercased(), keepLineBreaks: false)
    }

    /// Without NULs and CRs; LFs kept with `keepLineBreaks`, else every line break becomes a space. Works on the
    /// UTF-8 bytes (all three are ASCII), which stays fast on megabytes of text.
    static func clean(_ text: String, keepLineBreaks: Bool) -> String {
        let bytes = Array(text.utf8)
        let whole = bytes.indices
        guard
            MessageBytes.firstIndex(of: 0, in: bytes, range: whole) != nil
                || MessageBytes.firstIndex(of: MessageBytes.cr, in: bytes, range: whole) != nil
                || (!keepLineBreaks && MessageBytes.firstIndex(of: MessageBytes.lf, in: bytes, range: whole) != nil)
        else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for byte in bytes where byte != 0 {
            if byte == MessageBytes.cr || byte == MessageBytes.lf {
                if !keepLineBreaks {
                    out.append(MessageBytes.space)
                } else if byte == MessageBytes.lf {
                    out.append(byte)
                }
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func addressText(_ items: [AddressItem]) -> String {
        var lines: [String] = []
        for item in items {
            switch item {
            case .mailbox(let name, _, let local, let domain):
                let name = name.map(HeaderText.decode) ?? ""
                let local = local.map(Charset.decodeFallback) ?? ""
                let domain = domain.map(Charset.decodeFallback) ?? ""
                let address = domain.isEmpty ? local : local + "@" + domain
                if name.isEmpty {
                    lines.append(address)
                } else if address.isEmpty {
                    lines.append(name)
                } else {
                    lines.append(name + " <" + address + ">")
                }
            case .groupStart(let name):
                lines.append(HeaderText.decode(name) + ":")
            case .groupEnd:
                break
            }
        }
        return lines.map(searchable).joined(separator: "\n")
    }

    private static func headerText(_ header: HeaderBlock) -> String {
        var text = ""
        for field in header.fields where field.hasColon {
            text += "\n" + searchable(String(decoding: header.bytes[field.name], as: UTF8.self)) + ": "
            text += searchable(decodedValue(header, field))
        }
        return text + "\n"
    }

    /// A header value as a reader sees it. Content-Type and Content-Disposition are rewritten with their parameters
    /// decoded (RFC 2231), so that `filename*=utf-8''%E2%82%AC.pdf` is found as "€.pdf".
    static func decodedValue(_ header: HeaderBlock, _ field: HeaderBlock.Field) -> String {
        let raw = header.unfoldedValue(field)
        let structured: MIMEFieldValue?
        if header.isNamed(field, "content-type") {
            structured = MIMEFieldValue.contentType(raw)
        } else if header.isNamed(field, "content-disposition") {
            structured = MIMEFieldValue.disposition(raw)
        } else {
            structured = nil
        }
        guard let structured else { return HeaderText.decode(raw) }
        var text = Charset.decodeFallback(structured.token)
        if !structured.subtype.isEmpty { text += "/" + Charset.decodeFallback(structured.subtype) }
        for parameter in MIMEParameter.decodedValues(structured.parameters) {
            text += "; " + parameter.name + "=" + parameter.value
        }
        return text
    }
}

/// Gathers the body text of a message for SEARCH BODY/TEXT, up to `SearchText.maxBodyBytes`.
private struct BodyTextCollector {
    let bytes: [UInt8]
    private(set) var text = ""
    private var remaining = SearchText.maxBodyBytes

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func collect(_ part: MessagePart, depth: Int) {
        guard remaining > 0, depth <= MIMETreeParser.maxDepth else { return }
        if part.isMultipart {
            for child in part.children { collect(child, depth: depth + 1) }
        } else if part.isEncapsulatedMessage, let message = part.children.first {
            let header = HeaderBlock(bytes: bytes, range: message.headerRange)
            for field in header.fields where field.hasColon {
                add(SearchText.searchable(SearchText.decodedValue(header, field)))
            }
            collect(message, depth: depth + 1)
        } else if part.type == "text", part.children.isEmpty {
            let raw = bytes[part.bodyRange]
            var decoded = TransferEncoding.decode(raw, encoding: part.encoding) ?? Array(raw)
            // No charset turns fewer than 4 bytes into one byte of UTF-8, so the cap can be applied early.
            if decoded.count > remaining * 4 { decoded.removeSubrange((remaining * 4)...) }
            let header = PartHeader(HeaderBlock(bytes: bytes, range: part.headerRange))
            let charset = MIMEParameter.decodedValues(header.contentType?.parameters ?? [])
                .first { $0.name == "charset" }?.value
            var text = Charset.decodeText(decoded, charset: charset)
            if part.subtype == "html" { text = HTMLText.plainText(text) }
            add(SearchText.clean(text.lowercased(), keepLineBreaks: true).trimmingLinearWhitespace())
        }
    }

    private mutating func add(_ piece: String) {
        guard remaining > 0, !piece.isEmpty else { return }
        let separator = text.isEmpty ? "" : "\n"
        let budget = remaining - separator.utf8.count
        guard budget > 0 else {
            remaining = 0
            return
        }
        var piece = piece
        if piece.utf8.count > budget {
            let utf8 = Array(piece.utf8)
            var cut = budget
            while cut > 0, utf8[cut] & 0xC0 == 0x80 { cut -= 1 }
            piece = String(decoding: utf8[..<cut], as: UTF8.self)
        }
        text += separator + piece
        remaining -= separator.utf8.count + piece.utf8.count
    }
}

extension String {
    fileprivate func trimmingLinearWhitespace() -> String {
        let scalars = unicodeScalars
        let isSpace: (Unicode.Scalar) -> Bool = { $0.properties.isWhitespace }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
            let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}
