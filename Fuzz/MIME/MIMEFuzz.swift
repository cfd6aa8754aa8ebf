// libFuzzer target: the MIME reader (envelope, body structure, search text, sections) and the streaming decoders
// and header filter FETCH uses for large sections, which must give exactly what the whole-buffer ones give
// (scripts/fuzz MIME).
@testable import IMAPEngine

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMIME(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let message = ParsedMessage(parsing: bytes)
    // Offsets refer to the stored form (line ends normalised to CRLF), as the store keeps it.
    check(message.root, in: message.bytes, cut: max(1, size % 13))
    let header = Array(message.bytes[0..<min(message.headerLength, message.bytes.count)])
    var filter = HeaderFilter.Stream(names: ["Subject", "From", "x-a"], not: size % 2 == 0)
    var streamed: [UInt8] = []
    for start in stride(from: 0, to: header.count, by: 7) {
        filter.feed(Array(header[start..<min(header.count, start + 7)]), into: &streamed)
    }
    filter.finish(into: &streamed)
    if streamed != HeaderFilter.filter(header, names: ["Subject", "From", "x-a"], not: size % 2 == 0) {
        fatalError("streamed header filter differs from the whole-buffer one")
    }
    return 0
}

/// Every leaf: decoding it piece by piece equals decoding it whole, and its ranges lie within the message.
private func check(_ part: MessagePart, in bytes: [UInt8], cut: Int) {
    guard part.headerStart <= part.bodyStart, part.bodyStart <= part.bodyEnd, part.bodyEnd <= bytes.count else {
        fatalError("part ranges outside the message: \(part.headerStart) \(part.bodyStart) \(part.bodyEnd)")
    }
    for child in part.children { check(child, in: bytes, cut: cut) }
    guard part.children.isEmpty else { return }
    let body = Array(bytes[part.bodyStart..<part.bodyEnd])
    let whole = TransferEncoding.decode(body, encoding: part.encoding)
    guard var decoder = TransferEncoding.Decoder(encoding: part.encoding) else {
        if whole != nil { fatalError("no streaming decoder for \(part.encoding)") }
        return
    }
    var streamed: [UInt8] = []
    for start in stride(from: 0, to: body.count, by: cut) {
        decoder.feed(Array(body[start..<min(body.count, start + cut)]), into: &streamed)
    }
    decoder.finish(into: &streamed)
    if streamed != whole { fatalError("streamed \(part.encoding) decoding differs from the whole-buffer one") }
    if let size = part.decodedSize, size != streamed.count { fatalError("decoded size \(size) != \(streamed.count)") }
}
