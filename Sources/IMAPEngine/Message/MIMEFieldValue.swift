/// A structured MIME field value: `type "/" subtype *(";" parameter)` (Content-Type, RFC 2045 §5.1) or
/// `disposition-type *(";" disposition-parm)` (Content-Disposition, RFC 2183 §2). Tokens keep their case.
///
/// The parser is lenient where real mail is sloppy: comments anywhere (RFC 2045 §5.1 allows them), unquoted values
/// with tspecials (`boundary=----=_Part_1`), unquoted values with spaces (`name=my file.pdf`), garbage between
/// parameters (skipped up to the next `;`), unterminated quotes and comments (closed at the end).
struct MIMEFieldValue: Sendable, Equatable {
    /// Parameters after this many are ignored, so a header cannot make every later step slow.
    static let maxParameters = 128

    var token: [UInt8]
    var subtype: [UInt8]
    var parameters: [MIMEParameter]

    /// Content-Type. Nil when the value is not `type "/" subtype` (RFC 2045 §5.2: a syntactically invalid
    /// Content-Type is treated as absent).
    static func contentType(_ value: [UInt8]) -> MIMEFieldValue? {
        var scanner = MIMEFieldScanner(value)
        scanner.skipCommentsAndWhitespace()
        let type = scanner.token()
        scanner.skipCommentsAndWhitespace()
        guard !type.isEmpty, scanner.take(UInt8(ascii: "/")) else { return nil }
        scanner.skipCommentsAndWhitespace()
        let subtype = scanner.token()
        guard !subtype.isEmpty else { return nil }
        return MIMEFieldValue(token: type, subtype: subtype, parameters: scanner.parameters())
    }

    /// Content-Disposition. Nil when there is no disposition type.
    static func disposition(_ value: [UInt8]) -> MIMEFieldValue? {
        var scanner = MIMEFieldScanner(value)
        scanner.skipCommentsAndWhitespace()
        let type = scanner.token()
        guard !type.isEmpty else { return nil }
        return MIMEFieldValue(token: type, subtype: [], parameters: scanner.parameters())
    }

    /// Content-Transfer-Encoding (RFC 2045 §6.1): the mechanism token, nil when empty.
    static func singleToken(_ value: [UInt8]) -> [UInt8]? {
        var scanner = MIMEFieldScanner(value)
        scanner.skipCommentsAndWhitespace()
        let token = scanner.token()
        return token.isEmpty ? nil : token
    }

    /// Content-Language (RFC 3282 §2): `1#Language-tag`; nil when there is none.
    static func tokenList(_ value: [UInt8]) -> [[UInt8]]? {
        var scanner = MIMEFieldScanner(value)
        var tokens: [[UInt8]] = []
        while !scanner.atEnd {
            scanner.skipCommentsAndWhitespace()
            let token = scanner.token()
            if !token.isEmpty { tokens.append(token) }
            scanner.skipCommentsAndWhitespace()
            if !scanner.atEnd, !scanner.take(UInt8(ascii: ",")) { scanner.skipPast(UInt8(ascii: ",")) }
        }
        return tokens.isEmpty ? nil : tokens
    }
}

/// A cursor over an unfolded MIME field value.
private struct MIMEFieldScanner {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { position >= bytes.count }

    mutating func take(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    mutating func skipPast(_ byte: UInt8) {
        while position < bytes.count {
            position += 1
            if bytes[position - 1] == byte { return }
        }
    }

    mutating func skipTo(_ byte: UInt8) {
        while position < bytes.count, bytes[position] != byte { position += 1 }
    }

    mutating func skipCommentsAndWhitespace() {
        while position < bytes.count {
            let byte = bytes[position]
            if MessageBytes.isLinearWhitespace(byte) {
                position += 1
            } else if byte == UInt8(ascii: "(") {
                skipComment()
            } else {
                return
            }
        }
    }

    /// RFC 5322 §3.2.2 comment, nested, with quoted pairs; an unterminated comment runs to the end.
    private mutating func skipComment() {
        var depth = 0
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\\"): position += 1
            case UInt8(ascii: "("): depth += 1
            case UInt8(ascii: ")"):
                depth -= 1
                if depth == 0 { return }
            default: break
            }
        }
        position = min(position, bytes.count)
    }

    mutating func token() -> [UInt8] {
        let start = position
        while position < bytes.count, MIMEParameter.isTokenByte(bytes[position]) { position += 1 }
        return Array(bytes[start..<position])
    }

    /// RFC 5322 §3.2.4 quoted-string, positioned on the opening quote; quoted pairs are unescaped.
    mutating func quotedString() -> [UInt8] {
        var out: [UInt8] = []
        position += 1
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\"") { return out }
            if byte == UInt8(ascii: "\\"), position < bytes.count {
                out.append(bytes[position])
                position += 1
            } else {
                out.append(byte)
            }
        }
        return out
    }

    /// `*(";" parameter)` up to the end of the value; at most `maxParameters` (Dovecot's limit too).
    mutating func parameters() -> [MIMEParameter] {
        var parameters: [MIMEParameter] = []
        while parameters.count < MIMEFieldValue.maxParameters {
            skipCommentsAndWhitespace()
            if atEnd { return parameters }
            guard take(UInt8(ascii: ";")) else {
                skipTo(UInt8(ascii: ";"))
                continue
            }
            skipCommentsAndWhitespace()
            let name = token()
            skipCommentsAndWhitespace()
            guard !name.isEmpty, take(UInt8(ascii: "=")) else { continue }
            skipCommentsAndWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "\"") {
                parameters.append(MIMEParameter(name: name, value: quotedString()))
            } else {
                parameters.append(MIMEParameter(name: name, value: unquotedValue()))
            }
        }
        return parameters
    }

    /// A value that should be a token but in practice also holds tspecials and, now and then, spaces: everything up
    /// to the next `;`, with comments and surrounding white space left out.
    private mutating func unquotedValue() -> [UInt8] {
        var value: [UInt8] = []
        while true {
            let start = position
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: ";") || byte == UInt8(ascii: "(") || byte == UInt8(ascii: "\"")
                    || MessageBytes.isLinearWhitespace(byte)
                {
                    break
                }
                position += 1
            }
            if position > start {
                if !value.isEmpty { value.append(MessageBytes.space) }
                value.append(contentsOf: bytes[start..<position])
            }
            skipCommentsAndWhitespace()
            if atEnd || bytes[position] == UInt8(ascii: ";") { return value }
            if bytes[position] == UInt8(ascii: "\"") {
                let quoted = quotedString()
                if !value.isEmpty { value.append(MessageBytes.space) }
                value.append(contentsOf: quoted)
            }
        }
    }
}
