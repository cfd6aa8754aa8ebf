/// The readable text of an HTML body, for SEARCH: tags, comments, scripts and styles removed, character references
/// decoded, block-level tags turned into line breaks. Not an HTML parser; good enough to find words, linear on any
/// input.
enum HTMLText {
    static func plainText(_ html: String) -> String {
        let bytes = Array(html.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var position = 0
        // Once a `<` finds no `>` after it, no later one will: treat the rest as text (no quadratic rescans).
        var tagsEnded = false
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "<"), !tagsEnded, position + 1 < bytes.count, startsMarkup(bytes[position + 1]) {
                if hasPrefix(bytes, position, "<!--") {
                    position = find(bytes, "-->", from: position + 4).map { $0 + 3 } ?? bytes.count
                    continue
                }
                guard
                    let close = MessageBytes.firstIndex(of: UInt8(ascii: ">"), in: bytes, range: position..<bytes.count)
                else {
                    tagsEnded = true
                    out.append(byte)
                    position += 1
                    continue
                }
                let name = tagName(bytes, position + 1)
                position = close + 1
                if name == "script" || name == "style" {
                    let end = find(bytes, "</" + name, from: position, ignoringCase: true)
                    position =
                        end.flatMap {
                            MessageBytes.firstIndex(of: UInt8(ascii: ">"), in: bytes, range: $0..<bytes.count)
                        }
                        .map { $0 + 1 } ?? bytes.count
                } else if blockTags.contains(name) {
                    out.append(MessageBytes.lf)
                } else if cellTags.contains(name) {
                    out.append(MessageBytes.space)
                }
            } else if byte == UInt8(ascii: "&"), let (scalar, length) = characterReference(bytes, position) {
                out.append(contentsOf: String(scalar).utf8)
                position += length
            } else {
                out.append(byte)
                position += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let blockTags: Set<String> = [
        "br", "p", "div", "li", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr",
        "pre", "title", "dd", "dt", "section", "article", "header", "footer",
    ]
    private static let cellTags: Set<String> = ["td", "th"]

    private static func startsMarkup(_ byte: UInt8) -> Bool {
        MessageBytes.isLetter(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "!")
            || byte == UInt8(ascii: "?")
    }

    /// The lowercased name of the tag whose text starts at `start` (after `<`), without a leading `/`.
    private static func tagName(_ bytes: [UInt8], _ start: Int) -> String {
        var position = start
        if position < bytes.count, bytes[position] == UInt8(ascii: "/") { position += 1 }
        let nameStart = position
        while position < bytes.count, position - nameStart < 16,
            MessageBytes.isLetter(bytes[position]) || MessageBytes.isDigit(bytes[position])
        {
            position += 1
        }
        return MessageBytes.lowercasedString(bytes[nameStart..<position])
    }

    private static func hasPrefix(_ bytes: [UInt8], _ offset: Int, _ prefix: String) -> Bool {
        MessageBytes.hasPrefix(bytes, at: offset, Array(prefix.utf8))
    }

    /// The offset of `needle` at or after `start`.
    private static func find(_ bytes: [UInt8], _ needle: String, from start: Int, ignoringCase: Bool = false) -> Int? {
        let wanted = Array(needle.utf8)
        guard let first = wanted.first else { return nil }
        var position = start
        while position < bytes.count {
            let candidate: Int?
            if ignoringCase {
                candidate = (position..<bytes.count).first { MessageBytes.lowercased(bytes[$0]) == first }
            } else {
                candidate = MessageBytes.firstIndex(of: first, in: bytes, range: position..<bytes.count)
            }
            guard let candidate, candidate + wanted.count <= bytes.count else { return nil }
            if ignoringCase {
                if MessageBytes.equalsIgnoringCase(bytes[candidate..<(candidate + wanted.count)], needle) {
                    return candidate
                }
            } else if MessageBytes.hasPrefix(bytes, at: candidate, wanted) {
                return candidate
            }
            position = candidate + 1
        }
        return nil
    }

    /// `&name;`, `&#123;` or `&#x7B;` at `start`: the character and the reference's length.
    private static func characterReference(_ bytes: [UInt8], _ start: Int) -> (Unicode.Scalar, Int)? {
        var position = start + 1
        let limit = min(bytes.count, start + 12)
        if position < limit, bytes[position] == UInt8(ascii: "#") {
            position += 1
            var radix: UInt32 = 10
            if position < limit, MessageBytes.lowercased(bytes[position]) == UInt8(ascii: "x") {
                radix = 16
                position += 1
            }
            var value: UInt32 = 0
            let digitsStart = position
            while position < limit, let digit = MessageBytes.hexValue(bytes[position]), radix == 16 || digit < 10 {
                guard value <= 0x10_FFFF else { return nil }  // no overflow: past U+10FFFF it is no character
                value = value * radix + UInt32(digit)
                position += 1
            }
            guard position > digitsStart, value <= 0x10FFFF else { return nil }
            if position < bytes.count, bytes[position] == UInt8(ascii: ";") { position += 1 }
            return (Unicode.Scalar(value) ?? "\u{FFFD}", position - start)
        }
        let nameStart = position
        while position < limit, MessageBytes.isLetter(bytes[position]) || MessageBytes.isDigit(bytes[position]) {
            position += 1
        }
        guard position < bytes.count, bytes[position] == UInt8(ascii: ";"), position > nameStart,
            let scalar = entities[String(decoding: bytes[nameStart..<position], as: UTF8.self)]
        else { return nil }
        return (scalar, position + 1 - start)
    }

    /// The HTML 4 Latin-1 entities plus the usual typographic ones.
    private static let entities: [String: Unicode.Scalar] = {
        var table: [String: Unicode.Scalar] = [
            "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "euro": "€", "hellip": "…",
            "mdash": "—", "ndash": "–", "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”", "bull": "•",
            "trade": "™", "sbquo": "‚", "bdquo": "„", "dagger": "†", "oelig": "œ", "OElig": "Œ", "scaron": "š",
            "Scaron": "Š", "zwnj": "\u{200C}", "zwj": "\u{200D}", "thinsp": "\u{2009}", "ensp": "\u{2002}",
            "emsp": "\u{2003}",
        ]
        let latin1 = [
            "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf", "laquo", "not", "shy",
            "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot", "cedil", "sup1",
            "ordm", "raquo", "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml",
            "Aring", "AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml",
            "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute",
            "Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring",
            "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth",
            "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
            "uuml", "yacute", "thorn", "yuml",
        ]
        for (offset, name) in latin1.enumerated() {
            table[name] = Unicode.Scalar(UInt8(0xA1 + offset))
        }
        return table
    }()
}
