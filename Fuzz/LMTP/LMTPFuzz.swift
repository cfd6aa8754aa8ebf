// libFuzzer target: the LMTP framer (commands, DATA with dot-stuffing, BDAT chunks, limits) and the command syntax
// (scripts/fuzz LMTP).
import IMAPEngine
import LMTPProtocol
import NIOCore
import NIOEmbedded

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLMTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let budget = MessageBudget(capacity: bytes[0] & 1 == 1 ? 1 << 30 : 16 << 20)
    let framer = LMTPFramer(maxMessageSize: 4096, budget: budget)
    let channel = EmbeddedChannel(handler: framer)
    let piece = Int(bytes[0] >> 1) + 1
    var start = 1
    while start < bytes.count {
        let end = min(bytes.count, start + piece)
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes[start..<end]))
        start = end
        while let input = try? channel.readInbound(as: LMTPInput.self) {
            guard case .command(let line) = input else { continue }
            let text = String(decoding: line, as: UTF8.self)
            _ = LMTPSyntax.path(String(text.dropFirst(5)), keyword: "FROM:")
            _ = LMTPSyntax.path(String(text.dropFirst(5)), keyword: "TO:")
            _ = LMTPFramer.bdat(line)
            if text.uppercased().hasPrefix("DATA") { framer.resume(expectingData: line.count % 2 == 0) }
        }
    }
    _ = try? channel.finish()
    if budget.inUse != 0 { fatalError("upload memory still reserved: \(budget.inUse)") }
    return 0
}
