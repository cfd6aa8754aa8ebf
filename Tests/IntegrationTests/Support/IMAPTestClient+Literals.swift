/// Literals in both directions, for tests that check literal contents byte for byte.
extension IMAPTestClient {
    /// The next response line with every literal (`{n}`, `{n+}` or `~{n}` ending a line) read as exactly n bytes
    /// and kept inline: the response as sent, without its final CRLF.
    func readResponseLine(timeout: Duration = .seconds(60)) async throws -> String {
        var result = ""
        while true {
            let line = try await readLine(timeout: timeout)
            result += line
            guard let count = Self.literalLength(endingLine: line) else { return result }
            let bytes = try await readBytes(count, timeout: timeout)
            result += "\r\n" + String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Sends `tag command` and returns the responses up to the tagged one, literals inline (see `readResponseLine`).
    func commandKeepingLiterals(_ tag: String, _ command: String) async throws -> [String] {
        try await sendLine("\(tag) \(command)")
        var lines: [String] = []
        while true {
            let line = try await readResponseLine()
            lines.append(line)
            if line.hasPrefix(tag + " ") { return lines }
        }
    }

    /// `commandKeepingLiterals` that requires a tagged OK; returns the untagged lines.
    @discardableResult
    func expectOKKeepingLiterals(_ tag: String, _ command: String) async throws -> [String] {
        let lines = try await commandKeepingLiterals(tag, command)
        guard let last = lines.last, last.hasPrefix("\(tag) OK") else {
            throw TestFailure("\(tag) \(command) failed: \(lines.joined(separator: " | "))")
        }
        return Array(lines.dropLast())
    }

    /// Sends `tag text{n}` ending in a synchronizing literal: waits for the continuation request, then sends the
    /// literal and CRLF. Returns the continuation line (or the early tagged reply) and the response lines.
    func commandWithLiteral(_ tag: String, _ text: String, literal: [UInt8]) async throws -> (
        continuation: String, lines: [String]
    ) {
        try await sendLine("\(tag) \(text){\(literal.count)}")
        let continuation = try await readLine()
        guard continuation.hasPrefix("+") else { return (continuation, [continuation]) }
        try await send(literal + [13, 10])
        return (continuation, try await readResponse(tag: tag))
    }

    /// APPENDs `message` with a non-synchronizing literal (LITERAL+); `options` are the flag list and date-time.
    func append(_ tag: String, to mailbox: String, _ message: [UInt8], options: String = "") async throws -> [String] {
        let prefix = options.isEmpty ? "" : options + " "
        try await send(Array("\(tag) APPEND \(mailbox) \(prefix){\(message.count)+}\r\n".utf8) + message + [13, 10])
        return try await readResponse(tag: tag)
    }

    /// n when `line` ends in a literal announcement `{n}`, `{n+}` or `~{n}`.
    static func literalLength(endingLine line: String) -> Int? {
        guard line.hasSuffix("}"), let open = line.lastIndex(of: "{") else { return nil }
        var digits = line[line.index(after: open)..<line.index(before: line.endIndex)]
        if digits.hasSuffix("+") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }
}
