import Foundation
import IMAPEngine
import NIOCore

/// What the LMTP framer hands to the session.
public enum LMTPInput: Sendable, Equatable {
    /// A command line without its CRLF.
    case command([UInt8])
    /// A command line over the limit (discarded up to its end).
    case commandTooLong
    /// The message after DATA: dot-unstuffed, CRLF line ends kept as sent; `tooLarge` when it passed the size limit
    /// (the excess was discarded, so memory stays bounded), `busy` when the process's message memory
    /// (`MessageBudget`) could not take it. `reservation` holds its memory until the session has delivered it.
    case data([UInt8], tooLarge: Bool, busy: Bool = false, reservation: MessageBudget.Reservation? = nil)
    /// One BDAT chunk (RFC 3030), with its LAST marker; `tooLarge`, `busy` and `reservation` as for DATA (the
    /// reservation covers this chunk: the session holds those of its transaction's chunks).
    case chunk(
        [UInt8], last: Bool, tooLarge: Bool, busy: Bool = false, reservation: MessageBudget.Reservation? = nil)
}

/// Frames LMTP (RFC 2033, RFC 5321 §4.1): command lines, the DATA body up to `.`, and BDAT chunks.
///
/// After a `DATA` line the framer pauses (pipelined bytes stay buffered) until the session says whether it sent 354
/// (`resume(expectingData: true)`) or refused DATA: a client sends the message only after 354, and bytes after a
/// refused DATA are commands again. BDAT chunks are read whatever the session will answer, as RFC 3030 requires.
public final class LMTPFramer: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = LMTPInput

    public static let maxCommandLength = 4096
    /// In DATA, a line is taken in pieces of this size, so a line without LF cannot grow the buffer unbounded.
    static let maxPartialLine = 64 * 1024

    private enum Mode {
        case commands
        case paused
        /// `midLine`: part of the current line was already taken (a line longer than `maxPartialLine`).
        /// `afterCRLF`: the line before ended with CRLF (or this is the first line): only then can `.` CRLF end the
        /// message (RFC 5321 §4.1.1.4: the end is CRLF "." CRLF; a bare LF never counts, against SMTP smuggling).
        case data(body: [UInt8], size: Int, tooLarge: Bool, midLine: Bool, afterCRLF: Bool)
        case chunk(remaining: Int, body: [UInt8], last: Bool, tooLarge: Bool)
        case skipLine
    }

    private var mode: Mode = .commands
    private var buffer = ByteBuffer()
    private let maxMessageSize: Int
    private var context: ChannelHandlerContext?
    private let budget: MessageBudget?
    /// The memory reserved for the message being read, and how many of its bytes it covers.
    private var reservation: MessageBudget.Reservation?
    private var reservedBytes = 0
    private var busy = false
    /// The last byte of message data taken, and whether a piece of a long line ended with CR (its LF may come next).
    private var lastDataByte: UInt8 = 0
    private var pieceEndedWithCR = false
    /// Reservations grow in steps of this many message bytes.
    static let reservationStep = 64 << 10

    public init(maxMessageSize: Int, budget: MessageBudget? = nil) {
        self.maxMessageSize = maxMessageSize
        self.budget = budget
    }

    /// Makes sure the reservation covers `size` message bytes; false (and `busy`) when the budget cannot.
    private func admit(_ size: Int) -> Bool {
        guard let budget, !busy else { return !busy }
        guard size > reservedBytes else { return true }
        let step = max(size - reservedBytes, Self.reservationStep)
        if let reservation {
            guard reservation.grow(messageBytes: step) else {
                busy = true
                return false
            }
        } else {
            guard let reserved = budget.reserve(messageBytes: step) else {
                busy = true
                return false
            }
            reservation = reserved
        }
        reservedBytes += step
        return true
    }

    /// Hands the message's reservation over with the message (the session releases it once delivered).
    private func takeReservation() -> (busy: Bool, reservation: MessageBudget.Reservation?) {
        defer {
            reservation = nil
            reservedBytes = 0
            busy = false
        }
        return (busy, reservation)
    }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// The connection is gone: the memory of a message it left half sent is given back now, not when this object
    /// happens to be freed.
    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        reservation?.release()
        reservation = nil
        reservedBytes = 0
        buffer = ByteBuffer()
    }

    /// A client silent for the timeout (the IdleStateHandler before this one) is told and closed; whatever it had
    /// not finished is not stored.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let bye = context.channel.allocator.buffer(string: "421 4.4.2 Timeout, closing connection\r\n")
        let channel = context.channel
        context.writeAndFlush(NIOAny(bye)).whenComplete { _ in channel.close(promise: nil) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        process(context)
    }

    /// Called on the event loop by the session after it answered DATA.
    public func resume(expectingData: Bool) {
        guard case .paused = mode else { return }
        mode = expectingData ? .data(body: [], size: 0, tooLarge: false, midLine: false, afterCRLF: true) : .commands
        guard let context, buffer.readableBytes > 0 else { return }
        process(context)
        // Outside a read cycle: NIOAsyncChannel hands reads to the session only on read-complete, so without this the
        // last pipelined command or a message that arrived before the 354 would wait for the client's next bytes.
        context.fireChannelReadComplete()
    }

    private func process(_ context: ChannelHandlerContext) {
        while buffer.readableBytes > 0 {
            switch mode {
            case .paused:
                return
            case .commands:
                guard let line = readLine() else {
                    if buffer.readableBytes > Self.maxCommandLength {
                        buffer.clear()
                        mode = .skipLine
                        context.fireChannelRead(wrapInboundOut(.commandTooLong))
                    }
                    return
                }
                if line.count > Self.maxCommandLength {
                    context.fireChannelRead(wrapInboundOut(.commandTooLong))
                    continue
                }
                let verb = line.prefix { $0 != UInt8(ascii: " ") }.map { $0 & ~0x20 }
                if verb == Array("DATA".utf8) && line.dropFirst(4).allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                    mode = .paused  // `DATA` (trailing blanks tolerated, as the session does)
                } else if verb == Array("BDAT".utf8), let (size, last) = Self.bdat(line) {
                    mode = .chunk(remaining: size, body: [], last: last, tooLarge: false)
                }
                context.fireChannelRead(wrapInboundOut(.command(line)))
            case .skipLine:
                guard let lf = buffer.readableBytesView.firstIndex(of: 0x0A) else {
                    buffer.clear()
                    return
                }
                buffer.moveReaderIndex(to: lf + 1)
                mode = .commands
            case .data(var body, var size, var tooLarge, var midLine, var afterCRLF):
                mode = .commands  // avoid copying `body` while it is mutated below
                var finished = false
                func take(_ content: ArraySlice<UInt8>) {
                    if let last = content.last { lastDataByte = last }
                    size += content.count
                    if size > maxMessageSize {
                        tooLarge = true
                    } else if admit(size) {
                        body.append(contentsOf: content)
                    }
                }
                while let line = readLine(keepingEnd: true) {
                    if !midLine, afterCRLF, line == [UInt8(ascii: "."), 0x0D, 0x0A] {
                        let (busy, reservation) = takeReservation()
                        context.fireChannelRead(
                            wrapInboundOut(
                                .data(busy ? [] : body, tooLarge: tooLarge, busy: busy, reservation: reservation)))
                        finished = true
                        break
                    }
                    // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                    take(!midLine && line.first == UInt8(ascii: ".") ? line.dropFirst() : line[...])
                    // A CR that ended the piece taken before (a line over `maxPartialLine`) pairs with this LF.
                    afterCRLF = line.count >= 2 ? line[line.count - 2] == 0x0D : midLine && pieceEndedWithCR
                    midLine = false
                }
                if finished { continue }
                if buffer.readableBytes > Self.maxPartialLine,
                    let piece = buffer.readBytes(length: buffer.readableBytes)
                {
                    take(!midLine && piece.first == UInt8(ascii: ".") ? piece.dropFirst() : piece[...])
                    midLine = true
                    afterCRLF = false
                    pieceEndedWithCR = lastDataByte == 0x0D
                }
                mode = .data(body: body, size: size, tooLarge: tooLarge, midLine: midLine, afterCRLF: afterCRLF)
                return
            case .chunk(let remaining, var body, let last, var tooLarge):
                let count = min(remaining, buffer.readableBytes)
                if let bytes = buffer.readBytes(length: count) {
                    if tooLarge || body.count + count > maxMessageSize {
                        tooLarge = true
                    } else if admit(body.count + count) {
                        body.append(contentsOf: bytes)
                    }
                }
                if remaining - count == 0 {
                    mode = .commands
                    // The reservation covers this chunk; the session keeps the chunks of its transaction, and their
                    // reservations, until LAST, RSET or a refusal.
                    let (busy, reservation) = takeReservation()
                    context.fireChannelRead(
                        wrapInboundOut(
                            .chunk(
                                busy ? [] : body, last: last, tooLarge: tooLarge, busy: busy, reservation: reservation))
                    )
                } else {
                    mode = .chunk(remaining: remaining - count, body: body, last: last, tooLarge: tooLarge)
                    return
                }
            }
        }
    }

    /// The next line: without its end for commands, with it (CRLF or LF) in DATA.
    private func readLine(keepingEnd: Bool = false) -> [UInt8]? {
        guard let lf = buffer.readableBytesView.firstIndex(of: 0x0A) else { return nil }
        let length = lf - buffer.readerIndex + 1
        guard var line = buffer.readBytes(length: length) else { return nil }
        if !keepingEnd {
            line.removeLast()
            if line.last == 0x0D { line.removeLast() }
        }
        return line
    }

    /// `BDAT <size> [LAST]` (RFC 3030 §2).
    public static func bdat(_ line: [UInt8]) -> (Int, Bool)? {
        let words = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard words.count == 2 || words.count == 3, let size = Int(words[1]), size >= 0, size <= Int(Int32.max) else {
            return nil
        }
        if words.count == 3 { guard words[2].uppercased() == "LAST" else { return nil } }
        return (size, words.count == 3)
    }
}

/// Lets the session (on another thread) resume the framer on its event loop.
public struct LMTPFramerControl: Sendable {
    let framer: NIOLoopBound<LMTPFramer>

    public init(framer: NIOLoopBound<LMTPFramer>) { self.framer = framer }

    public func resume(expectingData: Bool) {
        framer.eventLoop.execute { framer.value.resume(expectingData: expectingData) }
    }
}

/// The syntax of LMTP command arguments (RFC 5321 §4.1.2).
public enum LMTPSyntax {
    /// `FROM:<a@b> PARAM…`: the address and the parameters.
    public static func path(_ argument: String, keyword: String) -> (String, [String])? {
        guard argument.uppercased().hasPrefix(keyword) else { return nil }
        let rest = argument.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces)
        guard rest.hasPrefix("<"), let close = rest.firstIndex(of: ">") else { return nil }
        let address = String(rest[rest.index(after: rest.startIndex)..<close])
        let parameters = rest[rest.index(after: close)...].split(separator: " ").map(String.init)
        return (address, parameters)
    }
}
