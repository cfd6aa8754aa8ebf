import Foundation
import Glibc

/// A self-signed certificate for localhost and 127.0.0.1, made with openssl(1) in a temporary directory.
struct TestCertificate {
    let directory: URL
    var certificate: URL { directory.appendingPathComponent("cert.pem") }
    var key: URL { directory.appendingPathComponent("key.pem") }

    static func make(commonName: String = "localhost", in directory: URL? = nil) async throws -> TestCertificate {
        let directory =
            directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("mh-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let made = TestCertificate(directory: directory)
        let result = try await runTool(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", made.key.path, "-out",
                made.certificate.path, "-days", "1", "-subj", "/CN=\(commonName)", "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
        guard result.status == 0 else { throw TestFailure("openssl req failed: \(result.stderr)") }
        return made
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else { throw TestFailure("bind failed") }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
