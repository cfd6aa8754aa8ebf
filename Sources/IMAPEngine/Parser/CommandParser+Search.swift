extension CommandParser {
    /// `sort = ["UID" SP] "SORT" [search-return-opts] SP sort-criteria SP search-criteria` (RFC 5256 §5, RFC 5267
    /// §3 ESORT), `sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"`, `sort-criterion = ["REVERSE" SP]
    /// sort-key`, `search-criteria = charset 1*(SP search-key)`.
    static func parseSort(_ buffer: inout ParseBuffer, isUID: Bool) throws(ParseError) -> Command {
        try buffer.space()
        let returned = try parseReturnOptions(&buffer, allowSave: true)
        try buffer.expect(UInt8(ascii: "("))
        var criteria: [SortCriterion] = []
        repeat {
            let reverse = buffer.takeKeyword("REVERSE")
            if reverse { try buffer.space() }
            let name = try buffer.keyword()
            guard let key = SortCriterion.Key(rawValue: name) else {
                throw ParseError("Unknown sort key \(name.prefix(32))")
            }
            criteria.append(SortCriterion(key, reverse: reverse))
            guard criteria.count <= 16 else { throw ParseError("Too many sort criteria") }
        } while buffer.take(UInt8(ascii: " "))
        try buffer.expect(UInt8(ascii: ")"))
        try buffer.space()
        let (charset, key) = try parseSearchCriteria(&buffer)
        return .sort(
            isUID: isUID,
            SortCommand(
                returnOptions: returned?.options, criteria: criteria, charset: charset, key: key,
                partial: returned?.partial))
    }

    /// `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria` (RFC 5256 §5).
    static func parseThread(_ buffer: inout ParseBuffer, isUID: Bool) throws(ParseError) -> Command {
        try buffer.space()
        let name = try buffer.keyword()
        guard let algorithm = ThreadCommand.Algorithm(rawValue: name) else {
            throw ParseError("Unknown threading algorithm \(name.prefix(32))")
        }
        try buffer.space()
        let (charset, key) = try parseSearchCriteria(&buffer)
        return .thread(isUID: isUID, ThreadCommand(algorithm: algorithm, charset: charset, key: key))
    }

    /// `search-criteria = charset 1*(SP search-key)` (RFC 5256 §5).
    static func parseSearchCriteria(_ buffer: inout ParseBuffer) throws(ParseError) -> (String, SearchKey) {
        let charset = try parseCharset(&buffer)
        try buffer.space()
        return (charset, try parseSearchKeys(&buffer))
    }

    /// `charset = atom / quoted`.
    static func parseCharset(_ buffer: inout ParseBuffer) throws(ParseError) -> String {
        if buffer.peek() == UInt8(ascii: "\"") { return try buffer.utf8(buffer.quotedBytes(), "a charset") }
        return try buffer.atom("a charset")
    }

    /// `1*(SP search-key)` after the first: all of them must match.
    static func parseSearchKeys(_ buffer: inout ParseBuffer) throws(ParseError) -> SearchKey {
        var keys = [try parseSearchKey(&buffer)]
        while buffer.take(UInt8(ascii: " ")) {
            keys.append(try parseSearchKey(&buffer))
        }
        return keys.count == 1 ? keys[0] : .and(keys)
    }

    /// `[SP] "RETURN" SP "(" [return-opt *(SP return-opt)] ")" SP` (RFC 4731 §3.1), or nil when absent.
    static func parseReturnOptions(_ buffer: inout ParseBuffer, allowSave: Bool) throws(ParseError)
        -> SearchReturn?
    {
        guard buffer.takeKeyword("RETURN") else { return nil }
        try buffer.space()
        try buffer.expect(UInt8(ascii: "("))
        var options: SearchReturnOptions = []
        var partial: ClosedRange<UInt32>?
        var first = true
        while !buffer.take(UInt8(ascii: ")")) {
            if !first { try buffer.space() }
            first = false
            switch try buffer.keyword() {
            case "MIN": options.insert(.min)
            case "MAX": options.insert(.max)
            case "ALL": options.insert(.all)
            case "COUNT": options.insert(.count)
            case "SAVE" where allowSave: options.insert(.save)
            // RFC 5267: CONTEXT is a hint (results are not cached, so it changes nothing); UPDATE; PARTIAL m:n.
            case "CONTEXT": break
            case "UPDATE": options.insert(.update)
            case "PARTIAL" where partial == nil:
                try buffer.space()
                let a = try buffer.nzNumber()
                try buffer.expect(UInt8(ascii: ":"))
                let b = try buffer.nzNumber()
                partial = min(a, b)...max(a, b)
                options.insert(.partial)
            case let other: throw ParseError("Unsupported return option \(other.prefix(32))")
            }
        }
        try buffer.space()
        // RFC 5267 §4.4: PARTIAL and ALL exclude each other.
        if partial != nil, options.contains(.all) { throw ParseError("PARTIAL and ALL exclude each other") }
        // RFC 4731 §3.1: "()" means ALL (CONTEXT alone too: it returns nothing of its own).
        return SearchReturn(options: options.isEmpty ? .all : options, partial: partial)
    }

    /// `search = "SEARCH" [search-return-opts] SP search-program` (RFC 9051 §6.4.4, RFC 4731 §3.1).
    static func parseSearch(_ buffer: inout ParseBuffer, isUID: Bool) throws(ParseError) -> Command {
        try buffer.space()
        let returned = try parseReturnOptions(&buffer, allowSave: true)
        var charset: String? = nil
        if buffer.takeKeyword("CHARSET") {
            try buffer.space()
            charset = try parseCharset(&buffer)
            try buffer.space()
        }
        let key = try parseSearchKeys(&buffer)
        return .search(
            isUID: isUID,
            SearchCommand(returnOptions: returned?.options, charset: charset, key: key, partial: returned?.partial))
    }

    /// One `search-key` (RFC 9051 §9, plus RFC 3501's NEW, OLD and RECENT).
    static func parseSearchKey(_ buffer: inout ParseBuffer) throws(ParseError) -> SearchKey {
        buffer.depth += 1
        defer { buffer.depth -= 1 }
        guard buffer.depth <= ParseBuffer.maxDepth else { throw ParseError("Search program nested too deeply") }

        if buffer.take(UInt8(ascii: "(")) {
            var keys = [try parseSearchKey(&buffer)]
            while buffer.take(UInt8(ascii: " ")) {
                keys.append(try parseSearchKey(&buffer))
            }
            try buffer.expect(UInt8(ascii: ")"))
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if let byte = buffer.peek(), (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "*") {
            return .sequence(try parseSequenceSet(&buffer))
        }
        if buffer.take(UInt8(ascii: "$")) { return .sequence(.lastSearchResult) }
        let name = try buffer.keyword()
        func argument() throws(ParseError) -> String {
            try buffer.space()
            return try buffer.astring("a search string")
        }
        func date() throws(ParseError) -> IMAPDate {
            try buffer.space()
            return try parseDate(&buffer)
        }
        switch name {
        case "ALL": return .all
        case "ANSWERED": return .answered
        case "DELETED": return .deleted
        case "DRAFT": return .draft
        case "FLAGGED": return .flagged
        case "SEEN": return .seen
        case "RECENT": return .recent
        case "NEW": return .new
        case "OLD": return .old
        case "UNANSWERED": return .unanswered
        case "UNDELETED": return .undeleted
        case "UNDRAFT": return .undraft
        case "UNFLAGGED": return .unflagged
        case "UNSEEN": return .unseen
        case "KEYWORD", "UNKEYWORD":
            try buffer.space()
            let flag = try buffer.atom("a keyword")
            return name == "KEYWORD" ? .keyword(flag) : .unkeyword(flag)
        case "BCC": return .bcc(try argument())
        case "CC": return .cc(try argument())
        case "FROM": return .from(try argument())
        case "TO": return .to(try argument())
        case "SUBJECT": return .subject(try argument())
        case "BODY": return .body(try argument())
        case "TEXT": return .text(try argument())
        case "HEADER":
            let field = try argument()
            return .header(field, try argument())
        case "BEFORE": return .before(try date())
        case "ON": return .on(try date())
        case "SINCE": return .since(try date())
        case "SENTBEFORE": return .sentBefore(try date())
        case "SENTON": return .sentOn(try date())
        case "SENTSINCE": return .sentSince(try date())
        case "SAVEDBEFORE": return .savedBefore(try date())
        case "SAVEDON": return .savedOn(try date())
        case "SAVEDSINCE": return .savedSince(try date())
        case "SAVEDATESUPPORTED": return .saveDateSupported
        case "OLDER", "YOUNGER":
            // RFC 5032 WITHIN: `"OLDER" SP nz-number / "YOUNGER" SP nz-number`, in seconds.
            try buffer.space()
            let seconds = Int64(try buffer.nzNumber())
            return name == "OLDER" ? .older(seconds) : .younger(seconds)
        case "EMAILID", "THREADID":
            // RFC 8474 `objectid = 1*255(ALPHA / DIGIT / "_" / "-")`.
            try buffer.space()
            let id = try buffer.atom("an object id")
            guard id.utf8.count <= 255, id.utf8.allSatisfy({ ObjectID.isIDChar($0) }) else {
                throw ParseError("Invalid object id")
            }
            return name == "EMAILID" ? .emailID(id) : .threadID(id)
        case "LARGER", "SMALLER":
            try buffer.space()
            let size = try buffer.number64()
            return name == "LARGER" ? .larger(size) : .smaller(size)
        case "UID":
            try buffer.space()
            return .uid(try parseSequenceSet(&buffer))
        case "MODSEQ":
            // RFC 7162 `search-modsequence = "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer`.
            try buffer.space()
            if buffer.peek() == UInt8(ascii: "\"") {
                let entry = try buffer.quotedBytes()
                guard entry.starts(with: Array("/flags/".utf8)) else { throw ParseError("Unknown MODSEQ entry name") }
                try buffer.space()
                switch try buffer.keyword() {
                case "PRIV", "SHARED", "ALL": break
                default: throw ParseError("Unknown MODSEQ entry type")
                }
                try buffer.space()
            }
            return .modSeq(try parseModSeq(&buffer, allowZero: true))
        case "NOT":
            try buffer.space()
            return .not(try parseSearchKey(&buffer))
        case "OR":
            try buffer.space()
            let left = try parseSearchKey(&buffer)
            try buffer.space()
            return .or(left, try parseSearchKey(&buffer))
        default:
            throw ParseError("Unknown search key \(name.prefix(32))")
        }
    }
}
