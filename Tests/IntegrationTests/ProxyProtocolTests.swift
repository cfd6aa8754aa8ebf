import NIOCore
import ProxyProtocol
import Testing

@testable import MailHost

/// The PROXY protocol parser and trusted networks (shared/rfc/proxy-protocol.txt), without a server.
@Suite struct ProxyProtocolTests {
    func parse(_ bytes: [UInt8]) throws -> (String?, Int)? {
        try ProxyHeader.parse(bytes).map { ($0.0.address, $0.1) }
    }

    @Test func version1() throws {
        let header = Array("PROXY TCP4 192.0.2.1 198.51.100.1 56324 143\r\n".utf8)
        #expect(try parse(header + Array("a1 NOOP\r\n".utf8))?.0 == "192.0.2.1")
        #expect(try parse(header)?.1 == header.count)
        #expect(try parse(Array("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n".utf8))?.0 == "2001:db8::1")
        #expect(try parse(Array("PROXY UNKNOWN\r\n".utf8))?.0 == nil)
        #expect(try parse(Array("PROXY TCP4 192.0.2.1".utf8)) == nil)  // incomplete: wait for more
        #expect(throws: ProxyProtocolHandler.Failure.self) { try parse(Array("PROXY TCP4 nonsense 1 2 3\r\n".utf8)) }
        #expect(throws: ProxyProtocolHandler.Failure.self) { try parse(Array("a1 LOGIN tim timmy\r\n".utf8)) }
        #expect(throws: ProxyProtocolHandler.Failure.self) {
            try parse(Array("PROXY TCP4 ".utf8) + Array(repeating: UInt8(ascii: "1"), count: 200))
        }
    }

    @Test func version2() throws {
        let signature = ProxyHeader.v2Signature
        let ipv4: [UInt8] = signature + [0x21, 0x11, 0x00, 0x0C, 203, 0, 113, 7, 127, 0, 0, 1, 0x9C, 0x40, 0x00, 0x8F]
        #expect(try parse(ipv4 + [0x61])?.0 == "203.0.113.7")
        #expect(try parse(ipv4)?.1 == 28)
        var ipv6 = signature + [0x21, 0x21, 0x00, 0x24]
        ipv6 += [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [1]
        ipv6 += Array(repeating: 0, count: 15) + [1] + [0, 1, 0, 2]
        #expect(try parse(ipv6)?.0 == "2001:db8::1")
        let local: [UInt8] = signature + [0x20, 0x00, 0x00, 0x00]
        #expect(try parse(local)?.0 == nil)
        #expect(try parse(Array(ipv4.prefix(20))) == nil)
        #expect(throws: ProxyProtocolHandler.Failure.self) { try parse(signature + [0x31, 0x11, 0x00, 0x00]) }
    }

    @Test func version2TLSFromTheProxy() throws {
        // HAProxy's send-proxy-v2-ssl: PP2_TYPE_SSL (0x20) with PP2_CLIENT_SSL set.
        let ssl: [UInt8] = [0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0]
        let header: [UInt8] =
            ProxyHeader.v2Signature + [
                0x21, 0x11, 0x00, UInt8(12 + ssl.count), 203, 0, 113, 7, 10, 0, 0, 1, 1, 2, 3, 4,
            ]
            + ssl
        let parsed = try ProxyHeader.parse(header)
        #expect(parsed?.0 == ProxyHeader.Client(address: "203.0.113.7", tls: true))
        let withoutTLS: [UInt8] =
            ProxyHeader.v2Signature + [0x21, 0x11, 0x00, 12, 203, 0, 113, 7, 10, 0, 0, 1, 1, 2, 3, 4]
        let plain = try ProxyHeader.parse(withoutTLS)
        #expect(plain?.0 == ProxyHeader.Client(address: "203.0.113.7", tls: false))
    }

    @Test func trustedNetworks() {
        #expect(NetworkRange("10.0.0.0/8")?.contains("10.20.30.40") == true)
        #expect(NetworkRange("10.0.0.0/8")?.contains("11.0.0.1") == false)
        #expect(NetworkRange("192.168.1.0/25")?.contains("192.168.1.127") == true)
        #expect(NetworkRange("192.168.1.0/25")?.contains("192.168.1.128") == false)
        #expect(NetworkRange("127.0.0.0/8")?.contains("::ffff:127.0.0.1") == true)
        #expect(NetworkRange("::1/128")?.contains("::1") == true)
        #expect(NetworkRange("2001:db8::/32")?.contains("2001:db8:1::5") == true)
        #expect(NetworkRange("2001:db8::/32")?.contains("10.0.0.1") == false)
        #expect(NetworkRange("10.0.0.0/33") == nil)
        #expect(NetworkRange("not-a-network") == nil)
        #expect(NetworkRange("10.1.2.3")?.description == "10.1.2.3/32")
    }
}
