/// The PREVIEW text of a message (RFC 8970), computed once at ingest: the start of the first text/plain body part
/// that is not an attachment (or, without one, the first text/html one, as plain text), decoded, with every run of
/// whitespace made one space, at most `maxScalars` Unicode scalars (the RFC allows 256 characters). Nil when the message
/// has no such text.
public enum Preview {
    public static let maxScalars = 200
    /// How much of a part's encoded body is read: enough for any preview, however the text is encoded or marked up.
    static let maxRawBytes = 64 * 1024

    public static func text(bytes: [UInt8], root: MessagePart) -> String? {
        var plain: MessagePart?
        var html: MessagePart?
        find(root, bytes: bytes, depth: 0, plain: &plain, html: &html)
        guard let part = plain ?? html else { return nil }
        var raw = bytes[part.bodyRange]
        if raw.count > maxRawBytes {
            // Cut at a line end, so that base64 and quoted-printable decode whole lines.
            let end = raw.startIndex + maxRawBytes
            let lineEnd = raw[..<end].lastIndex(of: 0x0A).map { $0 + 1 } ?? end
            raw = raw[..<lineEnd]
        }
        let decoded = TransferEncoding.decode(raw, encoding: part.encoding) ?? Array(raw)
        let header = PartHeader(HeaderBlock(bytes: bytes, range: part.headerRange))
        let charset = MIMEParameter.decodedValues(header.contentType?.parameters ?? [])
            .first { $0.name == "charset" }?.value
        var text = Charset.decodeText(decoded, charset: charset)
        if part.subtype == "html" { text = HTMLText.plainText(text) }
        let collapsed = collapse(text)
        return collapsed.isEmpty ? nil : collapsed
    }

    /// Whitespace runs (line breaks included) as one space, control characters left out, trimmed, cut after
    /// `maxScalars` scalars at a character boundary.
    static func collapse(_ text: String) -> String {
        var out = ""
        var scalars = 0
        var pendingSpace = false
        // ASCII first, byte by byte: an ASCII character is one scalar and one character, so the answer is the
        // same as the character loop's below, at a fraction of its cost (grapheme breaking and Unicode property
        // lookups were a tenth of an APPEND's CPU). The last ASCII byte before the first other one is left to the
        // character loop, as a combining mark after it joins it into one character.
        var rest = text.startIndex
        var full = false
        text.utf8.withContiguousStorageIfAvailable { bytes in
            let end = bytes.firstIndex { $0 >= 0x80 }.map { $0 - 1 } ?? bytes.count
            var ascii: [UInt8] = []
            var index = 0
            while index < end {
                let byte = bytes[index]
                index += 1
                if byte == 0x20 || (0x09...0x0D).contains(byte) {
                    pendingSpace = !ascii.isEmpty
                    continue
                }
                if byte < 0x20 || byte == 0x7F { continue }
                let cost = pendingSpace ? 2 : 1
                if scalars + cost > maxScalars {
                    full = true
                    break
                }
                if pendingSpace { ascii.append(0x20) }
                ascii.append(byte)
                scalars += cost
                pendingSpace = false
            }
            out = String(decoding: ascii, as: UTF8.self)
            rest = text.utf8.index(text.utf8.startIndex, offsetBy: max(0, min(index, end)))
        }
        if full { return out }
        for character in text[rest...] {
            if character.isWhitespace {
                pendingSpace = !out.isEmpty
                continue
            }
            if character.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { continue }
            let cost = character.unicodeScalars.count + (pendingSpace ? 1 : 0)
            if scalars + cost > maxScalars { break }
            if pendingSpace { out.append(" ") }
            out.append(character)
            scalars += cost
            pendingSpace = false
        }
        return out
    }

    private static func find(
        _ part: MessagePart, bytes: [UInt8], depth: Int, plain: inout MessagePart?, html: inout MessagePart?
    ) {
        guard plain == nil, depth <= MIMETreeParser.maxDepth else { return }
        if part.isMultipart {
            for child in part.children {
                find(child, bytes: bytes, depth: depth + 1, plain: &plain, html: &html)
                if plain != nil { return }
            }
            return
        }
        // An attached message is not the message's own text.
        guard part.type == "text", part.children.isEmpty else { return }
        let header = PartHeader(HeaderBlock(bytes: bytes, range: part.headerRange))
        if let disposition = header.disposition, MessageBytes.equalsIgnoringCase(disposition.token, "attachment") {
            return
        }
        if part.subtype == "plain" {
            plain = part
        } else if part.subtype == "html", html == nil {
            html = part
        }
    }
}
