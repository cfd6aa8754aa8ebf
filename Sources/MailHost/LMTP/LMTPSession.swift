import Foundation
import Synchronization
import IMAPEngine
import LMTPProtocol
import Logging
import NIOCore

/// One LMTP session (RFC 2033): LHLO, MAIL, RCPT, DATA or BDAT with one reply per accepted recipient, RSET, NOOP,
/// VRFY, QUIT, with PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SMTPUTF8, CHUNKING and SIZE.
///
/// Nothing is stored before the whole message has arrived: a client that disconnects before the final `.` (or the
/// LAST chunk) leaves nothing behind.
final class LMTPSession {
    struct Settings: Sendable {
        var hostname: String
        var maxMessageSize: Int
        var maxRecipients: Int
        /// How long the client may stay silent (RFC 5321 §4.5.3.2 suggests five minutes for a server).
        var timeout: Duration = .seconds(300)
    }

    let delivery: LocalDelivery
    let settings: Settings
    let out: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let framer: LMTPFramerControl
    let peer: String?
    var logger: Logger

    private var heloName: String?
    private var sender: String?
    private var recipients: [LocalDelivery.Recipient] = []
    private var chunks: [UInt8] = []
    /// The upload memory of `chunks`, given back when the transaction ends.
    private var chunkReservations: [MessageBudget.Reservation] = []
    private var chunksTooLarge = false
    private var chunksBusy = false
    private static let counter = Counter()

    init(
        delivery: LocalDelivery, settings: Settings, out: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        framer: LMTPFramerControl, peer: String?, logger: Logger
    ) {
        self.delivery = delivery
        self.settings = settings
        self.out = out
        self.framer = framer
        self.peer = peer
        self.logger = logger
    }

    func reply(_ lines: [String]) async throws {
        try await out.write(ByteBuffer(string: lines.map { $0 + "\r\n" }.joined()))
    }

    func reply(_ line: String) async throws { try await reply([line]) }

    func greet() async throws { try await reply("220 \(settings.hostname) LMTP MailHost ready") }

    enum Outcome { case keepGoing, close }

    func handle(_ input: LMTPInput) async throws -> Outcome {
        switch input {
        case .commandTooLong:
            try await reply("500 5.5.2 Line too long")
            return .keepGoing
        case .command(let bytes):
            // A command line holds no control characters: a CR or NUL in MAIL FROM or LHLO would end up in the
            // Return-Path: and Received: headers written into the message.
            guard !bytes.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                try await reply("500 5.5.2 Syntax error: control characters in the command")
                return .keepGoing
            }
            return try await command(String(decoding: bytes, as: UTF8.self))
        case .data(let body, let tooLarge, let busy, let reservation):
            defer { reservation?.release() }
            try await finishTransaction(body: body, tooLarge: tooLarge, busy: busy)
            return .keepGoing
        case .chunk(let body, let last, let tooLarge, let busy, let reservation):
            guard sender != nil, !recipients.isEmpty else {
                reservation?.release()
                try await reply("503 5.5.1 Need MAIL and RCPT before BDAT")
                return .keepGoing
            }
            chunksTooLarge = chunksTooLarge || tooLarge || chunks.count + body.count > settings.maxMessageSize
            chunksBusy = chunksBusy || busy
            if !chunksTooLarge && !chunksBusy {
                chunks.append(contentsOf: body)
                if let reservation { chunkReservations.append(reservation) }
            } else {
                reservation?.release()
            }
            if last {
                let message = chunks
                let (tooLarge, busy) = (chunksTooLarge, chunksBusy)
                chunks = []
                chunksTooLarge = false
                chunksBusy = false
                try await finishTransaction(body: message, tooLarge: tooLarge, busy: busy)
            } else {
                try await reply("250 2.0.0 \(body.count) octets received")
            }
            return .keepGoing
        }
    }

    private func command(_ line: String) async throws -> Outcome {
        let verb = line.prefix { $0 != " " }.uppercased()
        let argument = line.dropFirst(verb.count).trimmingCharacters(in: .whitespaces)
        switch verb {
        case "LHLO":
            guard !argument.isEmpty else {
                try await reply("501 5.5.4 LHLO needs a name")
                return .keepGoing
            }
            heloName = String(argument.prefix(255))
            resetTransaction()
            try await reply([
                "250-\(settings.hostname)", "250-PIPELINING", "250-ENHANCEDSTATUSCODES", "250-8BITMIME",
                "250-SMTPUTF8", "250-CHUNKING", "250 SIZE \(settings.maxMessageSize)",
            ])
        case "HELO", "EHLO":
            try await reply("500 5.5.1 This is LMTP: use LHLO")
        case "MAIL":
            guard heloName != nil else {
                try await reply("503 5.5.1 LHLO first")
                return .keepGoing
            }
            guard sender == nil else {
                try await reply("503 5.5.1 Nested MAIL command")
                return .keepGoing
            }
            guard let (address, parameters) = LMTPSyntax.path(argument, keyword: "FROM:") else {
                try await reply("501 5.5.4 Syntax: MAIL FROM:<address> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8]")
                return .keepGoing
            }
            for parameter in parameters {
                let upper = parameter.uppercased()
                if upper.hasPrefix("SIZE=") {
                    guard let size = Int(parameter.dropFirst(5)) else {
                        try await reply("501 5.5.4 Bad SIZE parameter")
                        return .keepGoing
                    }
                    if size > settings.maxMessageSize {
                        try await reply("552 5.3.4 Message size exceeds fixed limit of \(settings.maxMessageSize)")
                        return .keepGoing
                    }
                } else if !["BODY=7BIT", "BODY=8BITMIME", "SMTPUTF8"].contains(upper) {
                    try await reply("555 5.5.4 Unsupported parameter \(parameter.prefix(40))")
                    return .keepGoing
                }
            }
            sender = address
            try await reply("250 2.1.0 Sender OK")
        case "RCPT":
            guard sender != nil else {
                try await reply("503 5.5.1 MAIL first")
                return .keepGoing
            }
            guard let (address, _) = LMTPSyntax.path(argument, keyword: "TO:"), !address.isEmpty else {
                try await reply("501 5.5.4 Syntax: RCPT TO:<address>")
                return .keepGoing
            }
            guard recipients.count < settings.maxRecipients else {
                try await reply("452 4.5.3 Too many recipients")
                return .keepGoing
            }
            switch await delivery.resolve(address: address) {
            case .recipient(let recipient):
                recipients.append(recipient)
                try await reply("250 2.1.5 Recipient OK")
            case .badAddress:
                try await reply("501 5.1.3 Bad recipient address syntax")
            case .foreignDomain:
                try await reply("550 5.1.2 Mail for that domain is not accepted here")
            case .unknownUser:
                try await reply("550 5.1.1 User unknown")
            case .disabled:
                try await reply("550 5.2.1 Mailbox disabled")
            case .overQuota:
                try await reply(delivery.quotaTemporary ? "452 4.2.2 Mailbox full" : "552 5.2.2 Mailbox full")
            case .unavailable:
                try await reply("451 4.3.0 Temporary failure, try again later")
            }
        case "DATA" where !argument.isEmpty:
            try await reply("501 5.5.4 DATA takes no argument")
        case "DATA":
            guard sender != nil, !recipients.isEmpty else {
                framer.resume(expectingData: false)
                try await reply("503 5.5.1 No valid recipients")
                return .keepGoing
            }
            try await reply("354 Start mail input; end with <CRLF>.<CRLF>")
            framer.resume(expectingData: true)
        case "BDAT":
            break  // the framer reads the chunk; the session answers when it arrives
        case "RSET":
            resetTransaction()
            try await reply("250 2.0.0 OK")
        case "NOOP":
            try await reply("250 2.0.0 OK")
        case "VRFY":
            try await reply("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery")
        case "QUIT":
            try await reply("221 2.0.0 \(settings.hostname) closing connection")
            return .close
        default:
            try await reply("500 5.5.2 Unknown command")
        }
        return .keepGoing
    }

    /// One reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
    private func finishTransaction(body: [UInt8], tooLarge: Bool, busy: Bool) async throws {
        defer { resetTransaction() }
        let accepted = recipients
        guard let sender, !accepted.isEmpty else {
            try await reply("503 5.5.1 No valid recipients")
            return
        }
        if tooLarge {
            try await reply(accepted.map { _ in "552 5.3.4 Message size exceeds fixed limit" })
            return
        }
        if busy {
            // RFC 3463 4.3.1: the server is short of memory for messages right now; the MTA tries again later.
            logger.notice("LMTP message refused: message memory budget spent")
            try await reply(accepted.map { _ in "452 4.3.1 Insufficient system resources, try again later" })
            return
        }
        let id = "\(Self.counter.next())\(UInt32.random(in: 0...UInt32.max))"
        let trace = LocalDelivery.traceHeaders(
            sender: sender, heloName: heloName, peer: peer, hostname: settings.hostname, id: id,
            recipients: accepted.map(\.address), date: Date())
        let message = ParsedMessage(parsing: trace + body)  // parsed once for every recipient
        let outcomes = await delivery.deliver(message, to: accepted)
        try await reply(
            outcomes.map { outcome in
                switch outcome {
                case .stored: "250 2.0.0 Message \(id) stored"
                case .overQuota: delivery.quotaTemporary ? "452 4.2.2 Mailbox full" : "552 5.2.2 Mailbox full"
                case .unavailable: "451 4.3.0 Temporary failure, try again later"
                case .failed: "451 4.3.0 Local error in processing"
                }
            })
    }

    private func resetTransaction() {
        sender = nil
        recipients = []
        chunks = []
        for reservation in chunkReservations { reservation.release() }
        chunkReservations = []
        chunksTooLarge = false
        chunksBusy = false
    }

    /// Delivery ids.
    final class Counter: Sendable {
        private let value = Synchronization.Atomic<Int>(0)
        func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
    }
}
