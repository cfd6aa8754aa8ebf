#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Charset conversion to Swift strings (RFC 2045 §5.1 `charset`, RFC 2047 encoded words, RFC 2231 values), through
/// the C library's iconv, so every charset glibc knows works, aliases included.
public enum Charset {
    /// Decode `bytes` in the named charset into a String, or nil if the charset is unknown. Invalid sequences do not
    /// stop decoding: each bad byte becomes U+FFFD and decoding goes on.
    public static func decode(_ bytes: some Collection<UInt8>, charset: String) -> String? {
        guard let name = canonicalName(charset) else { return nil }
        switch name {
        case "UTF-8":
            return String(decoding: bytes, as: UTF8.self)
        case "US-ASCII":
            var scalars = String.UnicodeScalarView()
            for byte in bytes { scalars.append(byte < 0x80 ? Unicode.Scalar(byte) : "\u{FFFD}") }
            return String(scalars)
        default:
            return convert(Array(bytes), from: name)
        }
    }

    /// What to do with text whose charset is absent, us-ascii (often a lie) or unknown: UTF-8 when the bytes are
    /// valid UTF-8, windows-1252 otherwise (the usual guess of mail readers; it also covers ISO-8859-1).
    static func decodeFallback(_ bytes: some Collection<UInt8>) -> String {
        if MessageBytes.isValidUTF8(bytes) { return String(decoding: bytes, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            if byte >= 0x80, byte < 0xA0 {
                scalars.append(windows1252High[Int(byte - 0x80)])
            } else {
                scalars.append(Unicode.Scalar(byte))
            }
        }
        return String(scalars)
    }

    /// Decodes with `charset` when it is known and present, with the fallback otherwise; us-ascii counts as absent
    /// (8-bit text labelled us-ascii is common, and it is never meant as U+FFFD).
    static func decodeText(_ bytes: some Collection<UInt8>, charset: String?) -> String {
        guard let charset, let name = canonicalName(charset), name != "US-ASCII" else { return decodeFallback(bytes) }
        return decode(bytes, charset: name) ?? decodeFallback(bytes)
    }

    /// windows-1252 0x80–0x9F; the five unassigned bytes map to U+FFFD.
    private static let windows1252High: [Unicode.Scalar] = [
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD,
        0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
        0x0153, 0xFFFD, 0x017E, 0x0178,
    ].map { Unicode.Scalar(UInt32($0)) ?? "\u{FFFD}" }

    /// Names mail uses that iconv does not know, or knows under another name.
    private static let aliases: [String: String] = [
        "utf8": "UTF-8", "utf-8": "UTF-8", "unicode-1-1-utf-8": "UTF-8", "x-unicode20utf8": "UTF-8",
        "us-ascii": "US-ASCII", "ascii": "US-ASCII", "us": "US-ASCII", "ansi_x3.4-1968": "US-ASCII",
        "iso646-us": "US-ASCII", "646": "US-ASCII",
        "ks_c_5601-1987": "CP949", "ks_c_5601": "CP949", "ks_c_5601-1989": "CP949",
        "iso-8859-8-i": "ISO-8859-8", "iso-8859-6-i": "ISO-8859-6", "iso-8859-8-e": "ISO-8859-8",
        "x-sjis": "SHIFT_JIS", "shift-jis": "SHIFT_JIS", "x-gbk": "GBK", "x-euc-jp": "EUC-JP",
        "windows-874": "CP874", "x-windows-874": "CP874", "x-mac-roman": "MACINTOSH", "x-mac-cyrillic": "MAC-CYRILLIC",
        "unicode-1-1-utf-7": "UTF-7", "x-unicode20utf7": "UTF-7",
        "cp-1250": "CP1250", "cp-1251": "CP1251", "cp-1252": "CP1252", "cp-1253": "CP1253", "cp-1254": "CP1254",
        "cp-1255": "CP1255", "cp-1256": "CP1256", "cp-1257": "CP1257", "cp-1258": "CP1258",
    ]

    /// The name to hand to iconv: trimmed, unquoted, without an RFC 2231 §5 language suffix (`utf-8*en`), and only
    /// made of the characters charset names use (so no `//TRANSLIT` or path tricks reach iconv).
    static func canonicalName(_ charset: String) -> String? {
        var name = Substring(charset)
        while let first = name.first, first == " " || first == "\t" || first == "\"" { name = name.dropFirst() }
        while let last = name.last, last == " " || last == "\t" || last == "\"" { name = name.dropLast() }
        if let star = name.firstIndex(of: "*") { name = name[..<star] }
        let lowered = name.lowercased()
        guard !lowered.isEmpty, lowered.utf8.count <= 40,
            lowered.utf8.allSatisfy({
                MessageBytes.isLetter($0) || MessageBytes.isDigit($0) || "-_.:+".utf8.contains($0)
            })
        else { return nil }
        return aliases[lowered] ?? lowered.uppercased()
    }

    /// iconv from `name` to UTF-8, one U+FFFD per byte it cannot convert.
    private static func convert(_ input: [UInt8], from name: String) -> String? {
        let failed = iconv_t(bitPattern: -1)
        guard let converter = iconv_open("UTF-8", name), converter != failed else { return nil }
        defer { iconv_close(converter) }
        var output: [UInt8] = []
        output.reserveCapacity(input.count + input.count / 2 + 16)
        let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var source = input
        source.withUnsafeMutableBufferPointer { sourceBuffer in
            chunk.withUnsafeMutableBufferPointer { chunkBuffer in
                guard let chunkBase = chunkBuffer.baseAddress else { return }
                var inPointer = sourceBuffer.baseAddress.map {
                    UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self)
                }
                var inLeft = sourceBuffer.count
                var flushed = false
                while inLeft > 0 || !flushed {
                    var outPointer: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(chunkBase)
                        .assumingMemoryBound(to: CChar.self)
                    var outLeft = chunkBuffer.count
                    let result: Int
                    if inLeft > 0 {
                        result = iconv(converter, &inPointer, &inLeft, &outPointer, &outLeft)
                    } else {
                        // Reset to the initial shift state, writing what stateful charsets need for it.
                        result = iconv(converter, nil, nil, &outPointer, &outLeft)
                        flushed = true
                    }
                    let error = result == -1 ? errno : 0
                    output.append(contentsOf: UnsafeBufferPointer(start: chunkBase, count: chunkBuffer.count - outLeft))
                    guard result == -1 else { continue }
                    switch error {
                    case E2BIG:
                        continue
                    case EILSEQ where inLeft > 0:
                        output.append(contentsOf: replacement)
                        inPointer = inPointer.map { $0 + 1 }
                        inLeft -= 1
                    default:
                        // EINVAL: an incomplete sequence at the end; anything else: give up on the rest.
                        if inLeft > 0 { output.append(contentsOf: replacement) }
                        inLeft = 0
                        flushed = true
                    }
                }
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
