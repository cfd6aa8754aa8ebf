import Foundation
import Glibc
import NIOCore
import ProxyProtocol

/// Reads the PROXY protocol header (v1 text or v2 binary, shared/rfc/proxy-protocol.txt) that a load balancer puts
/// before the client's bytes, reports the client's real address, and removes itself. Connections from outside the
/// trusted networks, malformed headers, and clients that send no header within the timeout are closed.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    typealias Client = ProxyHeader.Client

    let address: EventLoopPromise<Client>
    private let trusted: [NetworkRange]
    private var buffer: ByteBuffer?
    private var timeout: Scheduled<Void>?

    typealias Failure = ProxyHeader.Failure

    init(address: EventLoopPromise<Client>, trusted: [NetworkRange]) {
        self.address = address
        self.trusted = trusted
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let peer = context.channel.remoteAddress?.ipAddress ?? ""
        guard trusted.contains(where: { $0.contains(peer) }) else {
            fail(context, "PROXY header from an untrusted address \(peer)")
            return
        }
        timeout = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { [weak self] in
            self?.fail(context, "no PROXY header within 10 seconds")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil {
            buffer = incoming
        } else {
            buffer?.writeBuffer(&incoming)
        }
        guard var bytes = buffer else { return }
        do {
            guard
                let (client, length) = try ProxyHeader.parse(
                    Array(bytes.readableBytesView.prefix(ProxyHeader.maximumLength)))
            else { return }
            timeout?.cancel()
            bytes.moveReaderIndex(forwardBy: length)
            buffer = nil
            address.succeed(client)
            if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        } catch {
            fail(context, "\(error)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        // Nothing at all before the close: a load balancer's TCP health check (HAProxy's `check`), not a client.
        address.fail(
            buffer == nil ? ClosedSilently() : Failure(description: "connection closed before the PROXY header"))
        context.fireChannelInactive()
    }

    /// The peer connected and closed without sending a byte (a health check); not worth a log line above debug.
    struct ClosedSilently: Error, CustomStringConvertible {
        var description: String { "connection closed before sending anything" }
    }

    private func fail(_ context: ChannelHandlerContext, _ reason: String) {
        timeout?.cancel()
        address.fail(Failure(description: reason))
        context.close(promise: nil)
    }
}
