extension CommandParser {
    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")")`
    /// (RFC 9051 §6.4.5; RFC 3501 adds RFC822, RFC822.HEADER and RFC822.TEXT).
    static func parseFetch(_ buffer: inout ParseBuffer, isUID: Bool) throws(ParseError) -> Command {
        try buffer.space()
        let set = try parseSequenceSet(&buffer)
        try buffer.space()
        var attributes: [FetchAttribute] = []
        if buffer.take(UInt8(ascii: "(")) {
            repeat {
                if !attributes.isEmpty { try buffer.space() }
                attributes.append(contentsOf: try parseFetchAttribute(&buffer, allowMacros: false))
            } while !buffer.take(UInt8(ascii: ")"))
        } else {
            attributes = try parseFetchAttribute(&buffer, allowMacros: true)
        }
        var modifiers = FetchModifiers()
        if buffer.take(UInt8(ascii: " ")) {
            // RFC 4466 `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"`.
            try buffer.expect(UInt8(ascii: "("))
            repeat {
                switch try buffer.keyword() {
                case "CHANGEDSINCE" where modifiers.changedSince == nil:
                    try buffer.space()
                    modifiers.changedSince = try parseModSeq(&buffer, allowZero: false)
                case "VANISHED" where isUID && !modifiers.vanished:
                    modifiers.vanished = true
                case "VANISHED" where !isUID:
                    throw ParseError("VANISHED is only allowed with UID FETCH")
                case let other:
                    throw ParseError("Unknown or repeated FETCH modifier \(other.prefix(32))")
                }
            } while buffer.take(UInt8(ascii: " "))
            try buffer.expect(UInt8(ascii: ")"))
            // RFC 7162 §3.2.6: VANISHED needs CHANGEDSINCE.
            if modifiers.vanished && modifiers.changedSince == nil {
                throw ParseError("VANISHED requires CHANGEDSINCE")
            }
        }
        return .fetch(isUID ? .uid(set) : .sequence(set), attributes, modifiers)
    }

    /// `mod-sequence-value = 1*DIGIT` (1 to 2^63-1), or `mod-sequence-valzer` (0 too) (RFC 7162 §7).
    static func parseModSeq(_ buffer: inout ParseBuffer, allowZero: Bool) throws(ParseError) -> ModSeq {
        let value = try buffer.number64()
        guard value > 0 || allowZero else { throw ParseError("Expected a non-zero mod-sequence") }
        return ModSeq(value)
    }

    static func parseFetchAttribute(_ buffer: inout ParseBuffer, allowMacros: Bool) throws(ParseError)
        -> [FetchAttribute]
    {
        let name = try buffer.keyword()
        switch name {
        case "ALL" where allowMacros: return [.flags, .internalDate, .rfc822Size, .envelope]
        case "FAST" where allowMacros: return [.flags, .internalDate, .rfc822Size]
        case "FULL" where allowMacros: return [.flags, .internalDate, .rfc822Size, .envelope, .body]
        case "ENVELOPE": return [.envelope]
        case "FLAGS": return [.flags]
        case "INTERNALDATE": return [.internalDate]
        case "RFC822.SIZE": return [.rfc822Size]
        case "UID": return [.uid]
        case "BODYSTRUCTURE": return [.bodyStructure]
        case "RFC822": return [.bodySection(Section(), partial: nil, peek: false, legacy: .rfc822)]
        case "RFC822.HEADER":
            return [.bodySection(Section(text: .header), partial: nil, peek: true, legacy: .rfc822Header)]
        case "RFC822.TEXT": return [.bodySection(Section(text: .text), partial: nil, peek: false, legacy: .rfc822Text)]
        case "BODY", "BODY.PEEK":
            guard buffer.peek() == UInt8(ascii: "[") else {
                if name == "BODY" { return [.body] }
                throw buffer.unexpected(expected: "\"[\"")
            }
            let section = try parseSection(&buffer)
            let partial = try parsePartial(&buffer)
            return [.bodySection(section, partial: partial, peek: name == "BODY.PEEK")]
        case "BINARY", "BINARY.PEEK":
            let part = try parseSectionBinary(&buffer)
            let partial = try parsePartial(&buffer)
            return [.binary(part: part, partial: partial, peek: name == "BINARY.PEEK")]
        case "BINARY.SIZE":
            return [.binarySize(part: try parseSectionBinary(&buffer))]
        case "MODSEQ": return [.modSeq]
        case "EMAILID": return [.emailID]
        case "THREADID": return [.threadID]
        case "SAVEDATE": return [.saveDate]
        case "PREVIEW":
            // RFC 8970 `"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]`, preview-mod = "LAZY".
            if buffer.peek() == UInt8(ascii: " "), buffer.peek(1) == UInt8(ascii: "(") {
                buffer.advance()
                buffer.advance()
                repeat {
                    guard try buffer.keyword() == "LAZY" else { throw ParseError("Unknown PREVIEW modifier") }
                } while buffer.take(UInt8(ascii: " "))
                try buffer.expect(UInt8(ascii: ")"))
            }
            return [.preview]
        default:
            throw ParseError("Unknown FETCH item \(name.prefix(32))")
        }
    }

    /// `section = "[" [section-spec] "]"`,
    /// `section-spec = section-msgtext / (section-part ["." section-text])`.
    static func parseSection(_ buffer: inout ParseBuffer) throws(ParseError) -> Section {
        try buffer.expect(UInt8(ascii: "["))
        var section = Section()
        if buffer.take(UInt8(ascii: "]")) { return section }
        if let byte = buffer.peek(), byte >= 0x30, byte <= 0x39 {
            section.part = try parseSectionPart(&buffer)
            if buffer.take(UInt8(ascii: ".")) {
                section.text = try parseSectionText(&buffer, allowMIME: true)
            }
        } else {
            section.text = try parseSectionText(&buffer, allowMIME: false)
        }
        try buffer.expect(UInt8(ascii: "]"))
        return section
    }

    /// `section-part = nz-number *("." nz-number)`; stops before a "." that is followed by a letter.
    static func parseSectionPart(_ buffer: inout ParseBuffer) throws(ParseError) -> [Int] {
        var part = [Int(try buffer.nzNumber())]
        while buffer.peek() == UInt8(ascii: "."), let next = buffer.peek(1), next >= 0x30, next <= 0x39 {
            buffer.advance()
            part.append(Int(try buffer.nzNumber()))
            guard part.count <= 64 else { throw ParseError("Section part nested too deeply") }
        }
        return part
    }

    /// `section-text = section-msgtext / "MIME"`,
    /// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`.
    static func parseSectionText(_ buffer: inout ParseBuffer, allowMIME: Bool) throws(ParseError) -> SectionText {
        let name = try buffer.keyword()
        switch name {
        case "HEADER": return .header
        case "TEXT": return .text
        case "MIME" where allowMIME: return .mime
        case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
            try buffer.space()
            try buffer.expect(UInt8(ascii: "("))
            var names: [String] = []
            repeat {
                if !names.isEmpty { try buffer.space() }
                names.append(try buffer.astring("a header field name"))
            } while !buffer.take(UInt8(ascii: ")"))
            return name == "HEADER.FIELDS" ? .headerFields(names) : .headerFieldsNot(names)
        default:
            throw ParseError("Invalid section \(name.prefix(32))")
        }
    }

    /// `section-binary = "[" [section-part] "]"`.
    static func parseSectionBinary(_ buffer: inout ParseBuffer) throws(ParseError) -> [Int] {
        try buffer.expect(UInt8(ascii: "["))
        if buffer.take(UInt8(ascii: "]")) { return [] }
        let part = try parseSectionPart(&buffer)
        try buffer.expect(UInt8(ascii: "]"))
        return part
    }

    /// `partial = "<" number64 "." nz-number64 ">"`.
    static func parsePartial(_ buffer: inout ParseBuffer) throws(ParseError) -> Partial? {
        guard buffer.take(UInt8(ascii: "<")) else { return nil }
        let origin = try buffer.number64()
        try buffer.expect(UInt8(ascii: "."))
        let length = try buffer.number64()
        guard length > 0 else { throw ParseError("Partial length must not be zero") }
        try buffer.expect(UInt8(ascii: ">"))
        guard origin <= Int64(Int32.max), length <= Int64(Int32.max) else { throw ParseError("Partial out of range") }
        return Partial(origin: Int(origin), length: Int(length))
    }
}
