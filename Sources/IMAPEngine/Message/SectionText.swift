/// RFC 9051 `section-msgtext` / `section-text` (§6.4.5): what a BODY[…] section addresses inside a part.
public enum SectionText: Sendable, Hashable {
    /// `HEADER`: the header, with the empty line that ends it.
    case header
    /// `HEADER.FIELDS (…)`: field names as the client sent them.
    case headerFields([String])
    /// `HEADER.FIELDS.NOT (…)`.
    case headerFieldsNot([String])
    /// `TEXT`: the body.
    case text
    /// `MIME`: the MIME header of a part (not allowed on the top level).
    case mime
}
