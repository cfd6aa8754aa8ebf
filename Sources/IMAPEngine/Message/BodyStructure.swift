/// Writes BODY and BODYSTRUCTURE (RFC 9051 §7.5.2 `body`) from the MIME tree, reading each part's MIME header again.
///
/// Choices where the RFC leaves room, all Dovecot's: media types and parameters keep the case they have in the
/// message (defaults are lowercase); a text part without a charset parameter gets `("charset" "us-ascii")` (RFC 2045
/// §5.2); body-fld-lines counts the LFs of the body (the CRLF before a boundary belongs to the boundary, so a last
/// line without one is not counted); Content-Language is always written as a list; extension data is always
/// written in full (md5, disposition, language, location).
struct BodyStructureWriter {
    let bytes: [UInt8]
    /// BODYSTRUCTURE (with extension data) rather than BODY.
    let extended: Bool

    func write(_ part: MessagePart, to out: inout [UInt8]) {
        let header = PartHeader(HeaderBlock(bytes: bytes, range: part.headerRange))
        out.append(UInt8(ascii: "("))
        if part.type == "multipart" {
            writeMultipart(part, header, to: &out)
        } else {
            writeSinglePart(part, header, to: &out)
        }
        out.append(UInt8(ascii: ")"))
    }

    /// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`.
    private func writeMultipart(_ part: MessagePart, _ header: PartHeader, to out: inout [UInt8]) {
        if part.children.isEmpty {
            // Not produced by the parser; kept valid anyway (`1*body`), with Dovecot's empty part.
            write(
                MessagePart(headerStart: part.bodyStart, bodyStart: part.bodyStart, bodyEnd: part.bodyStart), to: &out)
        }
        for child in part.children { write(child, to: &out) }
        out.append(MessageBytes.space)
        WireString.appendMessageValue(mediaType(of: part, header).subtype, to: &out)
        guard extended else { return }
        out.append(MessageBytes.space)
        writeParameters(MIMEParameter.joiningContinuations(header.contentType?.parameters ?? []), to: &out)
        writeCommonExtensions(header, to: &out)
    }

    /// `body-type-basic / body-type-msg / body-type-text [SP body-ext-1part]`.
    private func writeSinglePart(_ part: MessagePart, _ header: PartHeader, to out: inout [UInt8]) {
        let isMessage = part.isEncapsulatedMessage
        let isText = part.type == "text"
        var media = mediaType(of: part, header)
        if part.type == "message", part.subtype == "rfc822" || part.subtype == "global", !isMessage {
            // Not produced by the parser: a message part without its message would not parse as body-type-msg.
            media = (Array("application".utf8), Array("octet-stream".utf8))
        }
        WireString.appendMessageValue(media.type, to: &out)
        out.append(MessageBytes.space)
        WireString.appendMessageValue(media.subtype, to: &out)
        out.append(MessageBytes.space)
        var parameters = MIMEParameter.joiningContinuations(header.contentType?.parameters ?? [])
        if isText, !parameters.contains(where: { MessageBytes.equalsIgnoringCase($0.name, "charset") }) {
            parameters.append(MIMEParameter(name: Array("charset".utf8), value: Array("us-ascii".utf8)))
        }
        writeParameters(parameters, to: &out)
        out.append(MessageBytes.space)
        WireString.appendMessageValue(header.id, to: &out)
        out.append(MessageBytes.space)
        WireString.appendMessageValue(header.description, to: &out)
        out.append(MessageBytes.space)
        WireString.appendMessageValue(header.transferEncoding ?? Array("7bit".utf8), to: &out)
        out.append(MessageBytes.space)
        out.append(contentsOf: String(part.bodyEnd - part.bodyStart).utf8)
        if isMessage, let message = part.children.first {
            out.append(MessageBytes.space)
            MessageEnvelope(HeaderBlock(bytes: bytes, range: message.headerRange)).write(to: &out)
            out.append(MessageBytes.space)
            write(message, to: &out)
        }
        if isMessage || isText {
            out.append(MessageBytes.space)
            out.append(
                contentsOf: String(MessageBytes.count(of: MessageBytes.lf, in: bytes, range: part.bodyRange)).utf8)
        }
        guard extended else { return }
        out.append(MessageBytes.space)
        WireString.appendMessageValue(header.md5, to: &out)
        writeCommonExtensions(header, to: &out)
    }

    /// The type and subtype as written in the message when they are the ones the parser settled on, else the
    /// parser's (lowercase) defaults.
    private func mediaType(of part: MessagePart, _ header: PartHeader) -> (type: [UInt8], subtype: [UInt8]) {
        if let contentType = header.contentType, MessageBytes.lowercasedString(contentType.token) == part.type,
            MessageBytes.lowercasedString(contentType.subtype) == part.subtype
        {
            return (contentType.token, contentType.subtype)
        }
        return (Array(part.type.utf8), Array(part.subtype.utf8))
    }

    /// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
    private func writeParameters(_ parameters: [MIMEParameter], to out: inout [UInt8]) {
        if parameters.isEmpty {
            out.append(contentsOf: "NIL".utf8)
            return
        }
        out.append(UInt8(ascii: "("))
        for (index, parameter) in parameters.enumerated() {
            if index > 0 { out.append(MessageBytes.space) }
            WireString.appendMessageValue(parameter.name, to: &out)
            out.append(MessageBytes.space)
            WireString.appendMessageValue(parameter.value, to: &out)
        }
        out.append(UInt8(ascii: ")"))
    }

    /// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`.
    private func writeCommonExtensions(_ header: PartHeader, to out: inout [UInt8]) {
        out.append(MessageBytes.space)
        if let disposition = header.disposition {
            out.append(UInt8(ascii: "("))
            WireString.appendMessageValue(disposition.token, to: &out)
            out.append(MessageBytes.space)
            writeParameters(MIMEParameter.joiningContinuations(disposition.parameters), to: &out)
            out.append(UInt8(ascii: ")"))
        } else {
            out.append(contentsOf: "NIL".utf8)
        }
        out.append(MessageBytes.space)
        if let languages = header.languages {
            out.append(UInt8(ascii: "("))
            for (index, language) in languages.enumerated() {
                if index > 0 { out.append(MessageBytes.space) }
                WireString.appendMessageValue(language, to: &out)
            }
            out.append(UInt8(ascii: ")"))
        } else {
            out.append(contentsOf: "NIL".utf8)
        }
        out.append(MessageBytes.space)
        WireString.appendMessageValue(header.location, to: &out)
    }
}
