import Glibc

/// The PROXY protocol header (v1 text or v2 binary, shared/rfc/proxy-protocol.txt) that a load balancer puts before
/// the client's bytes: who the client really is. Parsing only; the connection handling is MailHost's.
public enum ProxyHeader {
    /// What the header says about the client.
    public struct Client: Sendable, Equatable {
        /// The client's address; nil for a LOCAL (health check) or UNKNOWN header: use the connection's own.
        public var address: String?
        /// The proxy ended the client's TLS (v2 `PP2_TYPE_SSL` with `PP2_CLIENT_SSL`, HAProxy's send-proxy-v2-ssl).
        public var tls = false

        public init(address: String?, tls: Bool = false) {
            self.address = address
            self.tls = tls
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1MaxLength = 107
    /// The longest header: 16 bytes and a 520-byte address block (v2), more than v1's 107.
    public static let maximumLength = 536

    /// The client address and the header length once the header is complete; nil while more bytes are needed.
    /// `data`: the first bytes of the connection (at most `maximumLength` are looked at).
    public static func parse(_ data: [UInt8]) throws -> (Client, Int)? {
        if data.count < 12 {
            if !v2Signature.starts(with: data) && !Array("PROXY ".utf8).starts(with: data.prefix(6)) {
                throw Failure(description: "not a PROXY header")
            }
            return nil
        }
        if Array(data.prefix(12)) == v2Signature { return try parseV2(data) }
        return try parseV1(data)
    }

    /// `PROXY TCP4 192.0.2.1 198.51.100.1 56324 143\r\n`.
    static func parseV1(_ data: [UInt8]) throws -> (Client, Int)? {
        guard data.starts(with: Array("PROXY ".utf8)) else { throw Failure(description: "not a PROXY header") }
        guard let lf = data.firstIndex(of: 0x0A) else {
            if data.count >= v1MaxLength { throw Failure(description: "PROXY v1 header too long") }
            return nil
        }
        guard lf > 0, data[lf - 1] == 0x0D, lf + 1 <= v1MaxLength else {
            throw Failure(description: "malformed PROXY v1 header")
        }
        let fields = String(decoding: data[6..<(lf - 1)], as: UTF8.self).split(separator: " ").map(String.init)
        switch fields.first {
        case "UNKNOWN":
            return (Client(address: nil), lf + 1)
        case "TCP4", "TCP6":
            guard fields.count == 5, isAddress(fields[1]), isAddress(fields[2]),
                let source = UInt16(fields[3]), let destination = UInt16(fields[4]), source > 0, destination > 0
            else { throw Failure(description: "malformed PROXY v1 addresses") }
            return (Client(address: fields[1]), lf + 1)
        default:
            throw Failure(description: "unknown PROXY v1 protocol")
        }
    }

    /// Signature, version/command, family/protocol, length, addresses, then TLVs (only PP2_TYPE_SSL is read).
    static func parseV2(_ data: [UInt8]) throws -> (Client, Int)? {
        guard data.count >= 16 else { return nil }
        let versionCommand = data[12]
        guard versionCommand >> 4 == 2 else { throw Failure(description: "unsupported PROXY version") }
        let length = Int(data[14]) << 8 | Int(data[15])
        guard length <= 520 else { throw Failure(description: "PROXY v2 header too long") }
        guard data.count >= 16 + length else { return nil }
        let block = Array(data[16..<(16 + length)])
        switch versionCommand & 0x0F {
        case 0x0:  // LOCAL: the proxy's own connection (health check)
            return (Client(address: nil), 16 + length)
        case 0x1:
            let family = data[13] >> 4
            var client = Client(address: nil)
            var tlvStart: Int
            switch family {
            case 0x1 where block.count >= 12:
                client.address = block[0..<4].map(String.init).joined(separator: ".")
                tlvStart = 12
            case 0x2 where block.count >= 36:
                // inet_ntop reads the 16 address bytes in place: no in6_addr value to build.
                let address = Array(block[0..<16])
                var text = [CChar](repeating: 0, count: 64)
                _ = address.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &text, socklen_t(text.count)) }
                client.address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                tlvStart = 36
            case 0x0:
                tlvStart = block.count
            default:
                throw Failure(description: "unsupported PROXY v2 address family")
            }
            while tlvStart + 3 <= block.count {
                let type = block[tlvStart]
                let tlvLength = Int(block[tlvStart + 1]) << 8 | Int(block[tlvStart + 2])
                let value = tlvStart + 3
                guard value + tlvLength <= block.count else { throw Failure(description: "malformed PROXY v2 TLV") }
                if type == 0x20, tlvLength >= 1 { client.tls = block[value] & 0x01 != 0 }
                tlvStart = value + tlvLength
            }
            return (client, 16 + length)
        default:
            throw Failure(description: "unknown PROXY v2 command")
        }
    }

    /// An IPv4 or IPv6 address in text form.
    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
