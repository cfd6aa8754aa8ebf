import IMAPEngine
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The server's certificate and key (PEM files), as an `NIOSSLContext` that SIGHUP replaces: new connections use
/// the new certificate, established ones keep theirs, nobody is dropped. TLS 1.2 and newer only.
final class TLSCertificates: Sendable {
    let certificatePath: String
    let keyPath: String
    private let context: Mutex<NIOSSLContext>

    init(certificatePath: String, keyPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        context = Mutex(try Self.load(certificatePath: certificatePath, keyPath: keyPath))
    }

    static func load(certificatePath: String, keyPath: String) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw ServerConfiguration.Problem(description: "cannot read the certificate \(certificatePath): \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ServerConfiguration.Problem(description: "cannot read the private key \(keyPath): \(error)")
        }
        guard !chain.isEmpty else {
            throw ServerConfiguration.Problem(description: "\(certificatePath) holds no certificate")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerConfiguration.Problem(
                description:
                    "the private key \(keyPath) does not go with the certificate \(certificatePath), or cannot be "
                    + "used: \(error)")
        }
    }

    var current: NIOSSLContext { context.withLock { $0 } }

    /// Reads the files again; on failure the old certificate stays in use.
    func reload(logger: Logger) {
        do {
            let fresh = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
            context.withLock { $0 = fresh }
            logger.notice("TLS certificate reloaded", metadata: ["tls.cert": "\(certificatePath)"])
        } catch {
            logger.error("TLS certificate reload failed; keeping the old one", metadata: ["error": "\(error)"])
        }
    }
}

/// STARTTLS for one connection: the TLS handler goes first in the pipeline and the framing gate opens, in one
/// event-loop turn, so no byte can slip between them.
struct StartTLSUpgrade: TLSUpgrade {
    let channel: any Channel
    let gate: StartTLSGate
    let certificates: TLSCertificates

    func start(reply: [UInt8]) async throws {
        let context = certificates.current
        try await channel.eventLoop.submit {
            // The write has passed the whole pipeline when writeAndFlush returns, so TLS placed first from here on
            // does not touch it but sees every byte read after it.
            channel.writeAndFlush(ByteBuffer(bytes: reply), promise: nil)
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context), position: .first)
            gate.open()
        }.get()
    }

    func refuse() { gate.open() }
}
