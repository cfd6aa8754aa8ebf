import Synchronization

/// Closes the connection's input between a framed STARTTLS command and the moment TLS is in place.
///
/// The STARTTLS command-injection class of bug (CVE-2011-0411 and its IMAP cousins): plaintext the client sent after
/// STARTTLS — already in the read buffer, or arriving before the TLS handler is installed — must never be executed
/// as if it came over TLS. The framing decoder closes the gate itself when it frames STARTTLS and discards every
/// byte while it is closed; the session opens it again on the event loop right after installing TLS, or when it
/// refuses the command.
public final class StartTLSGate: Sendable {
    private let closed = Mutex(false)

    public init() {}

    public var isClosed: Bool { closed.withLock { $0 } }

    func close() { closed.withLock { $0 = true } }

    /// Lets input through again (call on the channel's event loop once TLS is installed, or after a refusal).
    public func open() { closed.withLock { $0 = false } }
}

/// What a session needs to turn its connection into TLS (RFC 9051 §6.2.1). Provided by the listener, which knows
/// the channel and the certificate; IMAPEngine stays free of NIOSSL.
public protocol TLSUpgrade: Sendable {
    /// Writes `reply` (the tagged OK) in plaintext, installs TLS in front of the connection and opens the gate, in
    /// one turn of the event loop. They cannot be separate steps: a client sends its ClientHello as soon as it reads
    /// the OK, and a read handled between the two would be taken for injected plaintext and thrown away, leaving the
    /// handshake hanging. Earlier responses must already have been handed to the channel.
    func start(reply: [UInt8]) async throws
    /// STARTTLS was refused: plaintext flows again.
    func refuse()
}

/// What the framing decoder knows of the session: whether the client has logged in. Before that, lines and literals
/// are held to the small pre-login limits (`IMAPLimits.maxLineLengthBeforeLogin`), whatever the command.
public final class LoginState: Sendable {
    private let loggedIn = Mutex(false)

    public init() {}

    public var isLoggedIn: Bool { loggedIn.withLock { $0 } }

    func set(_ value: Bool) { loggedIn.withLock { $0 = value } }
}
