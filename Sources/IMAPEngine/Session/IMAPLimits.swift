/// Every bound the engine enforces, in one place (DESIGN.md §7). Defaults follow RFC 9051 §4 and what Dovecot ships.
public struct IMAPLimits: Sendable {
    /// Longest command line, excluding literal contents. RFC 7162 §4 asks servers to accept at least 8192 octets;
    /// Dovecot's default is 64 KiB.
    public var maxLineLength: Int = 65_536
    /// Largest literal outside APPEND (LOGIN passwords, SEARCH strings, …).
    public var maxInlineLiteral: Int = 65_536
    /// A whole command other than APPEND: its lines and literals together.
    public var maxCommandSize: Int = 1 << 20
    /// Before login the framing takes only small commands, as Dovecot's login process does: a line (an ID command
    /// with RFC 2971's 30 pairs of 1024-octet values is about 32 KB), and literals (a password) of at most 8 KiB. An
    /// unauthenticated connection can make the server hold little.
    public var maxLineLengthBeforeLogin: Int = 65_536
    public var maxLiteralBeforeLogin: Int = 8192
    /// Items in one FETCH (each can be a section to read).
    public var maxFetchItems: Int = 128
    /// Largest message APPEND accepts (advertised as APPENDLIMIT in a later issue).
    public var maxAppendSize: Int = 64 * 1024 * 1024
    /// Bad commands in a row before the server says BYE.
    public var maxBadCommands: Int = 20
    /// Autologout before authentication (RFC 9051 §5.4 allows a shorter timer here).
    public var unauthenticatedTimeout: Duration = .seconds(60)
    /// Autologout once authenticated: at least 30 minutes (RFC 9051 §5.4).
    public var authenticatedTimeout: Duration = .seconds(30 * 60)
    /// A non-synchronizing literal of LITERAL- (RFC 7888 §5) — the size we promise to always accept.
    public static let literalMinus = 4096
    /// `MessageBudget`'s default: memory for messages being uploaded, all connections together.
    public static let defaultUploadMemory = 2 << 30

    public init() {}
}
