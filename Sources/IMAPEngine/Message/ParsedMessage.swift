/// Everything the server keeps about a message, computed once at ingest (APPEND, LMTP, import).
///
/// Parsing never fails: any byte sequence gives a best-effort result (a message with no header, no body, no empty
/// line, bare LFs, CR junk, NULs, 8-bit bytes, broken MIME). The work is linear in the message size, and nesting and
/// part counts are capped (`MIMETreeParser.maxDepth`, `MIMETreeParser.maxParts`).
public struct ParsedMessage: Sendable {
    /// The message as stored: every bare LF turned into CRLF (a lone CR not followed by LF stays as is); nothing else
    /// changed; NUL and 8-bit bytes kept.
    public var bytes: [UInt8]
    /// Length of the top-level header including the empty line that ends it (== BODY[HEADER] size); the whole
    /// message if there is no empty line.
    public var headerLength: Int
    /// Wire form of ENVELOPE, "(date subject from sender reply-to to cc bcc in-reply-to message-id)" per RFC 9051
    /// §7.5.2.
    public var envelope: [UInt8]
    /// Wire form of non-extensible BODY.
    public var body: [UInt8]
    /// Wire form of BODYSTRUCTURE (with extension data).
    public var bodyStructure: [UInt8]
    /// The MIME tree with byte ranges into `bytes`.
    public var root: MessagePart
    /// Decoded text for SEARCH.
    public var search: SearchText
    /// Date of the Date: header in the header's own zone; nil when missing/unparseable.
    public var sentDate: IMAPDate?
    /// What SORT orders by.
    public var sortKeys: SortKeys
    /// RFC 8970 PREVIEW text; nil when the message has no text part.
    public var preview: String?

    /// Parses a message. `binary` marks content that arrived as `literal8` (RFC 3516): its binary parts are stored
    /// base64-encoded (`BinaryContent`).
    public init(parsing raw: [UInt8], binary: Bool = false) {
        let bytes = LineEndings.normalized(binary ? BinaryContent.encodingBinaryParts(raw) : raw)
        let root = MIMETreeParser.parse(bytes)
        let header = HeaderBlock(bytes: bytes, range: root.headerRange)
        let envelope = MessageEnvelope(header)
        var envelopeWire: [UInt8] = []
        envelope.write(to: &envelopeWire)
        var body: [UInt8] = []
        BodyStructureWriter(bytes: bytes, extended: false).write(root, to: &body)
        var bodyStructure: [UInt8] = []
        BodyStructureWriter(bytes: bytes, extended: true).write(root, to: &bodyStructure)
        self.bytes = bytes
        self.headerLength = root.bodyStart
        self.envelope = envelopeWire
        self.body = body
        self.bodyStructure = bodyStructure
        self.root = root
        self.search = SearchText(bytes: bytes, root: root, header: header, envelope: envelope)
        self.sentDate = envelope.date.flatMap { IMAPDate(parsing: $0) }
        self.sortKeys = SortKeys(envelope, header: header)
        self.preview = Preview.text(bytes: bytes, root: root)
    }
}
