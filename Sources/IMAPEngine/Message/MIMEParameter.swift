/// One `attribute "=" value` of a MIME field (RFC 2045 §5.1), as written: the name keeps its case and a quoted value
/// is unquoted.
struct MIMEParameter: Sendable, Equatable {
    var name: [UInt8]
    var value: [UInt8]

    /// RFC 2045 §5.1 `token` byte: any CHAR except SPACE, CTLs and tspecials (8-bit bytes let through).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        if byte <= 0x20 || byte == 0x7F { return false }
        switch byte {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"),
            UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: ":"), UInt8(ascii: "\\"), UInt8(ascii: "\""),
            UInt8(ascii: "/"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "?"), UInt8(ascii: "="):
            return false
        default:
            return true
        }
    }
}
