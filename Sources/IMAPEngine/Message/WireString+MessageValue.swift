extension WireString {
    /// Appends a value taken from a message (a header value, a parameter, an address part) as RFC 9051 `nstring`.
    /// NUL can be neither quoted nor sent in a literal (`CHAR8` excludes it), so each NUL becomes U+FFFD; 8-bit and
    /// multi-line values become literals.
    static func appendMessageValue(_ value: [UInt8]?, to out: inout [UInt8]) {
        guard let value else {
            out.append(contentsOf: "NIL".utf8)
            return
        }
        guard value.contains(0) else {
            appendString(value, to: &out)
            return
        }
        var clean: [UInt8] = []
        clean.reserveCapacity(value.count + 8)
        for byte in value {
            if byte == 0 { clean.append(contentsOf: [0xEF, 0xBF, 0xBD]) } else { clean.append(byte) }
        }
        appendString(clean, to: &out)
    }

    static func appendMessageValue(_ value: String, to out: inout [UInt8]) {
        appendMessageValue(Array(value.utf8), to: &out)
    }
}
