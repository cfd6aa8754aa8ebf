/// Header text as a reader sees it, for SEARCH: RFC 2047 encoded words decoded, raw 8-bit text decoded as UTF-8 when
/// valid and windows-1252 otherwise (RFC 6532 allows UTF-8; older mailers send their local charset).
enum HeaderText {
    /// Decodes an (unfolded) header value. Encoded words are decoded wherever they are, inside words and quoted
    /// strings too (RFC 2047 §5 forbids both, mail readers accept both). White space between two encoded words is
    /// dropped (RFC 2047 §6.2); consecutive words in the same charset are converted together, so a character split
    /// across two words survives. A malformed encoded word is left as it is.
    static func decode(_ value: some Collection<UInt8>) -> String {
        let bytes = Array(value)
        var text = ""
        var pending: (charset: String, bytes: [UInt8])?
        var rawStart = 0
        var position = 0
        func flushPending() {
            if let word = pending {
                text += Charset.decodeText(word.bytes, charset: word.charset)
                pending = nil
            }
        }
        while position + 1 < bytes.count {
            guard bytes[position] == UInt8(ascii: "="), bytes[position + 1] == UInt8(ascii: "?"),
                let word = encodedWord(in: bytes, at: position)
            else {
                position += 1
                continue
            }
            let between = bytes[rawStart..<position]
            if pending == nil || !between.allSatisfy(MessageBytes.isLinearWhitespace) {
                flushPending()
                text += Charset.decodeFallback(between)
            }
            if let current = pending, current.charset.lowercased() == word.charset.lowercased() {
                pending?.bytes.append(contentsOf: word.bytes)
            } else {
                flushPending()
                pending = (word.charset, word.bytes)
            }
            position = word.end
            rawStart = position
        }
        flushPending()
        text += Charset.decodeFallback(bytes[rawStart...])
        return text
    }

    /// RFC 2047 §2 `encoded-word = "=?" charset "?" encoding "?" encoded-text "?="`, at `start`. The charset may carry
    /// an RFC 2231 §5 language (`utf-8*en`), which `Charset` strips.
    private static func encodedWord(
        in bytes: [UInt8], at start: Int
    ) -> (charset: String, bytes: [UInt8], end: Int)? {
        let question = UInt8(ascii: "?")
        let charsetStart = start + 2
        var position = charsetStart
        while position < bytes.count, bytes[position] != question {
            guard MIMEParameter.isTokenByte(bytes[position]) || bytes[position] == UInt8(ascii: "*") else { return nil }
            position += 1
        }
        guard position > charsetStart, position + 2 < bytes.count, bytes[position + 2] == question else { return nil }
        let charset = String(decoding: bytes[charsetStart..<position], as: UTF8.self)
        let encoding = MessageBytes.lowercased(bytes[position + 1])
        guard encoding == UInt8(ascii: "b") || encoding == UInt8(ascii: "q") else { return nil }
        let textStart = position + 3
        position = textStart
        while position < bytes.count, bytes[position] != question {
            guard bytes[position] > 0x20, bytes[position] < 0x7F else { return nil }
            position += 1
        }
        guard position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "=") else { return nil }
        let text = bytes[textStart..<position]
        let decoded = encoding == UInt8(ascii: "b") ? TransferEncoding.decodeBase64(text) : decodeQ(text)
        return (charset, decoded, position + 2)
    }

    /// RFC 2047 §4.2 "Q": `_` is a space, `=XX` a byte, anything else itself.
    private static func decodeQ(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var position = text.startIndex
        while position < text.endIndex {
            let byte = text[position]
            if byte == UInt8(ascii: "_") {
                out.append(MessageBytes.space)
            } else if byte == UInt8(ascii: "="), text.endIndex - position >= 3,
                let high = MessageBytes.hexValue(text[position + 1]),
                let low = MessageBytes.hexValue(text[position + 2])
            {
                out.append(high << 4 | low)
                position += 3
                continue
            } else {
                out.append(byte)
            }
            position += 1
        }
        return out
    }
}
