/// Turns one framed command into a `Command` (RFC 9051 §9 `command`, RFC 3501 §9 for the IMAP4rev1-only forms).
///
/// The parser is pure: no state, no I/O. A failure keeps the tag when one could be read, so the session can answer
/// `tag BAD …` instead of `* BAD …`.
enum CommandParser {
    enum Result: Equatable {
        case command(Tag, Command)
        case failure(Tag?, ParseError)
    }

    static func parse(_ bytes: [UInt8]) -> Result {
        var buffer = ParseBuffer(bytes)
        let tag: Tag
        do {
            tag = try parseTag(&buffer)
        } catch {
            return .failure(nil, error)
        }
        do {
            try buffer.space()
            let command = try parseCommand(&buffer)
            try buffer.expectEnd()
            return .command(tag, command)
        } catch {
            return .failure(tag, error)
        }
    }

    /// `tag = 1*<any ASTRING-CHAR except "+">`.
    static func parseTag(_ buffer: inout ParseBuffer) throws(ParseError) -> Tag {
        let start = buffer.index
        while let byte = buffer.peek(), isAtomChar(byte) || byte == UInt8(ascii: "]"), byte != UInt8(ascii: "+") {
            buffer.advance()
        }
        guard buffer.index > start else {
            throw buffer.isAtEnd ? ParseError("Empty command line") : ParseError("Invalid or missing tag")
        }
        guard buffer.peek() == nil || buffer.peek() == UInt8(ascii: " ") else {
            throw ParseError("Invalid character in tag")
        }
        return String(decoding: buffer.bytes[start..<buffer.index], as: UTF8.self)
    }

    static func parseCommand(_ buffer: inout ParseBuffer) throws(ParseError) -> Command {
        let name = try buffer.keyword()
        switch name {
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "STARTTLS": return .starttls
        case "COMPRESS":
            try buffer.space()
            return .compress(mechanism: try buffer.atom("a compression mechanism").uppercased())
        case "LOGIN":
            try buffer.space()
            let user = try buffer.astring("a user name")
            try buffer.space()
            let password = try buffer.astring("a password")
            return .login(user: user, password: Secret(password))
        case "AUTHENTICATE":
            try buffer.space()
            let mechanism = try buffer.atom("a SASL mechanism").uppercased()
            var initial: Secret? = nil
            if buffer.take(UInt8(ascii: " ")) {
                let start = buffer.index
                while let byte = buffer.peek(), isBase64Char(byte) || byte == UInt8(ascii: "=") { buffer.advance() }
                guard buffer.index > start else { throw buffer.unexpected(expected: "a base64 initial response") }
                initial = Secret(String(decoding: buffer.bytes[start..<buffer.index], as: UTF8.self))
            }
            return .authenticate(mechanism: mechanism, initialResponse: initial)
        case "ENABLE":
            var names: [String] = []
            repeat {
                try buffer.space()
                names.append(try buffer.atom("a capability").uppercased())
            } while buffer.peek() == UInt8(ascii: " ")
            return .enable(names)
        case "ID":
            try buffer.space()
            return .id(try parseIDParameters(&buffer))
        case "NAMESPACE": return .namespace
        case "UNAUTHENTICATE": return .unauthenticate
        case "SELECT", "EXAMINE":
            try buffer.space()
            let mailbox = try parseMailbox(&buffer)
            let parameters = try parseSelectParameters(&buffer)
            return .select(mailbox, readOnly: name == "EXAMINE", parameters: parameters)
        case "CREATE":
            try buffer.space()
            let mailbox = try parseMailbox(&buffer)
            var use: [String] = []
            if buffer.take(UInt8(ascii: " ")) {
                // RFC 4466 `create-params = SP "(" create-param *(SP create-param) ")"`; RFC 6154 `"USE" SP "("
                // [use-attr *(SP use-attr)] ")"`, each attribute a backslash and an atom.
                try buffer.expect(UInt8(ascii: "("))
                repeat {
                    switch try buffer.keyword() {
                    case "USE":
                        try buffer.space()
                        try buffer.expect(UInt8(ascii: "("))
                        while !buffer.take(UInt8(ascii: ")")) {
                            if !use.isEmpty { try buffer.space() }
                            try buffer.expect(UInt8(ascii: "\\"))
                            use.append("\\" + (try buffer.atom("a special-use attribute")))
                            guard use.count <= 16 else { throw ParseError("Too many special-use attributes") }
                        }
                    case let other:
                        throw ParseError("Unknown CREATE parameter \(other.prefix(32))")
                    }
                } while buffer.take(UInt8(ascii: " "))
                try buffer.expect(UInt8(ascii: ")"))
            }
            return .create(mailbox, use: use)
        case "DELETE":
            try buffer.space()
            return .delete(try parseMailbox(&buffer))
        case "RENAME":
            try buffer.space()
            let from = try parseMailbox(&buffer)
            try buffer.space()
            return .rename(from: from, to: try parseMailbox(&buffer))
        case "SUBSCRIBE":
            try buffer.space()
            return .subscribe(try parseMailbox(&buffer))
        case "UNSUBSCRIBE":
            try buffer.space()
            return .unsubscribe(try parseMailbox(&buffer))
        case "LIST": return .list(try parseList(&buffer))
        case "LSUB":
            try buffer.space()
            let reference = try parseMailbox(&buffer)
            try buffer.space()
            return .lsub(reference: reference, pattern: MailboxArgument(try buffer.listMailbox()))
        case "STATUS": return try parseStatus(&buffer)
        case "GETMETADATA": return try parseGetMetadata(&buffer)
        case "NOTIFY": return try parseNotify(&buffer)
        case "CANCELUPDATE":
            // RFC 5267 `"CANCELUPDATE" 1*(SP quoted)`.
            var tags: [String] = []
            repeat {
                try buffer.space()
                tags.append(String(decoding: try buffer.quotedBytes(), as: UTF8.self))
                guard tags.count <= 100 else { throw ParseError("Too many tags") }
            } while buffer.peek() == UInt8(ascii: " ")
            return .cancelUpdate(tags)
        case "SETMETADATA": return try parseSetMetadata(&buffer)
        case "APPEND": return try parseAppend(&buffer)
        case "IDLE": return .idle
        case "GETQUOTA":
            try buffer.space()
            return .getQuota(root: try buffer.astring("a quota root"))
        case "GETQUOTAROOT":
            try buffer.space()
            return .getQuotaRoot(try parseMailbox(&buffer))
        case "SETQUOTA":
            // RFC 9208 §4.3: `SETQUOTA root (resource limit …)`; parsed so it can be refused clearly.
            try buffer.space()
            let root = try buffer.astring("a quota root")
            try buffer.space()
            try buffer.expect(UInt8(ascii: "("))
            var first = true
            while !buffer.take(UInt8(ascii: ")")) {
                if !first { try buffer.space() }
                first = false
                _ = try buffer.atom("a quota resource")
                try buffer.space()
                _ = try buffer.number64()
            }
            return .setQuota(root: root)
        case "CHECK": return .check
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "EXPUNGE": return .expunge(uids: nil)
        case "SEARCH": return try parseSearch(&buffer, isUID: false)
        case "SORT": return try parseSort(&buffer, isUID: false)
        case "THREAD": return try parseThread(&buffer, isUID: false)
        case "FETCH": return try parseFetch(&buffer, isUID: false)
        case "STORE": return try parseStore(&buffer, isUID: false)
        case "COPY", "MOVE":
            try buffer.space()
            let set = MessageSelector.sequence(try parseSequenceSet(&buffer))
            try buffer.space()
            let mailbox = try parseMailbox(&buffer)
            return name == "COPY" ? .copy(set, mailbox) : .move(set, mailbox)
        case "UID":
            try buffer.space()
            return try parseUIDCommand(&buffer)
        default:
            throw ParseError("Unknown command \(name.prefix(32))")
        }
    }

    /// `uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)`.
    static func parseUIDCommand(_ buffer: inout ParseBuffer) throws(ParseError) -> Command {
        let name = try buffer.keyword()
        switch name {
        case "FETCH": return try parseFetch(&buffer, isUID: true)
        case "STORE": return try parseStore(&buffer, isUID: true)
        case "SEARCH": return try parseSearch(&buffer, isUID: true)
        case "SORT": return try parseSort(&buffer, isUID: true)
        case "THREAD": return try parseThread(&buffer, isUID: true)
        case "COPY", "MOVE":
            try buffer.space()
            let set = MessageSelector.uid(try parseSequenceSet(&buffer))
            try buffer.space()
            let mailbox = try parseMailbox(&buffer)
            return name == "COPY" ? .copy(set, mailbox) : .move(set, mailbox)
        case "EXPUNGE":
            try buffer.space()
            return .expunge(uids: try parseSequenceSet(&buffer))
        default:
            throw ParseError("Unknown UID command \(name.prefix(32))")
        }
    }

    /// `mailbox = "INBOX" / astring`.
    static func parseMailbox(_ buffer: inout ParseBuffer) throws(ParseError) -> MailboxArgument {
        MailboxArgument(try buffer.astring("a mailbox name"))
    }

    /// SELECT/EXAMINE parameters (RFC 4466 `select-params = SP "(" select-param *(SP select-param) ")"`):
    /// `CONDSTORE` and `QRESYNC (uidvalidity modseq [known-uids] [seq-match-data])` (RFC 7162 §7). The
    /// seq-match-data is checked for syntax and not used: the store keeps every expunge, so the answer is exact
    /// without it.
    static func parseSelectParameters(_ buffer: inout ParseBuffer) throws(ParseError) -> SelectParameters {
        var parameters = SelectParameters()
        guard buffer.take(UInt8(ascii: " ")) else { return parameters }
        try buffer.expect(UInt8(ascii: "("))
        if buffer.take(UInt8(ascii: ")")) { return parameters }
        repeat {
            switch try buffer.keyword() {
            case "CONDSTORE": parameters.condstore = true
            case "QRESYNC" where parameters.qresync == nil:
                try buffer.space()
                try buffer.expect(UInt8(ascii: "("))
                let uidValidity = try buffer.nzNumber()
                try buffer.space()
                let modSeq = try parseModSeq(&buffer, allowZero: false)
                var qresync = SelectParameters.QResync(uidValidity: uidValidity, modSeq: modSeq)
                if buffer.take(UInt8(ascii: " ")) {
                    if buffer.peek() != UInt8(ascii: "(") {
                        qresync.knownUIDs = try parseStarlessSet(&buffer)
                        _ = buffer.take(UInt8(ascii: " "))
                    }
                    if buffer.take(UInt8(ascii: "(")) {
                        // seq-match-data = "(" known-sequence-set SP known-uid-set ")"
                        let sequences = try parseStarlessSet(&buffer)
                        try buffer.space()
                        let uids = try parseStarlessSet(&buffer)
                        try buffer.expect(UInt8(ascii: ")"))
                        guard sequences.count == uids.count else {
                            throw ParseError("QRESYNC sequence match data of different lengths")
                        }
                    }
                }
                try buffer.expect(UInt8(ascii: ")"))
                parameters.qresync = qresync
            case let other:
                throw ParseError("Unknown select parameter \(other.prefix(32))")
            }
        } while buffer.take(UInt8(ascii: " "))
        try buffer.expect(UInt8(ascii: ")"))
        return parameters
    }

    /// A `sequence-set` where `*` is not allowed (RFC 7162 `known-uids`), as ranges.
    static func parseStarlessSet(_ buffer: inout ParseBuffer) throws(ParseError) -> UIDRanges {
        let set = try parseSequenceSet(&buffer)
        guard !set.isLastSearchResult, !set.containsStar else {
            throw ParseError("\"*\" and \"$\" are not allowed here")
        }
        return UIDRanges(ranges: set.resolved(star: 0))
    }

    /// Skips a balanced `( … )` group, honouring strings; returns its raw text.
    static func parseParenthesisedBlob(_ buffer: inout ParseBuffer) throws(ParseError) -> ArraySlice<UInt8> {
        let start = buffer.index
        try buffer.expect(UInt8(ascii: "("))
        var level = 1
        while level > 0 {
            guard let byte = buffer.peek() else { throw ParseError("Unbalanced parentheses") }
            switch byte {
            case UInt8(ascii: "("):
                level += 1
                buffer.advance()
            case UInt8(ascii: ")"):
                level -= 1
                buffer.advance()
            case UInt8(ascii: "\""), UInt8(ascii: "{"):
                _ = try buffer.stringBytes()
            default:
                buffer.advance()
            }
        }
        return buffer.bytes[start..<buffer.index]
    }

    /// `id-params-list = "(" *(string SP nstring) ")" / nil` (RFC 2971 §4).
    static func parseIDParameters(_ buffer: inout ParseBuffer) throws(ParseError) -> [IDField]? {
        if buffer.takeKeyword("NIL") { return nil }
        try buffer.expect(UInt8(ascii: "("))
        var fields: [IDField] = []
        while !buffer.take(UInt8(ascii: ")")) {
            if !fields.isEmpty { try buffer.space() }
            let key = try buffer.utf8(buffer.stringBytes(), "an ID field name")
            try buffer.space()
            let value = try buffer.nstring()
            fields.append(IDField(key: key, value: value))
            guard fields.count <= 30 else { throw ParseError("Too many ID fields") }  // RFC 2971 §3.3
        }
        return fields
    }

    /// `sequence-set`, or `$` for the saved search result (RFC 5182 `seq-last-command`).
    static func parseSequenceSet(_ buffer: inout ParseBuffer) throws(ParseError) -> NumberSet {
        if buffer.take(UInt8(ascii: "$")) { return .lastSearchResult }
        var ranges: [NumberSet.Range] = []
        repeat {
            let first = try parseSequenceBound(&buffer)
            if buffer.take(UInt8(ascii: ":")) {
                ranges.append(.init(first, try parseSequenceBound(&buffer)))
            } else {
                ranges.append(.init(first, first))
            }
        } while buffer.take(UInt8(ascii: ","))
        return NumberSet(ranges: ranges)
    }

    static func parseSequenceBound(_ buffer: inout ParseBuffer) throws(ParseError) -> NumberSet.Bound {
        if buffer.take(UInt8(ascii: "*")) { return .star }
        guard let byte = buffer.peek(), byte >= 0x30, byte <= 0x39 else {
            throw buffer.unexpected(expected: "a sequence set")
        }
        let value = try buffer.number()
        guard value > 0 else { throw ParseError("Invalid sequence set: 0 is not a valid message number") }
        return .number(value)
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`.
    static func parseFlagList(_ buffer: inout ParseBuffer) throws(ParseError) -> [Flag] {
        try buffer.expect(UInt8(ascii: "("))
        var flags: [Flag] = []
        while !buffer.take(UInt8(ascii: ")")) {
            if !flags.isEmpty { try buffer.space() }
            flags.append(try parseFlag(&buffer))
        }
        return flags
    }

    /// `flag = "\" atom / atom`.
    static func parseFlag(_ buffer: inout ParseBuffer) throws(ParseError) -> Flag {
        if buffer.take(UInt8(ascii: "\\")) {
            return Flag(token: "\\" + (try buffer.atom("a flag name")))
        }
        return Flag(token: try buffer.atom("a flag"))
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`.
    static func parseDateTime(_ buffer: inout ParseBuffer) throws(ParseError) -> InternalDate {
        try buffer.expect(UInt8(ascii: "\""))
        _ = buffer.take(UInt8(ascii: " "))
        let day = try parseDigits(&buffer, min: 1, max: 2)
        try buffer.expect(UInt8(ascii: "-"))
        let month = try parseMonth(&buffer)
        try buffer.expect(UInt8(ascii: "-"))
        let year = try parseDigits(&buffer, min: 4, max: 4)
        try buffer.space()
        let hour = try parseDigits(&buffer, min: 2, max: 2)
        try buffer.expect(UInt8(ascii: ":"))
        let minute = try parseDigits(&buffer, min: 2, max: 2)
        try buffer.expect(UInt8(ascii: ":"))
        let second = try parseDigits(&buffer, min: 2, max: 2)
        try buffer.space()
        let sign: Int
        if buffer.take(UInt8(ascii: "+")) {
            sign = 1
        } else if buffer.take(UInt8(ascii: "-")) {
            sign = -1
        } else {
            throw buffer.unexpected(expected: "a time zone")
        }
        let zone = try parseDigits(&buffer, min: 4, max: 4)
        try buffer.expect(UInt8(ascii: "\""))
        guard zone % 100 < 60,
            let date = InternalDate(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second,
                zoneMinutes: sign * (zone / 100 * 60 + zone % 100))
        else { throw ParseError("Invalid date-time") }
        return date
    }

    /// `date = date-text / DQUOTE date-text DQUOTE`, `date-text = date-day "-" date-month "-" date-year`.
    static func parseDate(_ buffer: inout ParseBuffer) throws(ParseError) -> IMAPDate {
        let quoted = buffer.take(UInt8(ascii: "\""))
        let day = try parseDigits(&buffer, min: 1, max: 2)
        try buffer.expect(UInt8(ascii: "-"))
        let month = try parseMonth(&buffer)
        try buffer.expect(UInt8(ascii: "-"))
        let year = try parseDigits(&buffer, min: 4, max: 4)
        if quoted { try buffer.expect(UInt8(ascii: "\"")) }
        let date = IMAPDate(year: year, month: month, day: day)
        guard date.isValid else { throw ParseError("Invalid date") }
        return date
    }

    static func parseDigits(_ buffer: inout ParseBuffer, min: Int, max: Int) throws(ParseError) -> Int {
        var value = 0
        var count = 0
        while count < max, let byte = buffer.peek(), byte >= 0x30, byte <= 0x39 {
            value = value * 10 + Int(byte - 0x30)
            count += 1
            buffer.advance()
        }
        guard count >= min else { throw buffer.unexpected(expected: "\(min) digit(s)") }
        return value
    }

    static func parseMonth(_ buffer: inout ParseBuffer) throws(ParseError) -> Int {
        guard let a = buffer.peek(), let b = buffer.peek(1), let c = buffer.peek(2) else {
            throw buffer.unexpected(expected: "a month name")
        }
        let name = String(decoding: [asciiUpper(a), asciiLower(b), asciiLower(c)], as: UTF8.self)
        guard let index = IMAPDate.monthNames.firstIndex(of: name) else { throw ParseError("Invalid month name") }
        buffer.advance(3)
        return index + 1
    }
}

@inline(__always) func isBase64Char(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"),
        UInt8(ascii: "+"), UInt8(ascii: "/"):
        true
    default: false
    }
}
