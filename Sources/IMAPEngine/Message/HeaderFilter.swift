/// BODY[HEADER.FIELDS (…)] and BODY[HEADER.FIELDS.NOT (…)] (RFC 9051 §6.4.5).
public enum HeaderFilter {
    /// The header lines (with folded continuation lines) whose field name is / is not in `names` (case-insensitive),
    /// followed by the empty line CRLF (RFC 9051 §6.4.5: the subset includes the blank line). `header` is a header
    /// block as returned by range(…, .header).
    ///
    /// A line without a colon counts as a field whose name is the whole line, so it only survives `.NOT`. A field
    /// whose last line has no line break (a header that runs to the end of the message) gets a CRLF.
    public static func filter(_ header: some Collection<UInt8>, names: [String], not: Bool) -> [UInt8] {
        let bytes = Array(header)
        let wanted = Set(names.map { MessageBytes.lowercased(MessageBytes.trimmed(Array($0.utf8))) })
        var out: [UInt8] = []
        var fieldStart: Int?
        var include = false
        func finishField(at end: Int) {
            guard let start = fieldStart, include else { return }
            out.append(contentsOf: bytes[start..<end])
            if out.last != MessageBytes.lf {
                out.append(MessageBytes.cr)
                out.append(MessageBytes.lf)
            }
        }
        var position = 0
        while position < bytes.count {
            let lf = MessageBytes.firstIndex(of: MessageBytes.lf, in: bytes, range: position..<bytes.count)
            let next = lf.map { $0 + 1 } ?? bytes.count
            let lineEnd = lf.map { $0 > position && bytes[$0 - 1] == MessageBytes.cr ? $0 - 1 : $0 } ?? bytes.count
            if lineEnd == position, lf != nil { break }
            if !MessageBytes.isWhitespace(bytes[position]) || fieldStart == nil {
                finishField(at: position)
                fieldStart = position
                let nameEnd =
                    MessageBytes.firstIndex(of: UInt8(ascii: ":"), in: bytes, range: position..<lineEnd) ?? lineEnd
                let name = MessageBytes.lowercased(bytes[MessageBytes.trimmed(bytes, position..<nameEnd)])
                include = wanted.contains(name) != not
            }
            position = next
        }
        finishField(at: position)
        out.append(MessageBytes.cr)
        out.append(MessageBytes.lf)
        return out
    }
}
