/// The fields of one header block: each field line with the continuation lines folded into it (RFC 5322 §2.2.3).
///
/// Tolerant by design: a line without a colon becomes a nameless junk field, a continuation line with no field before
/// it is taken as a field line of its own, and a lone CR is just a byte of the line it is in.
struct HeaderBlock: Sendable {
    /// One field of a header block, as offsets into the message (RFC 5322 §2.2).
    struct Field: Sendable, Equatable {
        /// The field name, without white space around it (RFC 5322 §4.5 obs-fields allow WSP before the colon).
        var name: Range<Int>
        /// The raw value after the colon, up to the end of its last continuation line (the CRLF excluded). Folds
        /// (CRLF followed by WSP) are still in it.
        var value: Range<Int>
        /// False for a junk line that has no colon; `name` then covers the whole line and `value` is empty.
        var hasColon: Bool
    }

    let bytes: [UInt8]
    private(set) var fields: [Field] = []

    /// Splits `range` of `bytes` into fields, stopping at the empty line that ends a header.
    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        let end = min(range.upperBound, bytes.count)
        var position = max(0, range.lowerBound)
        while position < end {
            let lf = MessageBytes.firstIndex(of: MessageBytes.lf, in: bytes, range: position..<end)
            var lineEnd = lf ?? end
            if let lf, lf > position, bytes[lf - 1] == MessageBytes.cr { lineEnd = lf - 1 }
            let next = lf.map { $0 + 1 } ?? end
            if lineEnd == position, lf != nil { break }
            if MessageBytes.isWhitespace(bytes[position]), !fields.isEmpty {
                fields[fields.count - 1].value = fields[fields.count - 1].value.lowerBound..<lineEnd
            } else if let colon = MessageBytes.firstIndex(of: UInt8(ascii: ":"), in: bytes, range: position..<lineEnd) {
                fields.append(
                    Field(
                        name: MessageBytes.trimmed(bytes, position..<colon), value: (colon + 1)..<lineEnd,
                        hasColon: true))
            } else {
                fields.append(
                    Field(
                        name: MessageBytes.trimmed(bytes, position..<lineEnd), value: lineEnd..<lineEnd, hasColon: false
                    ))
            }
            position = next
        }
    }

    func isNamed(_ field: Field, _ name: String) -> Bool {
        field.hasColon && MessageBytes.equalsIgnoringCase(bytes[field.name], name)
    }

    func first(_ name: String) -> Field? { fields.first { isNamed($0, name) } }

    func last(_ name: String) -> Field? { fields.last { isNamed($0, name) } }

    func all(_ name: String) -> [Field] { fields.filter { isNamed($0, name) } }

    /// The value unfolded (RFC 5322 §2.2.3: each CRLF that precedes WSP is removed, the WSP kept) and trimmed.
    func unfoldedValue(_ field: Field) -> [UInt8] {
        let range = MessageBytes.trimmed(bytes, field.value)
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var position = range.lowerBound
        while position < range.upperBound {
            let byte = bytes[position]
            if byte == MessageBytes.cr, position + 1 < range.upperBound, bytes[position + 1] == MessageBytes.lf {
                position += 2
                continue
            }
            out.append(byte)
            position += 1
        }
        return out
    }

    func unfoldedValue(of name: String) -> [UInt8]? { last(name).map(unfoldedValue) }
}
