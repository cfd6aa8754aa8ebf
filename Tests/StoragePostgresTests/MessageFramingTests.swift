import NIOCore
import NIOEmbedded
@testable import StoragePostgres
import Testing

/// `MessageFraming`: the messages of a PostgreSQL protocol stream are told apart however the stream is cut into reads.
struct MessageFramingTests {
    /// A message: type byte, big-endian length counting itself, body.
    static func message(_ type: Character, body: [UInt8]) -> [UInt8] {
        let length = UInt32(body.count + 4)
        return [
            type.asciiValue!, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff),
            UInt8(length & 0xff),
        ] + body
    }

    /// Rows (one with a "Z" inside), an empty-bodied message, CommandComplete and ReadyForQuery, twice.
    static let stream: [UInt8] = {
        let answer =
            message("D", body: Array("ZZZZ".utf8)) + message("D", body: [UInt8](repeating: 0x5a, count: 3000))
            + message("2", body: []) + message("C", body: Array("SELECT 2\0".utf8)) + message("Z", body: [0x49])
        return answer + answer + message("Z", body: [0x54])
    }()

    /// Each message's type, length and first body byte, whatever the cuts: the transaction status of the three
    /// ReadyForQuery in order, and nil for the empty-bodied one.
    @Test func everyCutGivesTheSameMessages() {
        let bytes = Self.stream
        func messages(_ chunks: [ArraySlice<UInt8>]) -> [String] {
            var framing = MessageFraming()
            var seen: [String] = []
            for chunk in chunks {
                framing.scan(ByteBuffer(bytes: chunk)) { message in
                    let first = message.first.map { String(UnicodeScalar($0)) } ?? "-"
                    seen.append("\(UnicodeScalar(message.type))\(message.length)\(first)")
                }
            }
            return seen
        }
        let whole = messages([bytes[...]])
        #expect(
            whole == ["D8Z", "D3004Z", "24-", "C13S", "Z5I", "D8Z", "D3004Z", "24-", "C13S", "Z5I", "Z5T"])
        #expect(messages(bytes.indices.map { bytes[$0...$0] }) == whole)
        for cut in 0...bytes.count {
            #expect(messages([bytes[..<cut], bytes[cut...]]) == whole, "cut at \(cut)")
        }
    }

    /// A message ends when its last byte arrives, not before.
    @Test func aMessageEndsOnlyWhenWhole() {
        var framing = MessageFraming()
        var ended: [UInt8] = []
        let ready = Self.message("Z", body: [0x49])
        framing.scan(ByteBuffer(bytes: ready[..<5])) { ended.append($0.type) }
        #expect(ended.isEmpty)
        framing.scan(ByteBuffer(bytes: ready[5...])) { ended.append($0.type) }
        #expect(ended == [UInt8(ascii: "Z")])
    }
}

/// `CommitWatch` as the guard drives it, on an embedded channel: a write is confirmed only by an idle ReadyForQuery for
/// every Sync; odd framing or a COPY makes it untrusted for good; a close before the answer is `Lost`.
struct CommitWatchTests {
    static func channel() throws -> (EmbeddedChannel, CommitWatch) {
        let handler = ReadCompleteGuard()
        let channel = EmbeddedChannel(handler: handler)
        return (channel, handler.watch)
    }

    static func send(_ channel: EmbeddedChannel, _ type: Character, body: [UInt8] = []) throws {
        try channel.writeOutbound(ByteBuffer(bytes: MessageFramingTests.message(type, body: body)))
    }

    static func answer(_ channel: EmbeddedChannel, _ type: Character, body: [UInt8]) throws {
        try channel.writeInbound(ByteBuffer(bytes: MessageFramingTests.message(type, body: body)))
    }

    @Test func anIdleAnswerToEverySyncConfirms() async throws {
        let (channel, watch) = try Self.channel()
        try Self.send(channel, "P", body: Array("\0SELECT 1\0\0\0".utf8))
        try Self.send(channel, "S")
        try Self.send(channel, "S")
        try Self.answer(channel, "Z", body: [0x49])
        #expect(watch.counts == (2, 1))
        try Self.answer(channel, "Z", body: [0x49])
        try await watch.allAnswered()
        #expect(watch.reusable)
        _ = try channel.finish()
    }

    @Test func anAnswerInsideATransactionBlockDoesNotConfirm() async throws {
        for status in ["T", "E"] {
            let (channel, watch) = try Self.channel()
            try Self.send(channel, "S")
            try Self.answer(channel, "Z", body: [Character(status).asciiValue!])
            await #expect(throws: CommitWatch.Unusable.self) { try await watch.allAnswered() }
            #expect(!watch.reusable)
            _ = try channel.finish()
        }
    }

    @Test func oddFramingOrACopyIsNeverTrustedAgain() async throws {
        let odd: [(EmbeddedChannel) throws -> Void] = [
            { try Self.answer($0, "Z", body: [0x49, 0x49]) },  // length 6
            { try Self.answer($0, "Z", body: [0x58]) },  // status 'X'
            { try Self.send($0, "d", body: [1, 2, 3]) },  // CopyData
        ]
        for make in odd {
            let (channel, watch) = try Self.channel()
            try Self.send(channel, "S")
            try make(channel)
            try Self.answer(channel, "Z", body: [0x49])
            try Self.send(channel, "S")
            try Self.answer(channel, "Z", body: [0x49])
            await #expect(throws: CommitWatch.Unusable.self) { try await watch.allAnswered() }
            #expect(!watch.reusable)
            _ = try channel.finish()
        }
    }

    /// A wait that blocks: woken by the idle answer; by a 'T' answer or a COPY with `Unusable`; by a cancel with
    /// `CancellationError`. While the answer is pending the connection counts as reusable; after a failed or cancelled
    /// wait it does not.
    @Test func aBlockedWaitIsWokenByWhatComes() async throws {
        let cases: [(String, (EmbeddedChannel, Task<Void, any Error>) throws -> Void)] = [
            ("idle", { channel, _ in try Self.answer(channel, "Z", body: [0x49]) }),
            ("in a transaction", { channel, _ in try Self.answer(channel, "Z", body: [0x54]) }),
            ("copy", { channel, _ in try Self.send(channel, "c") }),
            ("cancelled", { _, wait in wait.cancel() }),
        ]
        for (name, wake) in cases {
            let (channel, watch) = try Self.channel()
            try Self.send(channel, "S")
            let wait = Task { try await watch.allAnswered() }
            try await LoopPoolsTests.waitUntil { watch.isWaited }
            #expect(watch.reusable, "\(name): pending")
            try wake(channel, wait)
            let outcome = await wait.result
            switch name {
            case "idle":
                #expect(throws: Never.self, "\(name)") { try outcome.get() }
                #expect(watch.reusable, "\(name)")
            case "cancelled":
                #expect(throws: CancellationError.self, "\(name)") { try outcome.get() }
                #expect(!watch.reusable, "\(name)")
            default:
                #expect(throws: CommitWatch.Unusable.self, "\(name)") { try outcome.get() }
                #expect(!watch.reusable, "\(name)")
            }
            _ = try channel.finish()
        }
    }

    @Test func aCloseBeforeTheAnswerIsLost() async throws {
        let (channel, watch) = try Self.channel()
        try Self.send(channel, "S")
        _ = try channel.finish()
        await #expect(throws: CommitWatch.Lost.self) { try await watch.allAnswered() }
        #expect(!watch.reusable)
    }
}
