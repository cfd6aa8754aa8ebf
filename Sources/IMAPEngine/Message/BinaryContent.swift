/// Binary MIME parts arriving through `literal8` (RFC 3516 APPEND) are stored base64-encoded.
///
/// IMAP literals cannot carry NUL (RFC 9051 `CHAR8`), so raw binary content could never be served by BODY[]; and
/// the bare-LF repair at ingest would corrupt it. As Dovecot does, every leaf part whose Content-Transfer-Encoding
/// is `binary`, or whose body holds NUL, is rewritten to `base64` before the message is parsed; BINARY[] decodes it
/// back to the original bytes.
enum BinaryContent {
    /// `raw` with its binary leaves base64-encoded, or `raw` unchanged when it has none.
    static func encodingBinaryParts(_ raw: [UInt8]) -> [UInt8] {
        let root = MIMETreeParser.parse(raw)
        var leaves: [MessagePart] = []
        collectBinaryLeaves(root, in: raw, into: &leaves)
        guard !leaves.isEmpty else { return raw }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count + raw.count / 3 + 64)
        var copied = 0
        for leaf in leaves.sorted(by: { $0.headerStart < $1.headerStart }) where leaf.headerStart >= copied {
            out.append(contentsOf: raw[copied..<leaf.headerStart])
            out.append(contentsOf: rewrittenHeader(raw[leaf.headerStart..<leaf.bodyStart]))
            appendBase64Lines(raw[leaf.bodyStart..<leaf.bodyEnd], to: &out)
            copied = leaf.bodyEnd
        }
        out.append(contentsOf: raw[copied...])
        return out
    }

    private static func collectBinaryLeaves(_ part: MessagePart, in raw: [UInt8], into leaves: inout [MessagePart]) {
        if !part.children.isEmpty {
            for child in part.children { collectBinaryLeaves(child, in: raw, into: &leaves) }
            return
        }
        let isBinary =
            part.encoding == "binary"
            || (["7bit", "8bit"].contains(part.encoding) && raw[part.bodyStart..<part.bodyEnd].contains(0))
        if isBinary { leaves.append(part) }
    }

    /// The part header without its Content-Transfer-Encoding fields, with `Content-Transfer-Encoding: base64`
    /// added before the empty line that ends it.
    private static func rewrittenHeader(_ header: ArraySlice<UInt8>) -> [UInt8] {
        var fields: [ArraySlice<UInt8>] = []
        var start = header.startIndex
        var index = header.startIndex
        while index < header.endIndex {
            if header[index] == 0x0A {
                let next = index + 1
                let continues = next < header.endIndex && (header[next] == 0x20 || header[next] == 0x09)
                if !continues {
                    fields.append(header[start..<next])
                    start = next
                }
            }
            index += 1
        }
        if start < header.endIndex { fields.append(header[start..<header.endIndex]) }
        var out: [UInt8] = []
        var sawEnd = false
        let name = Array("content-transfer-encoding".utf8)
        for field in fields {
            let isEmptyLine = field.allSatisfy { $0 == 0x0D || $0 == 0x0A }
            if isEmptyLine {
                out.append(contentsOf: "Content-Transfer-Encoding: base64\r\n".utf8)
                out.append(contentsOf: field)
                sawEnd = true
                continue
            }
            let fieldName = field.prefix { $0 != UInt8(ascii: ":") }.filter { $0 != 0x20 && $0 != 0x09 }
            if fieldName.map(asciiLower).elementsEqual(name) { continue }
            out.append(contentsOf: field)
        }
        if !sawEnd {
            if let last = out.last, last != 0x0A { out.append(contentsOf: [0x0D, 0x0A]) }
            out.append(contentsOf: "Content-Transfer-Encoding: base64\r\n\r\n".utf8)
        }
        return out
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// RFC 2045 §6.8: base64 in lines of 76 characters, each ending in CRLF.
    private static func appendBase64Lines(_ bytes: ArraySlice<UInt8>, to out: inout [UInt8]) {
        var column = 0
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let a = bytes[index]
            let b = index + 1 < bytes.endIndex ? bytes[index + 1] : nil
            let c = index + 2 < bytes.endIndex ? bytes[index + 2] : nil
            let n = (UInt32(a) << 16) | (UInt32(b ?? 0) << 8) | UInt32(c ?? 0)
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            out.append(b == nil ? UInt8(ascii: "=") : alphabet[Int((n >> 6) & 63)])
            out.append(c == nil ? UInt8(ascii: "=") : alphabet[Int(n & 63)])
            index += 3
            column += 4
            if column >= 76 {
                out.append(contentsOf: [0x0D, 0x0A])
                column = 0
            }
        }
        if column > 0 { out.append(contentsOf: [0x0D, 0x0A]) }
    }
}
