/// METADATA (RFC 5464 §4.2, §4.3, §5).
extension CommandParser {
    /// `getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries`, options MAXSIZE and DEPTH.
    static func parseGetMetadata(_ buffer: inout ParseBuffer) throws(ParseError) -> Command {
        try buffer.space()
        var maxSize: UInt32? = nil
        var depth: MetadataDepth? = nil
        func options(_ buffer: inout ParseBuffer) throws(ParseError) {
            repeat {
                switch try buffer.keyword() {
                case "MAXSIZE" where maxSize == nil:
                    try buffer.space()
                    maxSize = try buffer.number()
                case "DEPTH" where depth == nil:
                    try buffer.space()
                    switch try buffer.keyword() {
                    case "0": depth = .zero
                    case "1": depth = .one
                    case "INFINITY": depth = .infinity
                    default: throw ParseError("DEPTH is 0, 1 or infinity")
                    }
                case let other:
                    throw ParseError("Unknown or repeated GETMETADATA option \(other.prefix(32))")
                }
            } while buffer.take(UInt8(ascii: " "))
            try buffer.expect(UInt8(ascii: ")"))
            try buffer.space()
        }
        if buffer.take(UInt8(ascii: "(")) { try options(&buffer) }
        let mailbox = try parseMailbox(&buffer)
        try buffer.space()
        // The RFC's own examples put the options after the mailbox (`GETMETADATA "INBOX" (MAXSIZE 1024) (…)`), as
        // some clients do: an option list is told from an entry list by its first character.
        if maxSize == nil, depth == nil, buffer.peek() == UInt8(ascii: "("), buffer.peek(1) != UInt8(ascii: "/"),
            buffer.peek(1) != UInt8(ascii: "\""), buffer.peek(1) != UInt8(ascii: "{")
        {
            buffer.advance()
            try options(&buffer)
        }
        var entries: [String] = []
        if buffer.take(UInt8(ascii: "(")) {
            repeat {
                entries.append(try metadataEntry(buffer.astring("an entry name"), scopeAllowed: true))
                guard entries.count <= 1000 else { throw ParseError("Too many entries") }
            } while buffer.take(UInt8(ascii: " "))
            try buffer.expect(UInt8(ascii: ")"))
        } else {
            entries.append(try metadataEntry(buffer.astring("an entry name"), scopeAllowed: true))
        }
        return .getMetadata(mailbox, maxSize: maxSize, depth: depth ?? .zero, entries: entries)
    }

    /// `setmetadata = "SETMETADATA" SP mailbox SP "(" entry SP value *(SP entry SP value) ")"`,
    /// `value = nstring / literal8`.
    static func parseSetMetadata(_ buffer: inout ParseBuffer) throws(ParseError) -> Command {
        try buffer.space()
        let mailbox = try parseMailbox(&buffer)
        try buffer.space()
        try buffer.expect(UInt8(ascii: "("))
        var entries: [MetadataEntry] = []
        repeat {
            let name = try metadataEntry(buffer.astring("an entry name"), scopeAllowed: false)
            try buffer.space()
            let value: [UInt8]?
            if buffer.takeKeyword("NIL") {
                value = nil
            } else if buffer.peek() == UInt8(ascii: "\"") {
                value = Array(try buffer.quotedBytes())
            } else if buffer.peek() == UInt8(ascii: "{") || buffer.peek() == UInt8(ascii: "~") {
                value = Array(try buffer.literalBytes().bytes)
            } else {
                throw buffer.unexpected(expected: "a string, a literal or NIL")
            }
            entries.append(MetadataEntry(name: name, value: value))
            guard entries.count <= 1000 else { throw ParseError("Too many entries") }
        } while buffer.take(UInt8(ascii: " "))
        try buffer.expect(UInt8(ascii: ")"))
        return .setMetadata(mailbox, entries)
    }

    /// An entry name (RFC 5464 §3.2), lower-cased: "/private/…" or "/shared/…", printable ASCII without "*" and "%",
    /// no empty component. `scopeAllowed`: "/private" or "/shared" alone (GETMETADATA with DEPTH reads below them).
    static func metadataEntry(_ name: String, scopeAllowed: Bool) throws(ParseError) -> String {
        let lower = name.lowercased()
        guard lower.utf8.count <= 1024,
            lower.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: "%") })
        else { throw ParseError("Invalid entry name") }
        let components = lower.split(separator: "/", omittingEmptySubsequences: false)
        guard components.count >= (scopeAllowed ? 2 : 3), components[0].isEmpty,
            components[1] == "private" || components[1] == "shared",
            components.dropFirst().allSatisfy({ !$0.isEmpty })
        else { throw ParseError("Entry names start with /private/ or /shared/") }
        return lower
    }
}
