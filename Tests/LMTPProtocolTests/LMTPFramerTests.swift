import IMAPEngine
import LMTPProtocol
import NIOCore
import NIOEmbedded
import Testing

/// The LMTP framer on an EmbeddedChannel: how DATA ends, and the upload memory of DATA and BDAT.
@Suite struct LMTPFramerTests {
    /// Feeds `pieces`, resuming DATA after every DATA command as the session does; returns what the framer produced.
    func frame(_ pieces: [[UInt8]], budget: MessageBudget? = nil, maxMessageSize: Int = 1 << 20) throws
        -> [LMTPInput]
    {
        let framer = LMTPFramer(maxMessageSize: maxMessageSize, budget: budget)
        let channel = EmbeddedChannel(handler: framer)
        var out: [LMTPInput] = []
        for piece in pieces {
            try channel.writeInbound(ByteBuffer(bytes: piece))
            while let input = try channel.readInbound(as: LMTPInput.self) {
                out.append(input)
                if case .command(let line) = input, line.starts(with: Array("DATA".utf8)) {
                    framer.resume(expectingData: true)
                    while let more = try channel.readInbound(as: LMTPInput.self) { out.append(more) }
                }
            }
        }
        _ = try? channel.finish()
        return out
    }

    func data(_ input: LMTPInput) -> [UInt8]? {
        if case .data(let body, _, _, _) = input { return body }
        return nil
    }

    @Test func onlyCRLFDotCRLFEndsData() throws {
        let out = try frame([Array("DATA\r\nline\n.\nmore\r\n..stuffed\r\n.\r\nNOOP\r\n".utf8)])
        #expect(out.count == 3)
        #expect(data(out[1]) == Array("line\n\nmore\r\n.stuffed\r\n".utf8))
        #expect(out.last == .command(Array("NOOP".utf8)))
    }

    /// Found in review: a CR that ends a piece of a line longer than 64 KiB and its LF in the next read still end
    /// the line, so the `.` after it ends the message.
    @Test func aLongLineSplitBetweenCRAndLFStillEndsBeforeTheDot() throws {
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 70_000) + [0x0D]
        let out = try frame([Array("DATA\r\n".utf8), long, [0x0A] + Array(".\r\nNOOP\r\n".utf8)])
        #expect(out.count == 3, "\(out.count) inputs")
        #expect(data(out[1])?.count == 70_002)
    }

    @Test func dataReservesItsMemoryAndHandsItOver() throws {
        let budget = MessageBudget(capacity: 64 << 20)
        let out = try frame(
            [Array(("DATA\r\n" + String(repeating: "x", count: 3000) + "\r\n.\r\n").utf8)], budget: budget)
        guard case .data(_, false, false, let reservation?) = out[1] else {
            Issue.record("no reservation: \(out)")
            return
        }
        #expect(budget.inUse > 0)
        reservation.release()
        #expect(budget.inUse == 0)
    }

    /// Found in review: BDAT chunks of a transaction the session refuses (or never ends) must not keep adding to
    /// the process's upload memory: each chunk carries its own reservation, which whoever gets it gives back.
    @Test func everyBDATChunkCarriesItsOwnReservation() throws {
        let budget = MessageBudget(capacity: 64 << 20)
        var pieces: [[UInt8]] = []
        for _ in 0..<20 { pieces.append(Array("BDAT 100000\r\n".utf8) + [UInt8](repeating: 0x41, count: 100_000)) }
        let out = try frame(pieces, budget: budget, maxMessageSize: 200_000)
        let chunks = out.compactMap { input -> MessageBudget.Reservation? in
            if case .chunk(let body, false, false, false, let reservation) = input, body.count == 100_000 {
                return reservation
            }
            return nil
        }
        #expect(chunks.count == 20)
        #expect(budget.inUse == 20 * MessageBudget.cost(100_000))  // each chunk arrived in one read
        for reservation in chunks { reservation.release() }
        #expect(budget.inUse == 0)
    }

    @Test func dataPastTheBudgetIsBusyAndHoldsNothing() throws {
        let budget = MessageBudget(capacity: 6 << 20)
        let hog = budget.reserve(messageBytes: 900_000)
        let body = String(repeating: "y", count: 200_000)
        let out = try frame([Array(("DATA\r\n" + body + "\r\n.\r\n").utf8)], budget: budget)
        #expect(out.count == 2)
        if case .data(let bytes, _, let busy, let reservation) = out[1] {
            #expect(busy && bytes.isEmpty && reservation == nil)
        } else {
            Issue.record("\(out)")
        }
        hog?.release()
        #expect(budget.inUse == 0)
    }

    /// A connection that closes mid-DATA gives the memory of its half-sent message back as it closes, while the
    /// framer itself may live on.
    @Test func aConnectionClosedMidDataHoldsNothing() throws {
        let budget = MessageBudget(capacity: 64 << 20)
        let framer = LMTPFramer(maxMessageSize: 1 << 20, budget: budget)
        let channel = EmbeddedChannel(handler: framer)
        try channel.writeInbound(ByteBuffer(string: "DATA\r\n"))
        _ = try channel.readInbound(as: LMTPInput.self)
        framer.resume(expectingData: true)
        try channel.writeInbound(ByteBuffer(string: "Subject: cut\r\n\r\n" + String(repeating: "c", count: 100_000)))
        #expect(budget.inUse > 0)
        _ = try? channel.finish()
        #expect(budget.inUse == 0)
        withExtendedLifetime(framer) {}
    }
}
