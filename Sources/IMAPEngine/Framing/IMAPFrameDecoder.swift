import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What the framing layer hands to the session: complete commands, or facts the session must answer.
public enum FramedInput: Sendable, Equatable {
    /// One complete command (or a continuation line such as `DONE` or a SASL response): the line with its literals
    /// inline (`{n}\r\n` + n bytes), without the final CRLF. An APPEND carries the memory reserved for its message
    /// (`MessageBudget`), held until the command is done.
    case line([UInt8], MessageBudget.Reservation? = nil)
    /// The client sent a synchronizing literal `{n}` that fits: the session must answer `+` before it is sent.
    case literalRequested(Int)
    /// A line grew past the limit; everything up to its end was discarded. RFC 9051 §7.1.5 (BAD, [TOOBIG]).
    case lineTooLong(tag: Tag?)
    /// A literal over the limit. For a synchronizing literal nothing was sent yet; a non-synchronizing one is
    /// read and discarded. The command is abandoned either way.
    case literalTooLarge(tag: Tag?, size: Int64)
    /// An APPEND literal the process cannot take now (`MessageBudget` spent by other uploads), abandoned the same way.
    case uploadRefused(tag: Tag?)
}

/// Frames the byte stream into commands (RFC 9051 §2.2, §4.3): lines ending in CRLF (a bare LF is accepted too),
/// with `{n}`, `{n+}` and `~{n}` literals inline. Never writes: a synchronizing literal becomes
/// `.literalRequested`, and the session sends the continuation, so the session stays the single writer.
///
/// Memory per connection is bounded: a command may not exceed the line limit plus its literal limits, and before
/// login (`LoginState`) both are small.
public struct IMAPFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = FramedInput

    private enum State {
        /// Reading a line of the current command; `scanned` bytes of `buffer`'s readable part have no LF.
        case line(scanned: Int)
        case literal(remaining: Int)
        /// Discarding the rest of an over-long line.
        case skipLine
        /// Discarding a rejected non-synchronizing literal, then the rest of its command.
        case skipLiteral(remaining: Int64)
    }

    private var state: State = .line(scanned: 0)
    /// The command accumulated so far (earlier lines and literals).
    private var command: [UInt8] = []
    /// Whether the rest of the current command is to be discarded (after a rejected literal).
    private var discarding = false
    private let limits: IMAPLimits
    private let startTLS: StartTLSGate?
    private let compress: StartTLSGate?
    private let login: LoginState?
    private let budget: MessageBudget?
    /// The memory reserved for the APPEND being read, grown as its literal arrives (a client that stalls holds only
    /// what it sent), and whether the literal being read counts against the budget.
    private var reservation: MessageBudget.Reservation?
    private var countsAgainstBudget = false

    /// `startTLS`: the gate of a connection that offers STARTTLS (nil when it cannot). `login`: whether the session
    /// has logged in (nil: treat as logged in). `compress`: the gate closed by `COMPRESS DEFLATE` after login, until
    /// the session has installed compression or refused it (what follows the command is compressed, or a client
    /// error: RFC 4978 §3 has the client wait for the OK).
    public init(
        limits: IMAPLimits, startTLS: StartTLSGate? = nil, compress: StartTLSGate? = nil, login: LoginState? = nil,
        budget: MessageBudget? = nil
    ) {
        self.limits = limits
        self.startTLS = startTLS
        self.compress = compress
        self.login = login
        self.budget = budget
    }

    private var loggedIn: Bool { login?.isLoggedIn ?? true }
    private var lineLimit: Int { loggedIn ? limits.maxLineLength : limits.maxLineLengthBeforeLogin }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let startTLS, startTLS.isClosed {
            // Plaintext after STARTTLS is never executed (see StartTLSGate).
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
        if let compress, compress.isClosed {
            // Uncompressed bytes sent before the OK to COMPRESS: not executed (they were sent too early, and could
            // be read neither as commands nor as compressed data).
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
        switch state {
        case .line(let scanned):
            return decodeLine(context: context, buffer: &buffer, scanned: scanned)
        case .literal(let remaining):
            let count = min(remaining, buffer.readableBytes)
            guard count > 0 else { return .needMoreData }
            if countsAgainstBudget, !reserve(count) {
                // The process's upload memory ran out while this message arrived: the rest is skipped.
                buffer.moveReaderIndex(forwardBy: count)
                let tag = Self.tag(in: command)
                command = []
                reservation = nil
                countsAgainstBudget = false
                discarding = true
                state = remaining - count == 0 ? .line(scanned: 0) : .skipLiteral(remaining: Int64(remaining - count))
                context.fireChannelRead(NIOAny(FramedInput.uploadRefused(tag: tag)))
                return .continue
            }
            if let bytes = buffer.readBytes(length: count) { command.append(contentsOf: bytes) }
            if remaining - count == 0 { countsAgainstBudget = false }
            Self.acknowledgePromptly(context)
            state = remaining - count == 0 ? .line(scanned: 0) : .literal(remaining: remaining - count)
            return .continue
        case .skipLine:
            guard let lf = buffer.readableBytesView.firstIndex(of: 0x0A) else {
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                return .needMoreData
            }
            buffer.moveReaderIndex(to: lf + 1)
            resetCommand()
            return .continue
        case .skipLiteral(let remaining):
            let count = Int(min(remaining, Int64(buffer.readableBytes)))
            guard count > 0 else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: count)
            state =
                remaining - Int64(count) == 0 ? .line(scanned: 0) : .skipLiteral(remaining: remaining - Int64(count))
            return .continue
        }
    }

    /// Literal bytes are acknowledged at once (TCP_QUICKACK, as Dovecot does): a client with Nagle's algorithm on
    /// holds the CRLF after a literal until the literal is acknowledged, and the kernel would delay that ACK by up to
    /// 40 ms while the server, waiting for the CRLF, has nothing to send. The option is not sticky, so it is set
    /// again for every piece of a literal. Channels without sockets (tests' embedded channels) ignore it.
    static func acknowledgePromptly(_ context: ChannelHandlerContext) {
        #if os(Linux)
            try? context.channel.syncOptions?.setOption(
                ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: TCP_QUICKACK), value: 1)
        #endif
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        // A command cut off by EOF is dropped: nothing half-received is ever executed, and the upload memory of an
        // APPEND cut off midway is given back now.
        while try decode(context: context, buffer: &buffer) == .continue {}
        resetCommand()
        return .needMoreData
    }

    private mutating func decodeLine(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, scanned: Int
    ) -> DecodingState {
        let view = buffer.readableBytesView
        let searchStart = view.startIndex + scanned
        guard let lf = view[searchStart...].firstIndex(of: 0x0A) else {
            if buffer.readableBytes > lineLimit {
                let tag = discarding ? nil : Self.tag(in: command.isEmpty ? Array(view.prefix(64)) : command)
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                let wasDiscarding = discarding
                state = .skipLine
                if !wasDiscarding { context.fireChannelRead(NIOAny(FramedInput.lineTooLong(tag: tag))) }
                return .continue
            }
            state = .line(scanned: buffer.readableBytes)
            return .needMoreData
        }
        let lineLength = lf - view.startIndex
        var line = buffer.readBytes(length: lineLength + 1) ?? []
        line.removeLast()  // LF
        if line.last == 0x0D { line.removeLast() }
        state = .line(scanned: 0)

        if line.count > lineLimit {
            let tag = discarding ? nil : Self.tag(in: command.isEmpty ? line : command)
            let wasDiscarding = discarding
            resetCommand()
            if !wasDiscarding { context.fireChannelRead(NIOAny(FramedInput.lineTooLong(tag: tag))) }
            return .continue
        }

        guard let literal = Self.literalAtEnd(of: line) else {
            if line.isEmpty && command.isEmpty && !discarding {
                return .continue  // a stray CRLF between commands (some clients send one after APPEND)
            }
            if discarding {
                resetCommand()
            } else {
                command.append(contentsOf: line)
                let complete = command
                let held = reservation  // goes with the command; resetCommand would let it go
                reservation = nil
                resetCommand()
                if let startTLS, Self.isStartTLS(complete) { startTLS.close() }
                if let compress, loggedIn, Self.isCompress(complete) { compress.close() }
                context.fireChannelRead(NIOAny(FramedInput.line(complete, held)))
            }
            return .continue
        }

        if discarding {
            // The rest of a rejected command: skip non-synchronizing literals; a synchronizing one will not come.
            if literal.synchronizing {
                resetCommand()
            } else {
                state = .skipLiteral(remaining: literal.size)
            }
            return .continue
        }

        command.append(contentsOf: line)
        command.append(contentsOf: [0x0D, 0x0A])
        let isAppend = loggedIn && Self.isAppend(command)
        let (limit, commandLimit) =
            if !loggedIn {
                (limits.maxLiteralBeforeLogin, limits.maxLineLengthBeforeLogin + 2 * limits.maxLiteralBeforeLogin)
            } else if isAppend {
                (limits.maxAppendSize, limits.maxAppendSize + limits.maxLineLength)
            } else {
                (limits.maxInlineLiteral, limits.maxCommandSize)
            }
        // `{n}` is the client's number: adding it may overflow (literalAtEnd saturates at Int64.max).
        let (total, overflow) = Int64(command.count).addingReportingOverflow(literal.size)
        if overflow || literal.size > Int64(limit) || total > Int64(commandLimit) {
            abandonCommand(literal, context: context) { .literalTooLarge(tag: $0, size: literal.size) }
            return .continue
        }
        if isAppend, let budget, literal.size > 0 {
            // A message that can never fit is too large; one that does not fit now is refused before it is sent.
            if MessageBudget.cost(Int(literal.size)) > budget.capacity {
                abandonCommand(literal, context: context) { .literalTooLarge(tag: $0, size: literal.size) }
                return .continue
            }
            guard budget.couldReserve(messageBytes: Int(literal.size)) else {
                abandonCommand(literal, context: context) { .uploadRefused(tag: $0) }
                return .continue
            }
            countsAgainstBudget = true
        }
        if literal.size > 0 {
            state = .literal(remaining: Int(literal.size))
            command.reserveCapacity(command.count + Int(literal.size))
        }
        if literal.synchronizing {
            context.fireChannelRead(NIOAny(FramedInput.literalRequested(Int(literal.size))))
        }
        return .continue
    }

    /// Reserves the upload memory of `count` more bytes of the APPEND being read.
    private mutating func reserve(_ count: Int) -> Bool {
        if let reservation { return reservation.grow(messageBytes: count) }
        reservation = budget?.reserve(messageBytes: count)
        return reservation != nil
    }

    /// Gives up the command at a literal it will not take, and says why: nothing of a synchronizing literal was
    /// sent yet; a non-synchronizing one is read and thrown away, then the rest of its command.
    private mutating func abandonCommand(
        _ literal: (size: Int64, synchronizing: Bool), context: ChannelHandlerContext, _ why: (Tag?) -> FramedInput
    ) {
        let tag = Self.tag(in: command)
        if literal.synchronizing {
            resetCommand()
        } else {
            command = []
            reservation = nil
            discarding = true
            state = .skipLiteral(remaining: literal.size)
        }
        context.fireChannelRead(NIOAny(why(tag)))
    }

    private mutating func resetCommand() {
        command = []
        reservation = nil
        countsAgainstBudget = false
        discarding = false
        state = .line(scanned: 0)
    }

    /// A literal announcement at the end of a line: `{n}`, `{n+}` or `~{n}` (RFC 9051 §4.3, RFC 7888, RFC 3516).
    static func literalAtEnd(of line: [UInt8]) -> (size: Int64, synchronizing: Bool)? {
        guard line.last == UInt8(ascii: "}") else { return nil }
        var i = line.count - 2
        var synchronizing = true
        if i >= 0, line[i] == UInt8(ascii: "+") {
            synchronizing = false
            i -= 1
        }
        let digitsEnd = i + 1
        while i >= 0, line[i] >= 0x30, line[i] <= 0x39 { i -= 1 }
        let digitsStart = i + 1
        guard digitsStart < digitsEnd, i >= 0, line[i] == UInt8(ascii: "{") else { return nil }
        var size: Int64 = 0
        for digit in line[digitsStart..<digitsEnd] {
            let (m, o1) = size.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(digit - 0x30))
            if o1 || o2 { return (Int64.max, synchronizing) }
            size = a
        }
        return (size, synchronizing)
    }

    /// The tag at the start of a command, if it looks like one (for `tag BAD`).
    static func tag(in bytes: [UInt8]) -> Tag? {
        var end = 0
        while end < bytes.count, end < 64, isAtomChar(bytes[end]) || bytes[end] == UInt8(ascii: "]"),
            bytes[end] != UInt8(ascii: "+")
        {
            end += 1
        }
        guard end > 0, end < bytes.count, bytes[end] == UInt8(ascii: " ") else { return nil }
        return String(decoding: bytes[0..<end], as: UTF8.self)
    }

    /// Whether the line is `tag STARTTLS` (case-insensitive).
    static func isStartTLS(_ bytes: [UInt8]) -> Bool {
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return false }
        let word = Array("STARTTLS".utf8)
        let rest = bytes[(space + 1)...]
        return rest.count == word.count && zip(rest, word).allSatisfy { asciiUpper($0) == $1 }
    }

    /// Whether the line is `tag COMPRESS DEFLATE` (case-insensitive).
    static func isCompress(_ bytes: [UInt8]) -> Bool {
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return false }
        let word = Array("COMPRESS DEFLATE".utf8)
        let rest = bytes[(space + 1)...]
        return rest.count == word.count && zip(rest, word).allSatisfy { asciiUpper($0) == $1 }
    }

    /// Whether the command is APPEND (its literal may be as large as a message).
    static func isAppend(_ bytes: [UInt8]) -> Bool {
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return false }
        let word = Array("APPEND ".utf8)
        let start = space + 1
        guard bytes.count >= start + word.count else { return false }
        for (i, c) in word.enumerated() where asciiUpper(bytes[start + i]) != c { return false }
        return true
    }
}
