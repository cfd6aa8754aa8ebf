// libFuzzer target: the IMAP framing decoder and the command parser, on any bytes (scripts/fuzz IMAPCommands).
import NIOCore
import NIOEmbedded

@testable import IMAPEngine

/// The first byte picks the session's phase (before or after login) and how the rest is cut into reads; small limits
/// make the limit paths reachable with small inputs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIMAPCommands(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = IMAPLimits()
    limits.maxLineLength = 2048
    limits.maxLineLengthBeforeLogin = 512
    limits.maxInlineLiteral = 1024
    limits.maxLiteralBeforeLogin = 256
    limits.maxAppendSize = 8192
    limits.maxCommandSize = 4096
    let login = LoginState()
    if bytes[0] & 1 == 1 { login.set(true) }
    let budget = MessageBudget(capacity: bytes[0] & 2 == 2 ? 1 << 30 : 20_000)
    let channel = EmbeddedChannel(
        handler: ByteToMessageHandler(IMAPFrameDecoder(limits: limits, login: login, budget: budget)))
    let piece = Int(bytes[0] >> 2) + 1
    var start = 1
    while start < bytes.count {
        let end = min(bytes.count, start + piece)
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes[start..<end]))
        start = end
        while let part = try? channel.readInbound(as: FramedInput.self) {
            if case .line(let line, _) = part { _ = CommandParser.parse(line) }
        }
    }
    _ = try? channel.finish()
    // Every upload reservation was given back with the command that held it (or the decoder that read it).
    if budget.inUse != 0 { fatalError("upload memory still reserved: \(budget.inUse)") }
    return 0
}
