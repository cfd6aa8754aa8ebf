import Foundation
import Glibc
import NIOCore
import NIOPosix

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

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests). Through NIO: the C `sockaddr_in` of Glibc and
/// of NIO's CNIOLinux clash under MemberImportVisibility.
func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).wait()
    defer { try? channel.close().wait() }
    guard let port = channel.localAddress?.port else { throw TestFailure("bind failed") }
    return port
}
