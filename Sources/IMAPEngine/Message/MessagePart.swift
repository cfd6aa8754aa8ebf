/// One node of a message's MIME tree (RFC 2045, RFC 2046), with byte offsets into `ParsedMessage.bytes`.
///
/// Invariants: `headerStart <= bodyStart <= bodyEnd`, and every child lies within its parent's body. A multipart has
/// at least one child (one empty text/plain part stands in when the body has a boundary but no part, as Dovecot
/// does); a message/rfc822 or message/global part has exactly one, the encapsulated message, whose `headerStart` is
/// the parent's `bodyStart` and whose `bodyEnd` is the parent's `bodyEnd`. Containers nested deeper than
/// `MIMETreeParser.maxDepth`, or past `MIMETreeParser.maxParts` parts, are kept as application/octet-stream leaves.
public struct MessagePart: Sendable, Equatable, Codable {
    /// Offset of this part's header (top-level message: 0).
    public var headerStart: Int
    /// Offset just after the empty line ending the header (== bodyEnd when the part has no body).
    public var bodyStart: Int
    /// End offset (exclusive) of the body; for multipart children, before the CRLF that precedes the next boundary
    /// line (RFC 2046 §5.1.1: that CRLF belongs to the boundary).
    public var bodyEnd: Int
    /// Lowercased media type; "text" by default (RFC 2045 §5.2), "message" for a multipart/digest child (RFC 2046
    /// §5.1.5).
    public var type: String
    /// Lowercased media subtype; "plain" by default.
    public var subtype: String
    /// Lowercased Content-Transfer-Encoding; "7bit" by default (RFC 2045 §6.1).
    public var encoding: String
    /// A multipart's parts; a message/rfc822 or message/global part's encapsulated message; empty for a leaf.
    public var children: [MessagePart]
    /// Leaves only: the body size once the transfer encoding is undone (RFC 3516 BINARY.SIZE); nil when the
    /// encoding is unknown.
    public var decodedSize: Int?

    public init(
        headerStart: Int, bodyStart: Int, bodyEnd: Int, type: String = "text", subtype: String = "plain",
        encoding: String = "7bit", children: [MessagePart] = [], decodedSize: Int? = nil
    ) {
        self.headerStart = headerStart
        self.bodyStart = bodyStart
        self.bodyEnd = bodyEnd
        self.type = type
        self.subtype = subtype
        self.encoding = encoding
        self.children = children
        self.decodedSize = decodedSize
    }

    var isMultipart: Bool { type == "multipart" && !children.isEmpty }

    /// message/rfc822 or message/global (RFC 9051 `media-message`) with its encapsulated message parsed.
    var isEncapsulatedMessage: Bool {
        type == "message" && (subtype == "rfc822" || subtype == "global") && children.count == 1
    }

    var headerRange: Range<Int> { headerStart..<bodyStart }

    var bodyRange: Range<Int> { bodyStart..<bodyEnd }
}

extension MessagePart {
    /// The tree as JSON, as `JSONEncoder` writes it (the stores keep it so, and read it with `JSONDecoder`), written
    /// directly: `JSONEncoder` was 3% of an APPEND's CPU.
    public var json: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160)
        writeJSON(into: &out)
        return out
    }

    private func writeJSON(into out: inout [UInt8]) {
        func number(_ key: String, _ value: Int) {
            out += Array("\"\(key)\":\(value),".utf8)
        }
        func string(_ key: String, _ value: String) {
            out += Array("\"\(key)\":".utf8)
            Self.writeJSONString(value, into: &out)
            out.append(UInt8(ascii: ","))
        }
        out.append(UInt8(ascii: "{"))
        number("headerStart", headerStart)
        number("bodyStart", bodyStart)
        number("bodyEnd", bodyEnd)
        string("type", type)
        string("subtype", subtype)
        string("encoding", encoding)
        out += Array("\"children\":[".utf8)
        for (index, child) in children.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            child.writeJSON(into: &out)
        }
        out.append(UInt8(ascii: "]"))
        if let decodedSize { out += Array(",\"decodedSize\":\(decodedSize)".utf8) }
        out.append(UInt8(ascii: "}"))
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\u00XX`, everything else as its UTF-8.
    static func writeJSONString(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")]
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
