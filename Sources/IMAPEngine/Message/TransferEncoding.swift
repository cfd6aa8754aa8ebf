/// Content-Transfer-Encoding decoding (RFC 2045 §6), for BINARY (RFC 3516), BINARY.SIZE and SEARCH.
public enum TransferEncoding {
    /// Undo base64 / quoted-printable; 7bit/8bit/binary are returned unchanged; nil for an unknown encoding
    /// (the server then answers NO [UNKNOWN-CTE]). Tolerant of bad input (skip garbage in base64, keep bad '='
    /// sequences).
    public static func decode(_ bytes: some Collection<UInt8>, encoding: String) -> [UInt8]? {
        switch Mechanism(encoding) {
        case .identity: Array(bytes)
        case .base64: decodeBase64(bytes)
        case .quotedPrintable: decodeQuotedPrintable(bytes)
        case nil: nil
        }
    }

    /// The decoded size without keeping the decoded bytes around when nothing has to be undone.
    static func decodedSize(_ bytes: some Collection<UInt8>, encoding: String) -> Int? {
        Mechanism(encoding) == .identity ? bytes.count : decode(bytes, encoding: encoding)?.count
    }

    private enum Mechanism {
        case identity, base64, quotedPrintable

        init?(_ name: String) {
            switch MessageBytes.lowercasedString(MessageBytes.trimmed(Array(name.utf8))) {
            case "7bit", "8bit", "binary", "": self = .identity
            case "base64": self = .base64
            case "quoted-printable": self = .quotedPrintable
            default: return nil
            }
        }
    }

    /// RFC 2045 §6.8. Bytes outside the alphabet are skipped (§6.8 says to ignore them); `=` ends a quantum, so
    /// concatenated padded chunks (`QQ==QQ==`) decode too; a lone trailing sextet is dropped.
    static func decodeBase64(_ input: some Collection<UInt8>) -> [UInt8] {
        var decoder = Base64Decoder()
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3 + 3)
        if input.withContiguousStorageIfAvailable({ decoder.feed($0, into: &out) }) == nil {
            Array(input).withUnsafeBufferPointer { decoder.feed($0, into: &out) }
        }
        decoder.finish(into: &out)
        return out
    }

    /// Base64 decoding as a state machine, so that a large part can be decoded piece by piece (BINARY streams it).
    struct Base64Decoder {
        private var quantum: UInt32 = 0
        private var sextets = 0

        mutating func feed(_ buffer: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
            for byte in buffer {
                let value = base64Values[Int(byte)]
                if value < 64 {
                    quantum = quantum << 6 | UInt32(value)
                    sextets += 1
                    if sextets == 4 {
                        out.append(UInt8(truncatingIfNeeded: quantum >> 16))
                        out.append(UInt8(truncatingIfNeeded: quantum >> 8))
                        out.append(UInt8(truncatingIfNeeded: quantum))
                        quantum = 0
                        sextets = 0
                    }
                } else if byte == UInt8(ascii: "=") {
                    finish(into: &out)
                }
            }
        }

        /// Emits what a partial quantum holds (at `=` and at the end).
        mutating func finish(into out: inout [UInt8]) {
            switch sextets {
            case 2:
                out.append(UInt8(truncatingIfNeeded: quantum >> 4))
            case 3:
                out.append(UInt8(truncatingIfNeeded: quantum >> 10))
                out.append(UInt8(truncatingIfNeeded: quantum >> 2))
            default:
                break
            }
            quantum = 0
            sextets = 0
        }
    }

    /// The value of each base64 alphabet byte; 0xFF for anything else.
    private static let base64Values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()

    /// A Content-Transfer-Encoding undone piece by piece, with the same result as `decode` on the whole: base64 as
    /// a state machine; quoted-printable line by line (its rules never look past a line's end), keeping the current
    /// line between pieces.
    struct Decoder {
        private enum State {
            case identity
            case base64(Base64Decoder)
            case quotedPrintable(partialLine: [UInt8])
        }
        private var state: State

        init?(encoding: String) {
            switch Mechanism(encoding) {
            case .identity: state = .identity
            case .base64: state = .base64(Base64Decoder())
            case .quotedPrintable: state = .quotedPrintable(partialLine: [])
            case nil: return nil
            }
        }

        mutating func feed(_ bytes: [UInt8], into out: inout [UInt8]) {
            switch state {
            case .identity:
                out.append(contentsOf: bytes)
            case .base64(var decoder):
                bytes.withUnsafeBufferPointer { decoder.feed($0, into: &out) }
                state = .base64(decoder)
            case .quotedPrintable(var partial):
                guard let lastLF = bytes.lastIndex(of: MessageBytes.lf) else {
                    partial.append(contentsOf: bytes)
                    state = .quotedPrintable(partialLine: partial)
                    return
                }
                partial.append(contentsOf: bytes[...lastLF])
                out.append(contentsOf: decodeQuotedPrintable(partial))
                state = .quotedPrintable(partialLine: Array(bytes[(lastLF + 1)...]))
            }
        }

        mutating func finish(into out: inout [UInt8]) {
            switch state {
            case .identity: break
            case .base64(var decoder): decoder.finish(into: &out)
            case .quotedPrintable(let partial): out.append(contentsOf: decodeQuotedPrintable(partial))
            }
            state = .identity
        }
    }

    /// RFC 2045 §6.7: `=XX` (either case), soft line breaks (`=` then optional white space then CRLF, LF or the
    /// end), trailing white space on a line removed (rule 3: it was added in transport), anything malformed kept.
    static func decodeQuotedPrintable(_ input: some Collection<UInt8>) -> [UInt8] {
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var trailingWhitespace: Int?
        var position = 0
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "=") {
                if position + 2 < bytes.count, let high = MessageBytes.hexValue(bytes[position + 1]),
                    let low = MessageBytes.hexValue(bytes[position + 2])
                {
                    out.append(high << 4 | low)
                    trailingWhitespace = nil
                    position += 3
                    continue
                }
                var next = position + 1
                while next < bytes.count, MessageBytes.isWhitespace(bytes[next]) { next += 1 }
                if next == bytes.count {
                    position = next
                    continue
                }
                if bytes[next] == MessageBytes.lf
                    || (bytes[next] == MessageBytes.cr && next + 1 < bytes.count && bytes[next + 1] == MessageBytes.lf)
                {
                    position = bytes[next] == MessageBytes.lf ? next + 1 : next + 2
                    trailingWhitespace = nil
                    continue
                }
                out.append(byte)
                trailingWhitespace = nil
                position += 1
            } else if byte == MessageBytes.cr, position + 1 < bytes.count, bytes[position + 1] == MessageBytes.lf {
                if let start = trailingWhitespace { out.removeSubrange(start...) }
                trailingWhitespace = nil
                out.append(MessageBytes.cr)
                out.append(MessageBytes.lf)
                position += 2
            } else {
                if MessageBytes.isWhitespace(byte) {
                    if trailingWhitespace == nil { trailingWhitespace = out.count }
                } else {
                    trailingWhitespace = nil
                }
                out.append(byte)
                position += 1
            }
        }
        if let start = trailingWhitespace { out.removeSubrange(start...) }
        return out
    }
}
