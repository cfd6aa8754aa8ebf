/// Decoded, lowercased text of a message for SEARCH (RFC 9051 §6.4.4), computed once at ingest.
///
/// All values are decoded (RFC 2047 encoded words, RFC 2231 parameters, charsets, transfer encodings) and lowercased
/// with Swift's `lowercased()`. NUL characters are left out (a PostgreSQL text value cannot hold them), and line
/// breaks inside a header value become spaces so that a value never looks like a new field.
public struct SearchText: Sendable, Equatable {
    /// Each address as "display name <local@domain>" (or "local@domain" when it has no name; a group as "name:"),
    /// joined by "\n".
    public var from: String
    public var to: String
    public var cc: String
    public var bcc: String
    public var subject: String
    /// Every top-level header field as "\n" + lowercased-name + ": " + decoded lowercased value, then "\n"
    /// ("\nsubject: hello\nx-foo: bar\n"), unfolded.
    public var headers: String
    /// Decoded text of every text/* leaf (text/html without its tags), including those inside message/rfc822 parts
    /// (with the encapsulated message's header values too), parts joined by "\n"; capped at `maxBodyBytes` of UTF-8.
    public var body: String

    /// The body text cap: 4 MiB of UTF-8.
    public static let maxBodyBytes = 4 * 1024 * 1024

    public init(
        from: String = "", to: String = "", cc: String = "", bcc: String = "", subject: String = "",
        headers: String = "", body: String = ""
    ) {
        self.from = from
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.subject = subject
        self.headers = headers
        self.body = body
    }
}
