/// RFC 2231: parameter value continuations (`name*0`, `name*1`, …) and extended values (`name*=charset'lang'%XX…`).
extension MIMEParameter {
    /// The parameters as BODYSTRUCTURE shows them (RFC 9051 §7.5.2 `body-fld-param`).
    ///
    /// Continuations are joined into one parameter. When any section is extended (`*` after the index), the joined
    /// parameter is named `name*` and its value is the extended form `charset'lang'%XX…` (plain sections are
    /// %-encoded into it, and `''` is put in front when the first section is plain), which clients decode. This is
    /// what Dovecot 2.3 sends; Dovecot 2.4 decodes to UTF-8 instead, which needs 8-bit strings. A set of sections
    /// with a missing or repeated index is not joined: each section is kept under its own name. The first parameter
    /// of a given name wins; the order is that of first appearance.
    static func joiningContinuations(_ parameters: [MIMEParameter]) -> [MIMEParameter] {
        var slots: [Slot] = []
        var sectionsByKey: [[UInt8]: [Section]] = [:]
        var spelling: [[UInt8]: [UInt8]] = [:]
        for parameter in parameters {
            if let continuation = continuationName(parameter.name) {
                let key = MessageBytes.lowercased(continuation.key)
                if sectionsByKey[key] == nil {
                    slots.append(.continued(key: key))
                    spelling[key] = Array(continuation.key)
                }
                sectionsByKey[key, default: []].append(
                    Section(
                        index: continuation.index, isExtended: continuation.isExtended, name: parameter.name,
                        value: parameter.value))
            } else {
                slots.append(.plain(parameter))
            }
        }
        var joined: [MIMEParameter] = []
        var seenNames = Set<[UInt8]>()
        func add(_ parameter: MIMEParameter) {
            if seenNames.insert(MessageBytes.lowercased(parameter.name)).inserted { joined.append(parameter) }
        }
        for slot in slots {
            switch slot {
            case .plain(let parameter):
                add(parameter)
            case .continued(let key):
                let sections = (sectionsByKey[key] ?? []).enumerated()
                    .sorted { ($0.element.index, $0.offset) < ($1.element.index, $1.offset) }
                    .map(\.element)
                guard sections.enumerated().allSatisfy({ $0.offset == $0.element.index }) else {
                    for section in sections { add(MIMEParameter(name: section.name, value: section.value)) }
                    continue
                }
                let isExtended = sections.contains { $0.isExtended }
                var value: [UInt8] = []
                if isExtended, let first = sections.first, !first.isExtended { value.append(contentsOf: "''".utf8) }
                for section in sections {
                    if isExtended, !section.isExtended {
                        percentEncode(section.value, into: &value)
                    } else {
                        value.append(contentsOf: section.value)
                    }
                }
                var name = spelling[key] ?? key
                if isExtended { name.append(UInt8(ascii: "*")) }
                add(MIMEParameter(name: name, value: value))
            }
        }
        return joined
    }

    /// Lowercased names and fully decoded values, for SEARCH and for looking up `charset`: continuations joined,
    /// extended values %-decoded and converted from their charset, RFC 2047 encoded words in plain values decoded
    /// (RFC 2047 §5 forbids them there, but many mailers write `filename="=?UTF-8?B?…?="`).
    static func decodedValues(_ parameters: [MIMEParameter]) -> [(name: String, value: String)] {
        joiningContinuations(parameters).map { parameter in
            if parameter.name.last == UInt8(ascii: "*") {
                return (MessageBytes.lowercasedString(parameter.name.dropLast()), decodeExtendedValue(parameter.value))
            }
            return (MessageBytes.lowercasedString(parameter.name), HeaderText.decode(parameter.value))
        }
    }

    /// RFC 2231 §4 `extended-initial-value`: `[charset] "'" [language] "'" extended-other-values`.
    static func decodeExtendedValue(_ value: [UInt8]) -> String {
        let quote = UInt8(ascii: "'")
        guard let first = value.firstIndex(of: quote),
            let second = value[(first + 1)...].firstIndex(of: quote)
        else { return Charset.decodeFallback(percentDecoded(value[...])) }
        let bytes = percentDecoded(value[(second + 1)...])
        return Charset.decodeText(bytes, charset: String(decoding: value[..<first], as: UTF8.self))
    }

    private enum Slot {
        case plain(MIMEParameter)
        case continued(key: [UInt8])
    }

    private struct Section {
        var index: Int
        var isExtended: Bool
        var name: [UInt8]
        var value: [UInt8]
    }

    /// `name*N` or `name*N*` → (name, N, extended); nil for anything else (`name*` alone is an ordinary parameter).
    private static func continuationName(_ name: [UInt8]) -> (key: ArraySlice<UInt8>, index: Int, isExtended: Bool)? {
        guard let star = name.firstIndex(of: UInt8(ascii: "*")), star > 0 else { return nil }
        let rest = name[(star + 1)...]
        let digits = rest.prefix(while: MessageBytes.isDigit)
        guard !digits.isEmpty, digits.count <= 4 else { return nil }
        let suffix = rest.dropFirst(digits.count)
        guard suffix.isEmpty || suffix.elementsEqual([UInt8(ascii: "*")]) else { return nil }
        let index = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return (name[..<star], index, !suffix.isEmpty)
    }

    /// RFC 2231 §7 `attribute-char`: what may stay unencoded in an extended value.
    private static func isAttributeChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "*"), UInt8(ascii: "'"), UInt8(ascii: "%"): false
        default: byte < 0x80 && MIMEParameter.isTokenByte(byte)
        }
    }

    private static func percentEncode(_ bytes: [UInt8], into out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in bytes {
            if isAttributeChar(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
    }

    static func percentDecoded(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var position = bytes.startIndex
        while position < bytes.endIndex {
            let byte = bytes[position]
            if byte == UInt8(ascii: "%"), bytes.endIndex - position >= 3,
                let high = MessageBytes.hexValue(bytes[position + 1]),
                let low = MessageBytes.hexValue(bytes[position + 2])
            {
                out.append(high << 4 | low)
                position += 3
            } else {
                out.append(byte)
                position += 1
            }
        }
        return out
    }
}
