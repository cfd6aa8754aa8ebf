/// The MIME fields of one entity's header, as BODYSTRUCTURE needs them: Content-Type (RFC 2045 §5), -Transfer-Encoding
/// (§6), -ID (§7), -Description (§8), -Disposition (RFC 2183), -Language (RFC 3282), -Location (RFC 2557) and -MD5
/// (RFC 1864). Values are unfolded and trimmed, encoded words are kept raw.
///
/// The first occurrence of each field wins (as in Dovecot). A Content-Type is honoured without MIME-Version, as every
/// mail reader does (RFC 2045 §4 would have it ignored).
struct PartHeader: Sendable {
    var contentType: MIMEFieldValue?
    var transferEncoding: [UInt8]?
    var id: [UInt8]?
    var description: [UInt8]?
    var md5: [UInt8]?
    var disposition: MIMEFieldValue?
    var languages: [[UInt8]]?
    var location: [UInt8]?

    init(_ header: HeaderBlock) {
        var seen = Set<String>()
        for field in header.fields where field.hasColon {
            let name = header.bytes[field.name]
            guard name.count > 8, MessageBytes.equalsIgnoringCase(name.prefix(8), "content-") else { continue }
            let kind = MessageBytes.lowercasedString(name.dropFirst(8))
            guard seen.insert(kind).inserted else { continue }
            switch kind {
            case "type": contentType = MIMEFieldValue.contentType(header.unfoldedValue(field))
            case "transfer-encoding": transferEncoding = MIMEFieldValue.singleToken(header.unfoldedValue(field))
            case "id": id = header.unfoldedValue(field)
            case "description": description = header.unfoldedValue(field)
            case "md5": md5 = header.unfoldedValue(field)
            case "disposition": disposition = MIMEFieldValue.disposition(header.unfoldedValue(field))
            case "language": languages = MIMEFieldValue.tokenList(header.unfoldedValue(field))
            case "location": location = header.unfoldedValue(field)
            default: break
            }
        }
    }

    /// The `boundary` parameter (RFC 2046 §5.1.1), cut to 80 bytes like Dovecot: boundaries match as prefixes, so a
    /// cut boundary still finds its lines while a huge one cannot slow every line check down.
    var boundary: [UInt8]? {
        let parameters = MIMEParameter.joiningContinuations(contentType?.parameters ?? [])
        guard let value = parameters.first(where: { MessageBytes.equalsIgnoringCase($0.name, "boundary") })?.value,
            !value.isEmpty
        else { return nil }
        return Array(value.prefix(80))
    }
}
