/// How stored messages end their lines. IMAP serves messages in RFC 5322 form, whose lines end in CRLF (RFC 5322
/// §2.1; RFC 9051 §2.3.4 measures RFC822.SIZE on that form), so a message delivered with bare LFs is repaired once at
/// ingest and every offset, size and line count refers to the repaired bytes.
enum LineEndings {
    /// `raw` with every LF that is not preceded by CR turned into CRLF. A lone CR stays as it is, and nothing else
    /// changes (NUL and 8-bit bytes are kept).
    static func normalized(_ raw: [UInt8]) -> [UInt8] {
        guard let first = nextBareLineFeed(in: raw, from: 0) else { return raw }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count + raw.count / 32 + 1)
        var copied = 0
        var bare: Int? = first
        while let lf = bare {
            out.append(contentsOf: raw[copied..<lf])
            out.append(MessageBytes.cr)
            copied = lf
            bare = nextBareLineFeed(in: raw, from: lf + 1)
        }
        out.append(contentsOf: raw[copied...])
        return out
    }

    private static func nextBareLineFeed(in raw: [UInt8], from start: Int) -> Int? {
        var position = start
        while let lf = MessageBytes.firstIndex(of: MessageBytes.lf, in: raw, range: position..<raw.count) {
            if lf == 0 || raw[lf - 1] != MessageBytes.cr { return lf }
            position = lf + 1
        }
        return nil
    }
}
