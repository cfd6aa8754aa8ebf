import NIOCore
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

    static func readies(_ chunks: [ArraySlice<UInt8>]) -> Int {
        var framing = MessageFraming()
        return chunks.reduce(0) { count, chunk in
            count + framing.messagesEnded(in: ByteBuffer(bytes: chunk)) { $0 == UInt8(ascii: "Z") }
        }
    }

    @Test func everyCutGivesTheSameCount() {
        let bytes = Self.stream
        #expect(Self.readies([bytes[...]]) == 3)
        // One byte at a time.
        #expect(Self.readies(bytes.indices.map { bytes[$0...$0] }) == 3)
        // Every cut into two reads.
        for cut in 0...bytes.count {
            #expect(Self.readies([bytes[..<cut], bytes[cut...]]) == 3, "cut at \(cut)")
        }
    }

    /// A ReadyForQuery is counted when its last byte arrives, not before.
    @Test func aMessageCountsOnlyWhenWhole() {
        var framing = MessageFraming()
        let ready = Self.message("Z", body: [0x49])
        #expect(framing.messagesEnded(in: ByteBuffer(bytes: ready[..<5])) { $0 == UInt8(ascii: "Z") } == 0)
        #expect(framing.messagesEnded(in: ByteBuffer(bytes: ready[5...])) { $0 == UInt8(ascii: "Z") } == 1)
    }
}
