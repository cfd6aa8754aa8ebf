/// A mailbox name as the store keeps it: UTF-8, `/` between hierarchy levels, `INBOX` in upper case
/// (RFC 9051 §5.1: INBOX is case-insensitive; other names are case-sensitive here, as in Dovecot).
public struct MailboxName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let separator: Character = "/"
    public static let separatorByte = UInt8(ascii: "/")
    public static let inbox = MailboxName(normalizing: "INBOX")

    /// Longest name accepted, in UTF-8 bytes (Dovecot uses a similar bound).
    public static let maxLength = 1024

    public let name: String

    /// Normalises the INBOX prefix: `inbox` → `INBOX`, `Inbox/Sub` → `INBOX/Sub`.
    public init(normalizing name: String) {
        let bytes = Array(name.utf8)
        if bytes.count >= 5, String(decoding: bytes[0..<5], as: UTF8.self).uppercased() == "INBOX",
            bytes.count == 5 || bytes[5] == MailboxName.separatorByte
        {
            self.name = "INBOX" + String(decoding: bytes[5...], as: UTF8.self)
        } else {
            self.name = name
        }
    }

    public var isInbox: Bool { name == "INBOX" }
    public var description: String { name }
    public static func < (a: MailboxName, b: MailboxName) -> Bool { a.name < b.name }

    /// The superior names, outermost first: `a/b/c` → `a`, `a/b`.
    public var ancestors: [MailboxName] {
        var result: [MailboxName] = []
        var prefix = ""
        let levels = name.split(separator: MailboxName.separator, omittingEmptySubsequences: false)
        for level in levels.dropLast() {
            prefix = prefix.isEmpty ? String(level) : prefix + "/" + level
            result.append(MailboxName(normalizing: prefix))
        }
        return result
    }

    public func isDescendant(of other: MailboxName) -> Bool {
        name.hasPrefix(other.name + "/")
    }

    /// Why a name cannot be created (`nil` when it can): empty, an empty level, wildcards, control characters, too long.
    public var creationProblem: String? {
        if name.isEmpty { return "Empty mailbox name" }
        if name.utf8.count > MailboxName.maxLength { return "Mailbox name is too long" }
        let levels = name.split(separator: MailboxName.separator, omittingEmptySubsequences: false)
        if levels.contains(where: \.isEmpty) { return "Mailbox name has an empty hierarchy level" }
        for scalar in name.unicodeScalars {
            if scalar == "*" || scalar == "%" { return "Mailbox name may not contain the wildcards * or %" }
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                return "Mailbox name may not contain control characters"
            }
        }
        return nil
    }
}

/// Modified UTF-7 for mailbox names (RFC 3501 §5.1.3, RFC 9051 Appendix A.1), used with IMAP4rev1 clients.
enum ModifiedUTF7 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)
    private static let reverse: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    /// UTF-8 → modified UTF-7.
    static func encode(_ name: String) -> String {
        var out: [UInt8] = []
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            out.append(UInt8(ascii: "&"))
            var bits = 0
            var buffer: UInt32 = 0
            for unit in pending {
                buffer = (buffer << 16) | UInt32(unit)
                bits += 16
                while bits >= 6 {
                    bits -= 6
                    out.append(alphabet[Int((buffer >> UInt32(bits)) & 0x3F)])
                }
            }
            if bits > 0 { out.append(alphabet[Int((buffer << UInt32(6 - bits)) & 0x3F)]) }
            out.append(UInt8(ascii: "-"))
            pending.removeAll()
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7E {
                flush()
                if scalar == "&" {
                    out.append(contentsOf: "&-".utf8)
                } else {
                    out.append(UInt8(scalar.value))
                }
            } else {
                pending.append(contentsOf: Array(String(scalar).utf16))
            }
        }
        flush()
        return String(decoding: out, as: UTF8.self)
    }

    /// Modified UTF-7 → UTF-8, or nil when the input breaks the RFC's rules (bad base64, an unterminated shift,
    /// a needless shift of printable ASCII, an invalid UTF-16 sequence, a null shift).
    static func decode(_ wire: String) -> String? {
        let bytes = Array(wire.utf8)
        var scalars = String.UnicodeScalarView()
        var i = 0
        var endedShift = -1
        while i < bytes.count {
            let byte = bytes[i]
            if byte >= 0x80 || byte < 0x20 || byte == 0x7F { return nil }
            if byte != UInt8(ascii: "&") {
                scalars.append(Unicode.Scalar(byte))
                i += 1
                continue
            }
            // "-&" right after a shifted run is a superfluous shift: RFC 9051 Appendix A.1 forbids it, and accepting
            // it would change the name the client created.
            if i > 0, bytes[i - 1] == UInt8(ascii: "-"), endedShift == i - 1, i + 1 < bytes.count,
                bytes[i + 1] != UInt8(ascii: "-")
            {
                return nil
            }
            i += 1
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "-") {
                scalars.append("&")
                i += 1
                continue
            }
            var units: [UInt16] = []
            var buffer: UInt32 = 0
            var bits = 0
            while i < bytes.count, bytes[i] != UInt8(ascii: "-") {
                let value = reverse[Int(bytes[i])]
                if value < 0 { return nil }
                buffer = (buffer << 6) | UInt32(value)
                bits += 6
                if bits >= 16 {
                    bits -= 16
                    units.append(UInt16((buffer >> UInt32(bits)) & 0xFFFF))
                }
                i += 1
            }
            guard i < bytes.count, !units.isEmpty else { return nil }  // unterminated, or "&-"-less empty shift
            if bits >= 6 || (buffer & ((1 << UInt32(bits)) - 1)) != 0 { return nil }  // leftover non-zero bits
            endedShift = i
            i += 1  // "-"
            var decoded = String.UnicodeScalarView()
            var iterator = units.makeIterator()
            var utf16 = UTF16()
            loop: while true {
                switch utf16.decode(&iterator) {
                case .scalarValue(let scalar):
                    if scalar.value >= 0x20 && scalar.value <= 0x7E { return nil }  // must have been sent directly
                    decoded.append(scalar)
                case .emptyInput: break loop
                case .error: return nil
                }
            }
            scalars.append(contentsOf: decoded)
        }
        return String(scalars)
    }
}

extension MailboxName {
    /// Modified UTF-7 of a UTF-8 name (for archive formats that store names as Dovecot does).
    public static func modifiedUTF7(_ name: String) -> String { ModifiedUTF7.encode(name) }

    /// UTF-8 from modified UTF-7, or nil when the text is not valid modified UTF-7.
    public static func fromModifiedUTF7(_ text: String) -> String? { ModifiedUTF7.decode(text) }
}
