/// One element of an address list the way ENVELOPE models it (RFC 9051 §7.5.2): a mailbox, or the start or the end
/// of an RFC 5322 §3.4 group. Parts are raw bytes: quoted strings unquoted, comments and folding white space
/// removed, encoded words kept; nil where the address has none.
enum AddressItem: Sendable, Equatable {
    case mailbox(name: [UInt8]?, route: [UInt8]?, local: [UInt8]?, domain: [UInt8]?)
    case groupStart(name: [UInt8])
    case groupEnd
}

/// RFC 5322 §3.4 `address-list`, including the obsolete syntax of §4.4 (routes, CFWS around dots, empty list
/// elements), parsed the way Dovecot's message-address.c does where the outcome is visible:
///
/// - `user@host (Name)`: the comment is the display name.
/// - A bare `user` gets no domain and a lone phrase (`John Doe`) no mailbox; ENVELOPE then shows Dovecot's
///   `MISSING_DOMAIN` / `MISSING_MAILBOX`, because NIL there would mean group syntax.
/// - `Name <user@host` (no `>`) keeps what was parsed (Dovecot writes `SYNTAX_ERROR` as host instead).
/// - `John Doe john@example.com` (no angle brackets) takes the words before the address as its display name.
/// - A group without its `;` is closed at the end.
enum AddressList {
    static func parse(_ value: [UInt8]) -> [AddressItem] {
        var parser = AddressParser(tokens: AddressToken.tokenize(value))
        parser.parseList()
        return parser.items
    }
}

private enum AddressToken {
    /// An atom (with dots: `john.doe`, `Q.`) or a quoted string, unquoted.
    case word([UInt8], quoted: Bool, spaceBefore: Bool)
    case comment([UInt8])
    /// A domain literal, brackets included.
    case literal([UInt8])
    /// One of `< > @ , ; :`.
    case special(UInt8)

    static func tokenize(_ bytes: [UInt8]) -> [AddressToken] {
        var tokens: [AddressToken] = []
        var position = 0
        var spaceBefore = false
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case MessageBytes.space, MessageBytes.tab, MessageBytes.cr, MessageBytes.lf:
                spaceBefore = true
                position += 1
                continue
            case UInt8(ascii: "("):
                tokens.append(.comment(comment(bytes, &position)))
                spaceBefore = true
                continue
            case UInt8(ascii: "\""):
                tokens.append(.word(quoted(bytes, &position), quoted: true, spaceBefore: spaceBefore))
            case UInt8(ascii: "["):
                let start = position
                while position < bytes.count, bytes[position] != UInt8(ascii: "]") { position += 1 }
                position = min(position + 1, bytes.count)
                tokens.append(.literal(Array(bytes[start..<position])))
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"), UInt8(ascii: ","), UInt8(ascii: ";"),
                UInt8(ascii: ":"):
                tokens.append(.special(byte))
                position += 1
            default:
                let start = position
                while position < bytes.count, !isDelimiter(bytes[position]) { position += 1 }
                tokens.append(.word(Array(bytes[start..<position]), quoted: false, spaceBefore: spaceBefore))
            }
            spaceBefore = false
        }
        return tokens
    }

    /// Ends an atom. Everything else, 8-bit bytes and stray `]` or `\` included, is taken as atom text.
    private static func isDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case MessageBytes.space, MessageBytes.tab, MessageBytes.cr, MessageBytes.lf, UInt8(ascii: "("),
            UInt8(ascii: "\""), UInt8(ascii: "["),
            UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: ":"):
            true
        default:
            false
        }
    }

    /// A quoted string at `position` (on the quote), unescaped; an unterminated one runs to the end.
    private static func quoted(_ bytes: [UInt8], _ position: inout Int) -> [UInt8] {
        var out: [UInt8] = []
        position += 1
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\"), position < bytes.count {
                out.append(bytes[position])
                position += 1
            } else if byte != MessageBytes.cr, byte != MessageBytes.lf {
                out.append(byte)
            }
        }
        return out
    }

    /// A comment at `position` (on the parenthesis), nested, quoted pairs unescaped; content without the outer
    /// parentheses, white space trimmed.
    private static func comment(_ bytes: [UInt8], _ position: inout Int) -> [UInt8] {
        var out: [UInt8] = []
        var depth = 0
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\\"):
                if position < bytes.count {
                    out.append(bytes[position])
                    position += 1
                }
                continue
            case UInt8(ascii: "("):
                depth += 1
                if depth == 1 { continue }
            case UInt8(ascii: ")"):
                depth -= 1
                if depth == 0 { return MessageBytes.trimmed(out) }
            case MessageBytes.cr, MessageBytes.lf:
                continue
            default:
                break
            }
            out.append(byte)
        }
        return MessageBytes.trimmed(out)
    }
}

private struct AddressParser {
    let tokens: [AddressToken]
    var position = 0
    var items: [AddressItem] = []
    /// Set once a `<` found no `>` after it, so that later ones do not search again (no quadratic input).
    var noClosingAngle = false

    init(tokens: [AddressToken]) { self.tokens = tokens }

    mutating func parseList() {
        while position < tokens.count {
            if isSeparator(tokens[position]) {
                position += 1
            } else if let colon = groupColon() {
                parseGroup(colon: colon)
            } else {
                parseMailbox()
            }
        }
    }

    private func isSeparator(_ token: AddressToken) -> Bool {
        if case .special(let byte) = token {
            return byte == UInt8(ascii: ",") || byte == UInt8(ascii: ";") || byte == UInt8(ascii: ">")
        }
        return false
    }

    private func isSpecial(_ index: Int, _ character: Unicode.Scalar) -> Bool {
        if index < tokens.count, case .special(let byte) = tokens[index] { return byte == UInt8(ascii: character) }
        return false
    }

    /// `display-name ":"` ahead: the index of the colon.
    private func groupColon() -> Int? {
        var index = position
        while index < tokens.count {
            switch tokens[index] {
            case .word, .comment: index += 1
            case .special(let byte): return byte == UInt8(ascii: ":") ? index : nil
            case .literal: return nil
            }
        }
        return nil
    }

    /// RFC 5322 §3.4 `group = display-name ":" [group-list] ";" [CFWS]`.
    private mutating func parseGroup(colon: Int) {
        items.append(.groupStart(name: phrase(position..<colon) ?? []))
        position = colon + 1
        while position < tokens.count {
            if isSpecial(position, ";") {
                position += 1
                break
            }
            if isSeparator(tokens[position]) || isSpecial(position, ":") {
                position += 1
            } else {
                parseMailbox()
            }
        }
        items.append(.groupEnd)
    }

    /// RFC 5322 §3.4 `mailbox = name-addr / addr-spec`, up to the next `,` or `;` outside angle brackets.
    private mutating func parseMailbox() {
        let start = position
        var angle: Range<Int>?
        var index = position
        while index < tokens.count {
            if angle == nil, isSpecial(index, "<") {
                let close = noClosingAngle ? nil : (index + 1..<tokens.count).first { isSpecial($0, ">") }
                if let close {
                    angle = (index + 1)..<close
                    index = close + 1
                } else {
                    noClosingAngle = true
                    var end = index + 1
                    while end < tokens.count, !isSpecial(end, ","), !isSpecial(end, ";") { end += 1 }
                    angle = (index + 1)..<end
                    index = end
                }
                continue
            }
            if isSpecial(index, ",") || isSpecial(index, ";") { break }
            index += 1
        }
        position = max(index, start + 1)
        if let angle {
            let name = phrase(start..<(angle.lowerBound - 1))
            let (route, local, domain) = angleAddress(angle)
            items.append(.mailbox(name: name, route: route, local: local, domain: domain))
        } else {
            addressSpec(start..<min(index, tokens.count))
        }
    }

    /// `"<" [obs-route] addr-spec ">"` (RFC 5322 §3.4, §4.4): the route is kept as `@a,@b` (RFC 9051 addr-adl).
    private func angleAddress(_ range: Range<Int>) -> (route: [UInt8]?, local: [UInt8]?, domain: [UInt8]?) {
        var range = range
        var route: [UInt8]?
        let firstNonComment = range.first { if case .comment = tokens[$0] { false } else { true } }
        if let firstNonComment, isSpecial(firstNonComment, "@"),
            let colon = range.first(where: { isSpecial($0, ":") })
        {
            var text: [UInt8] = []
            for index in firstNonComment..<colon {
                switch tokens[index] {
                case .word(let bytes, _, _), .literal(let bytes): text.append(contentsOf: bytes)
                case .special(let byte): text.append(byte)
                case .comment: break
                }
            }
            route = text
            range = (colon + 1)..<range.upperBound
        }
        guard let at = range.first(where: { isSpecial($0, "@") }) else {
            let local = joined(range)
            return (route, local.isEmpty ? nil : local, nil)
        }
        let local = joined(range.lowerBound..<at)
        let domainEnd = (at + 1..<range.upperBound).first { if case .special = tokens[$0] { true } else { false } }
        let domain = joined((at + 1)..<(domainEnd ?? range.upperBound))
        return (route, local.isEmpty ? nil : local, domain.isEmpty ? nil : domain)
    }

    /// `addr-spec`, with its comment as display name; without `@` a single atom is a mailbox without a domain and
    /// anything else a display name without an address.
    private mutating func addressSpec(_ range: Range<Int>) {
        var comment: [UInt8]?
        for index in range {
            if case .comment(let text) = tokens[index], !text.isEmpty { comment = text }
        }
        let words = range.filter { if case .comment = tokens[$0] { false } else { true } }
        guard !words.isEmpty else { return }
        guard let at = words.firstIndex(where: { isSpecial($0, "@") }) else {
            if words.count == 1, case .word(let bytes, false, _) = tokens[words[0]] {
                items.append(.mailbox(name: comment, route: nil, local: bytes, domain: nil))
            } else {
                items.append(.mailbox(name: phrase(range), route: nil, local: nil, domain: nil))
            }
            return
        }
        // The local part is the run of words glued to the `@`; words before a gap are a display name that lost
        // its angle brackets.
        var localStart = at
        while localStart > 0, case .word(let bytes, _, let spaceBefore) = tokens[words[localStart - 1]] {
            localStart -= 1
            guard localStart > 0 else { break }
            let previousEndsWithDot: Bool =
                if case .word(let previous, false, _) = tokens[words[localStart - 1]] {
                    previous.last == UInt8(ascii: ".")
                } else { false }
            if spaceBefore, bytes.first != UInt8(ascii: "."), !previousEndsWithDot { break }
        }
        let local = words[localStart..<at].flatMap(tokenBytes)
        let domainWords = words[(at + 1)...].prefix { if case .special = tokens[$0] { false } else { true } }
        let domain = domainWords.flatMap(tokenBytes)
        let name = localStart > 0 ? phrase(words[0..<localStart]) : comment
        items.append(
            .mailbox(name: name, route: nil, local: local.isEmpty ? nil : local, domain: domain.isEmpty ? nil : domain))
    }

    private func tokenBytes(_ index: Int) -> [UInt8] {
        switch tokens[index] {
        case .word(let bytes, _, _), .literal(let bytes): bytes
        case .special(let byte): [byte]
        case .comment: []
        }
    }

    /// The words and literals of `range` run together (local parts and domains: CFWS dropped, RFC 5322 §4.4).
    private func joined(_ range: Range<Int>) -> [UInt8] {
        var out: [UInt8] = []
        for index in range {
            switch tokens[index] {
            case .word(let bytes, _, _), .literal(let bytes): out.append(contentsOf: bytes)
            default: break
            }
        }
        return out
    }

    /// RFC 5322 §3.2.5 `phrase` (with the obsolete dots): the words joined by single spaces; nil when empty.
    private func phrase(_ indices: some Sequence<Int>) -> [UInt8]? {
        var out: [UInt8] = []
        var any = false
        for index in indices {
            switch tokens[index] {
            case .word(let bytes, _, _), .literal(let bytes):
                if any { out.append(MessageBytes.space) }
                out.append(contentsOf: bytes)
                any = true
            default:
                break
            }
        }
        return any ? out : nil
    }
}
