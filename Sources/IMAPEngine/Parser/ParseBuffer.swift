/// Why a command could not be parsed. The session answers `tag BAD <message>` (or `* BAD` without a tag).
public struct ParseError: Error, Hashable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// A cursor over one framed command: the command line with its literals inline (`{n}\r\n` + n bytes), without the
/// final CRLF. The framing layer has already checked every literal's length, so a literal here is always complete.
struct ParseBuffer {
    let bytes: [UInt8]
    private(set) var index: Int = 0
    /// Nesting depth of parenthesised search keys, bounded so hostile input cannot exhaust the stack.
    var depth = 0
    static let maxDepth = 64

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { index >= bytes.count }
    var remaining: ArraySlice<UInt8> { bytes[index...] }

    func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    mutating func advance(_ n: Int = 1) { index += n }

    /// Consumes `byte` if it is next.
    mutating func take(_ byte: UInt8) -> Bool {
        if peek() == byte {
            index += 1
            return true
        }
        return false
    }

    mutating func expect(_ byte: UInt8) throws(ParseError) {
        guard take(byte) else { throw unexpected(expected: "\"\(Character(Unicode.Scalar(byte)))\"") }
    }

    mutating func space() throws(ParseError) {
        guard take(UInt8(ascii: " ")) else { throw unexpected(expected: "a space") }
    }

    mutating func expectEnd() throws(ParseError) {
        guard isAtEnd else { throw unexpected(expected: "end of line") }
    }

    func unexpected(expected: String) -> ParseError {
        guard let byte = peek() else { return ParseError("Unexpected end of line, expected \(expected)") }
        if byte == UInt8(ascii: " ") { return ParseError("Unexpected space, expected \(expected)") }
        if byte >= 0x21 && byte < 0x7F {
            return ParseError("Unexpected \"\(Character(Unicode.Scalar(byte)))\", expected \(expected)")
        }
        return ParseError("Unexpected byte 0x\(String(byte, radix: 16)), expected \(expected)")
    }

    // MARK: atoms and keywords

    /// `atom = 1*ATOM-CHAR` (RFC 9051 §9).
    mutating func atom(_ what: String = "an atom") throws(ParseError) -> String {
        let start = index
        while let byte = peek(), isAtomChar(byte) { index += 1 }
        guard index > start else { throw unexpected(expected: what) }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// A keyword made of letters, digits, `.` and `-` (FETCH items, SEARCH keys, command names), upper-cased
    /// (RFC 9051 §9 note 1: case-insensitive).
    mutating func keyword() throws(ParseError) -> String {
        let start = index
        while let byte = peek(), isKeywordChar(byte) { index += 1 }
        guard index > start else { throw unexpected(expected: "a keyword") }
        return String(decoding: bytes[start..<index].map(asciiUpper), as: UTF8.self)
    }

    /// Consumes `word` (case-insensitive) when it is next and not followed by another keyword character.
    mutating func takeKeyword(_ word: String) -> Bool {
        let utf8 = Array(word.utf8)
        guard index + utf8.count <= bytes.count else { return false }
        for (i, c) in utf8.enumerated() where asciiUpper(bytes[index + i]) != c { return false }
        if let next = peek(utf8.count), isKeywordChar(next) { return false }
        index += utf8.count
        return true
    }

    private func isKeywordChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "="):
            true
        default: false
        }
    }

    // MARK: numbers

    /// `number = 1*DIGIT` within 32 bits (RFC 9051 §4.2).
    mutating func number() throws(ParseError) -> UInt32 {
        let value = try number64()
        guard value <= Int64(UInt32.max) else { throw ParseError("Number out of range") }
        return UInt32(value)
    }

    mutating func nzNumber() throws(ParseError) -> UInt32 {
        let value = try number()
        guard value > 0 else { throw ParseError("Expected a non-zero number") }
        return value
    }

    /// `number64`: 1*DIGIT up to 2^63-1.
    mutating func number64() throws(ParseError) -> Int64 {
        let start = index
        var value: Int64 = 0
        while let byte = peek(), byte >= 0x30, byte <= 0x39 {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(byte - 0x30))
            guard !o1, !o2 else { throw ParseError("Number out of range") }
            value = a
            index += 1
        }
        guard index > start else { throw unexpected(expected: "a number") }
        return value
    }

    // MARK: strings

    /// `string = quoted / literal`, as raw bytes.
    mutating func stringBytes() throws(ParseError) -> ArraySlice<UInt8> {
        if peek() == UInt8(ascii: "\"") { return try quotedBytes() }
        if peek() == UInt8(ascii: "{") || (peek() == UInt8(ascii: "~") && peek(1) == UInt8(ascii: "{")) {
            return try literalBytes().bytes
        }
        throw unexpected(expected: "a string")
    }

    /// `quoted`: `"` … `"` with `\"` and `\\` escapes; other backslashes, CR and LF are errors.
    mutating func quotedBytes() throws(ParseError) -> ArraySlice<UInt8> {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while true {
            guard let byte = peek() else { throw ParseError("Unterminated quoted string") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return out[...]
            case UInt8(ascii: "\\"):
                guard let next = peek(), next == UInt8(ascii: "\"") || next == UInt8(ascii: "\\") else {
                    throw ParseError("Invalid escape in quoted string")
                }
                out.append(next)
                index += 1
            case 0x00, 0x0D, 0x0A:
                throw ParseError("Invalid character in quoted string")
            default:
                out.append(byte)
            }
        }
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` and `literal8 = "~{" number64 ["+"] "}" CRLF *OCTET`.
    mutating func literalBytes() throws(ParseError) -> (bytes: ArraySlice<UInt8>, isBinary: Bool) {
        let isBinary = take(UInt8(ascii: "~"))
        try expect(UInt8(ascii: "{"))
        let count = try number64()
        _ = take(UInt8(ascii: "+"))
        try expect(UInt8(ascii: "}"))
        _ = take(0x0D)
        try expect(0x0A)
        guard count <= Int64(bytes.count - index) else { throw ParseError("Literal is incomplete") }
        let slice = bytes[index..<(index + Int(count))]
        if !isBinary, slice.contains(0) { throw ParseError("NUL in literal; use literal8 (~{n}) for binary data") }
        index += Int(count)
        return (slice, isBinary)
    }

    /// `astring = 1*ASTRING-CHAR / string`, decoded as UTF-8. Bytes of 0x80 and above are accepted inside atoms
    /// (as Dovecot does) so a sloppy UTF-8 client still works; the result must be valid UTF-8.
    mutating func astring(_ what: String = "a string") throws(ParseError) -> String {
        try utf8(astringBytes(what), what)
    }

    mutating func astringBytes(_ what: String = "a string") throws(ParseError) -> ArraySlice<UInt8> {
        if let byte = peek(),
            byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "{")
                || (byte == UInt8(ascii: "~") && peek(1) == UInt8(ascii: "{"))
        {
            return try stringBytes()
        }
        let start = index
        while let byte = peek(), isAtomChar(byte) || byte == UInt8(ascii: "]") || byte >= 0x80 { index += 1 }
        guard index > start else { throw unexpected(expected: what) }
        return bytes[start..<index]
    }

    /// `nstring = string / nil`.
    mutating func nstring() throws(ParseError) -> String? {
        if takeKeyword("NIL") { return nil }
        return try utf8(stringBytes(), "a string")
    }

    /// `list-mailbox = 1*list-char / string`: like astring but `%` and `*` are allowed unquoted.
    mutating func listMailbox() throws(ParseError) -> String {
        if let byte = peek(), byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "{") {
            return try utf8(stringBytes(), "a mailbox pattern")
        }
        let start = index
        while let byte = peek(),
            isAtomChar(byte) || byte == UInt8(ascii: "]") || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "*")
                || byte >= 0x80
        {
            index += 1
        }
        guard index > start else { throw unexpected(expected: "a mailbox pattern") }
        return try utf8(bytes[start..<index], "a mailbox pattern")
    }

    func utf8(_ slice: ArraySlice<UInt8>, _ what: String) throws(ParseError) -> String {
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw ParseError("Invalid UTF-8 in \(what)")
        }
        return text
    }
}
