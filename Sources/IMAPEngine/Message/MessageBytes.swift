#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Byte-level helpers for the MIME reader. Header syntax is ASCII (RFC 5322 §2.2), so case folding here touches
/// A–Z only and leaves 8-bit bytes alone. Offsets are always into the CRLF-normalised message.
enum MessageBytes {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09

    /// RFC 5234 `WSP`.
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// `WSP` or a line-break byte.
    static func isLinearWhitespace(_ byte: UInt8) -> Bool { byte == space || byte == tab || byte == cr || byte == lf }

    static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- 0x61 < 26 }

    static func lowercased(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }

    static func lowercased(_ bytes: some Sequence<UInt8>) -> [UInt8] { bytes.map(lowercased) }

    /// `bytes` with A–Z lowercased, as a String (invalid UTF-8 becomes U+FFFD).
    static func lowercasedString(_ bytes: some Sequence<UInt8>) -> String {
        String(decoding: bytes.map(lowercased), as: UTF8.self)
    }

    static func equalsIgnoringCase(_ bytes: some Collection<UInt8>, _ string: String) -> Bool {
        var other = string.utf8.makeIterator()
        for byte in bytes {
            guard let expected = other.next(), lowercased(byte) == lowercased(expected) else { return false }
        }
        return other.next() == nil
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    /// True when `bytes` are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
    /// Hand-written with an 8-bytes-at-a-time ASCII path: `String(validating:)` needs macOS 15 and the generic
    /// stdlib parser is slow in debug builds.
    static func isValidUTF8(_ bytes: some Collection<UInt8>) -> Bool {
        bytes.withContiguousStorageIfAvailable(isValidUTF8(buffer:))
            ?? Array(bytes).withUnsafeBufferPointer(isValidUTF8(buffer:))
    }

    private static func isValidUTF8(buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        let count = buffer.count
        var index = 0
        while index < count {
            while index + 8 <= count,
                UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0
            {
                index += 8
            }
            guard index < count else { return true }
            let lead = base[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            let length: Int
            var scalar: UInt32
            let minimum: UInt32
            switch lead {
            case 0xC2...0xDF: (length, scalar, minimum) = (2, UInt32(lead & 0x1F), 0x80)
            case 0xE0...0xEF: (length, scalar, minimum) = (3, UInt32(lead & 0x0F), 0x800)
            case 0xF0...0xF4: (length, scalar, minimum) = (4, UInt32(lead & 0x07), 0x1_0000)
            default: return false
            }
            guard index + length <= count else { return false }
            for offset in 1..<length {
                let continuation = base[index + offset]
                guard continuation & 0xC0 == 0x80 else { return false }
                scalar = scalar << 6 | UInt32(continuation & 0x3F)
            }
            guard scalar >= minimum, scalar <= 0x10_FFFF, !(0xD800...0xDFFF).contains(scalar) else { return false }
            index += length
        }
        return true
    }

    /// The range without leading and trailing white space or line-break bytes.
    static func trimmed<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, _ range: Range<Int>) -> Range<Int>
    where Bytes.Index == Int {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isLinearWhitespace(bytes[lower]) { lower += 1 }
        while upper > lower, isLinearWhitespace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    static func trimmed(_ bytes: [UInt8]) -> [UInt8] { Array(bytes[trimmed(bytes, bytes.indices)]) }

    /// Offset of the first `byte` in `range` of `bytes` (memchr, so the scan stays fast in debug builds).
    static func firstIndex(of byte: UInt8, in bytes: [UInt8], range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        return bytes.withUnsafeBufferPointer { buffer -> Int? in
            guard let base = buffer.baseAddress,
                let hit = memchr(base + range.lowerBound, Int32(byte), range.count)
            else { return nil }
            return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
        }
    }

    /// How many times `byte` occurs in `range` of `bytes`.
    static func count(of byte: UInt8, in bytes: [UInt8], range: Range<Int>) -> Int {
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound <= bytes.count else { return 0 }
        return bytes.withUnsafeBufferPointer { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var position = range.lowerBound
            var found = 0
            while position < range.upperBound,
                let hit = memchr(base + position, Int32(byte), range.upperBound - position)
            {
                found += 1
                position = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit)) + 1
            }
            return found
        }
    }

    /// True when `bytes[offset...]` starts with `prefix`.
    static func hasPrefix(_ bytes: [UInt8], at offset: Int, _ prefix: [UInt8]) -> Bool {
        guard offset >= 0, prefix.count <= bytes.count - offset else { return false }
        if prefix.isEmpty { return true }
        return bytes.withUnsafeBufferPointer { buffer in
            prefix.withUnsafeBufferPointer { wanted in
                guard let base = buffer.baseAddress, let wantedBase = wanted.baseAddress else { return false }
                return memcmp(base + offset, wantedBase, wanted.count) == 0
            }
        }
    }
}
