/// RFC 8474 object ids. MAILBOXID is "F" and the mailbox's id, which RENAME keeps and no other mailbox ever gets;
/// EMAILID is "M" and the id of the stored content, which COPY and MOVE keep (a copy is the same email) and every
/// delivery gets anew. THREADID is not assigned (NIL, as RFC 8474 §5.2 allows).
public enum ObjectID {
    public static func mailbox(_ id: MailboxID) -> String { "F\(id.rawValue)" }

    public static func email(contentID: Int64) -> String { "M\(contentID)" }

    /// The content id an EMAILID names; nil for an id MailHost never gives out.
    public static func contentID(fromEmailID id: String) -> Int64? {
        guard id.first == "M", id.utf8.count > 1 else { return nil }
        let digits = id.dropFirst()
        guard digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(digits)
    }

    /// `ALPHA / DIGIT / "_" / "-"`.
    public static func isIDChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }
}
