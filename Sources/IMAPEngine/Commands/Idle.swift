import Logging

/// IDLE (RFC 2177, RFC 9051 §6.3.13): a state, not a blocking call (STYLE.md §5).
extension Session {
    func handleIdle(tag: Tag) async throws -> Completion {
        try await synchronize(.full, forcePull: true)
        continuation = .idle(tag)
        try await out.sendLine("+ idling")
        return Completion("IDLE terminated")
    }

    /// The line that ends IDLE: `DONE`, case-insensitive. Anything else is a protocol error that also ends IDLE.
    func finishIdle(tag: Tag, line: [UInt8]) async throws -> Outcome {
        continuation = .none
        var w = responseWriter()
        if String(decoding: line, as: UTF8.self).uppercased() == "DONE" {
            w.tagged(tag, "OK", "IDLE terminated")
        } else {
            w.tagged(tag, "BAD", "Expected DONE")
        }
        try await out.send(w)
        return .keepGoing
    }
}
