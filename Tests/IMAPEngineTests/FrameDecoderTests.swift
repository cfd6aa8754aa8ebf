import NIOCore
import NIOEmbedded
import Testing

@testable import IMAPEngine

/// The framing layer on an `EmbeddedChannel` (STYLE.md §8.3): lines, literals, limits.
@Suite struct FrameDecoderTests {
    func decode(
        _ input: String..., limits: IMAPLimits = IMAPLimits(), login: LoginState? = nil, budget: MessageBudget? = nil
    ) throws -> [FramedInput] {
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(IMAPFrameDecoder(limits: limits, login: login, budget: budget)))
        for chunk in input {
            try channel.writeInbound(ByteBuffer(string: chunk))
        }
        var out: [FramedInput] = []
        while let part = try channel.readInbound(as: FramedInput.self) { out.append(part) }
        _ = try? channel.finish()
        return out
    }

    func line(_ text: String) -> FramedInput { .line(Array(text.utf8)) }

    @Test func pipelinedCommandsAreFramedSeparately() throws {
        #expect(
            try decode("a1 NOOP\r\na2 CAPABILITY\r\na3 LOG", "OUT\r\n") == [
                line("a1 NOOP"), line("a2 CAPABILITY"), line("a3 LOGOUT"),
            ])
    }

    @Test func emptyLinesBetweenCommandsAreIgnored() throws {
        #expect(try decode("\r\n\r\na1 NOOP\r\n\n") == [line("a1 NOOP")])
    }

    @Test func bareLineFeedIsAccepted() throws {
        #expect(try decode("a1 NOOP\na2 NOOP\r\n") == [line("a1 NOOP"), line("a2 NOOP")])
    }

    @Test func synchronizingLiteralAsksForContinuation() throws {
        #expect(
            try decode("a LOGIN {3}\r\n", "tim {5}\r\n", "timmy\r\n")
                == [.literalRequested(3), .literalRequested(5), line("a LOGIN {3}\r\ntim {5}\r\ntimmy")])
    }

    @Test func nonSynchronizingLiteralNeedsNoContinuation() throws {
        #expect(try decode("a LOGIN {3+}\r\ntim {5+}\r\ntimmy\r\n") == [line("a LOGIN {3+}\r\ntim {5+}\r\ntimmy")])
    }

    @Test func literalMayContainLineBreaksAndBraces() throws {
        #expect(
            try decode("a APPEND INBOX {12+}\r\nx\r\n{3}\r\nabc}\r\n\r\nb NOOP\r\n")
                == [line("a APPEND INBOX {12+}\r\nx\r\n{3}\r\nabc}"), line("b NOOP")])
    }

    @Test func literalSplitAcrossReads() throws {
        #expect(
            try decode("a APPEND INBOX {10+}\r\nhel", "lo w", "orld\r\n") == [
                line("a APPEND INBOX {10+}\r\nhello world")
            ])
    }

    @Test func overLongLineIsRejectedAndTheConnectionStaysUsable() throws {
        var limits = IMAPLimits()
        limits.maxLineLength = 100
        let long = "a1 NOOP " + String(repeating: "x", count: 1000)
        #expect(try decode(long + "\r\na2 NOOP\r\n", limits: limits) == [.lineTooLong(tag: "a1"), line("a2 NOOP")])
        // The same line arriving in pieces without CRLF for a long while.
        #expect(
            try decode(
                "a1 NOOP ", String(repeating: "y", count: 500), String(repeating: "y", count: 500), "\r\na2 NOOP\r\n",
                limits: limits)
                == [.lineTooLong(tag: "a1"), line("a2 NOOP")])
    }

    @Test func oversizedSynchronizingLiteralIsRefusedBeforeItIsSent() throws {
        #expect(
            try decode("a1 LOGIN {99999999999}\r\na2 NOOP\r\n") == [
                .literalTooLarge(tag: "a1", size: 99_999_999_999), line("a2 NOOP"),
            ])
    }

    @Test func oversizedNonSynchronizingLiteralIsSkipped() throws {
        var limits = IMAPLimits()
        limits.maxInlineLiteral = 4
        #expect(
            try decode("a1 LOGIN {10+}\r\n0123456789 {3+}\r\nabc\r\na2 NOOP\r\n", limits: limits)
                == [.literalTooLarge(tag: "a1", size: 10), line("a2 NOOP")])
    }

    @Test func appendMayUseTheLargerLimit() throws {
        var limits = IMAPLimits()
        limits.maxInlineLiteral = 4
        limits.maxAppendSize = 100
        #expect(
            try decode("a APPEND INBOX {10}\r\n", "0123456789\r\n", limits: limits) == [
                .literalRequested(10), line("a APPEND INBOX {10}\r\n0123456789"),
            ])
        #expect(try decode("a APPEND INBOX {101}\r\n", limits: limits) == [.literalTooLarge(tag: "a", size: 101)])
    }

    @Test func commandCutOffByEOFIsDropped() throws {
        #expect(try decode("a APPEND INBOX {10+}\r\nhalf") == [])
    }

    @Test func literalMarkers() {
        #expect(IMAPFrameDecoder.literalAtEnd(of: Array("a {5}".utf8))! == (5, true))
        #expect(IMAPFrameDecoder.literalAtEnd(of: Array("a {5+}".utf8))! == (5, false))
        #expect(IMAPFrameDecoder.literalAtEnd(of: Array("a ~{0}".utf8))! == (0, true))
        #expect(IMAPFrameDecoder.literalAtEnd(of: Array("a {}".utf8)) == nil)
        #expect(IMAPFrameDecoder.literalAtEnd(of: Array("a \"}\"".utf8)) == nil)
        #expect(IMAPFrameDecoder.literalAtEnd(of: Array("{99999999999999999999999}".utf8))! == (Int64.max, true))
    }

    /// Issue #9 §3: before login only small lines and literals are framed (Dovecot's login process takes no large
    /// literal either); an APPEND-sized literal is refused and its bytes skipped, not kept.
    @Test func beforeLoginOnlySmallCommandsAreTaken() throws {
        let login = LoginState()
        let big = String(repeating: "x", count: 9000)
        let tooLong = String(repeating: "x", count: 70_000)
        #expect(try decode("a LOGIN {9000}\r\n", login: login) == [.literalTooLarge(tag: "a", size: 9000)])
        #expect(
            try decode("b APPEND INBOX {9000+}\r\n" + big + "\r\nc NOOP\r\n", login: login)
                == [.literalTooLarge(tag: "b", size: 9000), line("c NOOP")])
        #expect(
            try decode("d ID (\"x\" \"" + tooLong + "\")\r\ne NOOP\r\n", login: login) == [
                .lineTooLong(tag: "d"), line("e NOOP"),
            ])
        #expect(
            try decode("f LOGIN {5}\r\n", "timmy\r\n", login: login) == [
                .literalRequested(5), line("f LOGIN {5}\r\ntimmy"),
            ])
        // RFC 2971's largest ID (30 pairs, 1024-octet values) still fits before login.
        let pairs = (0..<30).map { "\"k\($0)\" \"" + String(repeating: "v", count: 1024) + "\"" }.joined(separator: " ")
        #expect(try decode("h ID (" + pairs + ")\r\n", login: login) == [line("h ID (" + pairs + ")")])
        login.set(true)
        #expect(try decode("g APPEND INBOX {9000+}\r\n" + big + "\r\n", login: login).count == 1)
    }

    /// A command other than APPEND is held to `maxCommandSize` in all, however many literals it has.
    @Test func manyLiteralsDoNotAddUpPastTheCommandLimit() throws {
        var limits = IMAPLimits()
        limits.maxCommandSize = 10_000
        let literal = "{4000+}\r\n" + String(repeating: "y", count: 4000)
        let parts = try decode(
            "s SEARCH TEXT " + literal + " TEXT " + literal + " TEXT " + literal + "\r\nn NOOP\r\n", limits: limits)
        #expect(parts == [.literalTooLarge(tag: "s", size: 4000), line("n NOOP")])
    }

    /// Found by the IMAPCommands fuzzer: a literal size of 2^63 - 1 (any longer number saturates to it) made the
    /// command-size sum overflow, which traps and would end the whole process. It is now simply too large.
    @Test func hugeLiteralSizesAreRefusedWithoutOverflow() throws {
        for login in [LoginState(), nil] {
            for literal in ["{9223372036854775807}", "{99999999999999999999999999}", "{9223372036854775807+}"] {
                let parts = try decode("a SEARCH TEXT " + literal + "\r\n", login: login)
                #expect(parts.first == .literalTooLarge(tag: "a", size: Int64.max), "\(literal): \(parts)")
            }
        }
    }

    /// An APPEND's upload memory is reserved as its literal arrives and travels with the command to the session,
    /// which holds it until the command is done; a literal the budget cannot take now is refused before it is sent,
    /// one it can never take is too large, and one that runs the budget out midway is skipped.
    @Test func appendLiteralsReserveUploadMemoryUntilTheCommandIsDone() throws {
        let budget = MessageBudget(capacity: 6 * 1000)
        let parts = try decode("a APPEND INBOX {600}\r\n", String(repeating: "m", count: 600) + "\r\n", budget: budget)
        guard parts.count == 2, case .line(_, let reservation?) = parts[1] else {
            Issue.record("no reservation with the command: \(parts)")
            return
        }
        #expect(budget.inUse == 6 * 600)
        // While it is held, a second message of 600 bytes cannot be taken now; 2000 bytes never can.
        #expect(try decode("b APPEND INBOX {600}\r\n", budget: budget) == [.uploadRefused(tag: "b")])
        #expect(try decode("c APPEND INBOX {2000}\r\n", budget: budget) == [.literalTooLarge(tag: "c", size: 2000)])
        reservation.release()
        #expect(budget.inUse == 0)
        // A message that fits when announced but not any more when it arrives is skipped, and nothing stays held.
        let shared = MessageBudget(capacity: 6 * 1000)
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(IMAPFrameDecoder(limits: IMAPLimits(), budget: shared)))
        try channel.writeInbound(ByteBuffer(string: "e APPEND INBOX {900+}\r\n" + String(repeating: "x", count: 100)))
        #expect(shared.inUse == 6 * 100)
        let hog = shared.reserve(messageBytes: 800)  // another connection's upload takes the rest
        try channel.writeInbound(ByteBuffer(string: String(repeating: "x", count: 800) + "\r\nf NOOP\r\n"))
        var out: [FramedInput] = []
        while let part = try channel.readInbound(as: FramedInput.self) { out.append(part) }
        #expect(out == [.uploadRefused(tag: "e"), line("f NOOP")])
        #expect(shared.inUse == 6 * 800)
        hog?.release()
        #expect(shared.inUse == 0)
        _ = try? channel.finish()
    }

    /// An APPEND cut off by the connection closing gives its upload memory back as the connection closes.
    @Test func anAppendCutOffByEOFHoldsNothing() throws {
        let budget = MessageBudget(capacity: 64 << 20)
        let channel = EmbeddedChannel(
            handler: ByteToMessageHandler(IMAPFrameDecoder(limits: IMAPLimits(), budget: budget)))
        try channel.writeInbound(
            ByteBuffer(string: "a APPEND INBOX {100000+}\r\n" + String(repeating: "x", count: 5000)))
        #expect(budget.inUse == 6 * 5000)
        _ = try? channel.finish()
        #expect(budget.inUse == 0)
    }
}
