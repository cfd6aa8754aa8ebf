/// How a string value goes on the wire: RFC 9051 §4.3 (string = quoted / literal) and §4.5 (NIL).
///
/// A quoted string can carry only 7-bit text without CR, LF or NUL; anything else (8-bit bytes, line
/// breaks, very long values) is sent as a synchronizing-style literal `{n}\r\n…`, which every client
/// accepts, IMAP4rev1 and IMAP4rev2 alike.
enum WireString {
    /// Longest value sent as a quoted string; longer ones become literals so a single response line stays short.
    static let maxQuotedLength = 1024

    /// Appends `value` as `quoted` or `literal` (RFC 9051 `string`).
    static func appendString(_ value: some Collection<UInt8>, to out: inout [UInt8]) {
        if canQuote(value) {
            out.append(UInt8(ascii: "\""))
            for byte in value {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(byte)
            }
            out.append(UInt8(ascii: "\""))
        } else {
            appendLiteral(value, to: &out)
        }
    }

    /// Appends `value` as `nstring`: `NIL` when absent.
    static func appendNString(_ value: (some Collection<UInt8>)?, to out: inout [UInt8]) {
        if let value { appendString(value, to: &out) } else { out.append(contentsOf: "NIL".utf8) }
    }

    static func appendString(_ value: String, to out: inout [UInt8]) { appendString(value.utf8, to: &out) }

    static func appendNString(_ value: String?, to out: inout [UInt8]) {
        if let value { appendString(value.utf8, to: &out) } else { out.append(contentsOf: "NIL".utf8) }
    }

    /// Appends `{n}\r\n` followed by the bytes.
    static func appendLiteral(_ value: some Collection<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        out.append(contentsOf: String(value.count).utf8)
        out.append(contentsOf: "}\r\n".utf8)
        out.append(contentsOf: value)
    }

    /// True when `value` fits RFC 3501's `quoted`: 7-bit TEXT-CHARs only (no CR, LF or NUL).
    static func canQuote(_ value: some Collection<UInt8>) -> Bool {
        if value.count > maxQuotedLength { return false }
        for byte in value where byte == 0 || byte == 0x0D || byte == 0x0A || byte >= 0x80 { return false }
        return true
    }
}
