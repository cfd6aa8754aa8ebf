extension CommandParser {
    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]` (RFC 9051 §6.3.9,
    /// RFC 5258 §3).
    static func parseList(_ buffer: inout ParseBuffer) throws(ParseError) -> ListCommand {
        try buffer.space()
        var selectOptions: ListCommand.SelectOptions = []
        var isExtended = false
        if buffer.take(UInt8(ascii: "(")) {
            isExtended = true
            while !buffer.take(UInt8(ascii: ")")) {
                if !selectOptions.isEmpty || buffer.peek() == UInt8(ascii: " ") { try buffer.space() }
                switch try buffer.keyword() {
                case "SUBSCRIBED": selectOptions.insert(.subscribed)
                case "REMOTE": selectOptions.insert(.remote)
                case "RECURSIVEMATCH": selectOptions.insert(.recursiveMatch)
                case "SPECIAL-USE": selectOptions.insert(.specialUse)
                case let other: throw ParseError("Unknown LIST selection option \(other.prefix(32))")
                }
            }
            // RFC 5258 §3: RECURSIVEMATCH needs a base option (SUBSCRIBED or SPECIAL-USE).
            if selectOptions.contains(.recursiveMatch), selectOptions.isDisjoint(with: [.subscribed, .specialUse]) {
                throw ParseError("RECURSIVEMATCH requires another selection option")
            }
            try buffer.space()
        }
        let reference = try parseMailbox(&buffer)
        try buffer.space()
        var patterns: [MailboxArgument] = []
        if buffer.take(UInt8(ascii: "(")) {
            isExtended = true
            repeat {
                if !patterns.isEmpty { try buffer.space() }
                patterns.append(MailboxArgument(try buffer.listMailbox()))
            } while !buffer.take(UInt8(ascii: ")"))
        } else {
            patterns.append(MailboxArgument(try buffer.listMailbox()))
        }
        var returnOptions = ListCommand.ReturnOptions()
        if buffer.take(UInt8(ascii: " ")) {
            isExtended = true
            guard buffer.takeKeyword("RETURN") else { throw buffer.unexpected(expected: "RETURN") }
            try buffer.space()
            try buffer.expect(UInt8(ascii: "("))
            var first = true
            while !buffer.take(UInt8(ascii: ")")) {
                if !first { try buffer.space() }
                first = false
                switch try buffer.keyword() {
                case "SUBSCRIBED": returnOptions.subscribed = true
                case "CHILDREN": returnOptions.children = true
                case "SPECIAL-USE": returnOptions.specialUse = true
                case "STATUS":
                    try buffer.space()
                    returnOptions.status = try parseStatusAttributes(&buffer)
                case let other: throw ParseError("Unknown LIST return option \(other.prefix(32))")
                }
            }
        }
        return ListCommand(
            selectOptions: selectOptions, reference: reference, patterns: patterns, returnOptions: returnOptions,
            isExtended: isExtended)
    }

    /// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`.
    static func parseStatus(_ buffer: inout ParseBuffer) throws(ParseError) -> Command {
        try buffer.space()
        let mailbox = try parseMailbox(&buffer)
        try buffer.space()
        return .status(mailbox, try parseStatusAttributes(&buffer))
    }

    static func parseStatusAttributes(_ buffer: inout ParseBuffer) throws(ParseError) -> [StatusAttribute] {
        try buffer.expect(UInt8(ascii: "("))
        var attributes: [StatusAttribute] = []
        repeat {
            if !attributes.isEmpty { try buffer.space() }
            let name = try buffer.keyword()
            guard let attribute = StatusAttribute(rawValue: name) else {
                throw ParseError("Unknown STATUS item \(name.prefix(32))")
            }
            attributes.append(attribute)
        } while !buffer.take(UInt8(ascii: ")"))
        return attributes
    }

    /// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal` (RFC 9051 §6.3.12; `literal8` from RFC 3516).
    /// MULTIAPPEND (RFC 3502): `*(SP [flag-list SP] [date-time SP] literal)` after the first message.
    static func parseAppend(_ buffer: inout ParseBuffer) throws(ParseError) -> Command {
        try buffer.space()
        let mailbox = try parseMailbox(&buffer)
        try buffer.space()
        var first = try parseAppendMessage(&buffer, mailbox: mailbox)
        while buffer.take(UInt8(ascii: " ")) {
            first.more.append(try parseAppendMessage(&buffer, mailbox: mailbox))
            guard first.more.count < 1000 else { throw ParseError("Too many messages in one APPEND") }
        }
        return .append(first)
    }

    /// `[flag-list SP] [date-time SP] literal`.
    static func parseAppendMessage(_ buffer: inout ParseBuffer, mailbox: MailboxArgument) throws(ParseError)
        -> AppendCommand
    {
        var flags: [Flag] = []
        var date: InternalDate? = nil
        if buffer.peek() == UInt8(ascii: "(") {
            flags = try parseFlagList(&buffer)
            try buffer.space()
        }
        if buffer.peek() == UInt8(ascii: "\"") {
            date = try parseDateTime(&buffer)
            try buffer.space()
        }
        // RFC 4469 §5: `"CATENATE" SP "(" cat-part *(SP cat-part) ")"`.
        if buffer.takeKeyword("CATENATE") {
            try buffer.space()
            try buffer.expect(UInt8(ascii: "("))
            var parts: [AppendCommand.CatenatePart] = []
            var binary = false
            repeat {
                switch try buffer.keyword() {
                case "TEXT":
                    try buffer.space()
                    guard buffer.peek() == UInt8(ascii: "{") || buffer.peek() == UInt8(ascii: "~") else {
                        throw buffer.unexpected(expected: "a literal")
                    }
                    let literal = try buffer.literalBytes()
                    binary = binary || literal.isBinary
                    parts.append(.text(Array(literal.bytes)))
                case "UTF8":
                    // RFC 6855 §4: `cat-part =/ utf8-literal`.
                    try buffer.space()
                    try buffer.expect(UInt8(ascii: "("))
                    guard buffer.peek() == UInt8(ascii: "~") else { throw buffer.unexpected(expected: "a literal8") }
                    let literal = try buffer.literalBytes()
                    binary = true
                    parts.append(.text(Array(literal.bytes)))
                    try buffer.expect(UInt8(ascii: ")"))
                case "URL":
                    try buffer.space()
                    parts.append(.url(try buffer.astring("an IMAP URL")))
                case let other:
                    throw ParseError("Unknown CATENATE part \(other.prefix(32))")
                }
                guard parts.count <= 1000 else { throw ParseError("Too many CATENATE parts") }
            } while buffer.take(UInt8(ascii: " "))
            try buffer.expect(UInt8(ascii: ")"))
            var command = AppendCommand(mailbox: mailbox, flags: flags, date: date, message: [], isBinary: binary)
            command.catenate = parts
            return command
        }
        // RFC 6855 §4: `utf8-literal = "UTF8" SP "(" literal8 ")"`, a message with UTF-8 headers.
        let utf8 = buffer.takeKeyword("UTF8")
        if utf8 {
            try buffer.space()
            try buffer.expect(UInt8(ascii: "("))
            guard buffer.peek() == UInt8(ascii: "~") else { throw buffer.unexpected(expected: "a literal8") }
        }
        guard buffer.peek() == UInt8(ascii: "{") || buffer.peek() == UInt8(ascii: "~") else {
            throw buffer.unexpected(expected: "a literal with the message")
        }
        let literal = try buffer.literalBytes()
        if utf8 { try buffer.expect(UInt8(ascii: ")")) }
        return AppendCommand(
            mailbox: mailbox, flags: flags, date: date, message: Array(literal.bytes), isBinary: literal.isBinary)
    }

    /// `store = "STORE" SP sequence-set SP store-att-flags`,
    /// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`.
    /// With RFC 7162 `store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer` between the set and the action.
    static func parseStore(_ buffer: inout ParseBuffer, isUID: Bool) throws(ParseError) -> Command {
        try buffer.space()
        let set = try parseSequenceSet(&buffer)
        try buffer.space()
        var unchangedSince: ModSeq? = nil
        if buffer.take(UInt8(ascii: "(")) {
            repeat {
                switch try buffer.keyword() {
                case "UNCHANGEDSINCE" where unchangedSince == nil:
                    try buffer.space()
                    unchangedSince = try parseModSeq(&buffer, allowZero: true)
                case let other:
                    throw ParseError("Unknown or repeated STORE modifier \(other.prefix(32))")
                }
            } while buffer.take(UInt8(ascii: " "))
            try buffer.expect(UInt8(ascii: ")"))
            try buffer.space()
        }
        let kind: StoreAction.Kind
        if buffer.take(UInt8(ascii: "+")) {
            kind = .add
        } else if buffer.take(UInt8(ascii: "-")) {
            kind = .remove
        } else {
            kind = .replace
        }
        let silent: Bool
        switch try buffer.keyword() {
        case "FLAGS": silent = false
        case "FLAGS.SILENT": silent = true
        case let other: throw ParseError("Unknown STORE item \(other.prefix(32))")
        }
        try buffer.space()
        var flags: [Flag] = []
        if buffer.peek() == UInt8(ascii: "(") {
            flags = try parseFlagList(&buffer)
        } else {
            repeat {
                flags.append(try parseFlag(&buffer))
            } while buffer.take(UInt8(ascii: " "))
        }
        let action = StoreAction(kind: kind, silent: silent, flags: flags, unchangedSince: unchangedSince)
        return .store(isUID ? .uid(set) : .sequence(set), action)
    }
}
