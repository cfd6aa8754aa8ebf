// libFuzzer target: the PROXY protocol v1/v2 header parser (scripts/fuzz ProxyHeader).
import ProxyProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: min(size, ProxyHeader.maximumLength)))
    // Whole, and as a connection would see it arriving: every prefix either needs more, fails, or gives a header
    // no longer than what was read.
    for end in [bytes.count, bytes.count / 2, min(bytes.count, 16)] {
        if let (_, length) = try? ProxyHeader.parse(Array(bytes[0..<end])), length > end || length <= 0 {
            fatalError("header length \(length) outside the \(end) bytes read")
        }
    }
    return 0
}
