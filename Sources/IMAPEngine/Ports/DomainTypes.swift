/// Domain types shared by the engine and the store adapters.

/// A message's unique identifier within one mailbox and UIDVALIDITY (RFC 9051 §2.3.1.1).
public struct UID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { self.rawValue = value }
    public static func < (a: UID, b: UID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// A message's position in one session's view, 1-based (RFC 9051 §2.3.1.2). Never leaves the session.
public struct SequenceNumber: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ value: UInt32) { self.rawValue = value }
    public static func < (a: SequenceNumber, b: SequenceNumber) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// Modification sequence of a mailbox (RFC 7162 §3): every change takes the next one, in commit order.
public struct ModSeq: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public init(_ value: Int64) { self.rawValue = value }
    public static func < (a: ModSeq, b: ModSeq) -> Bool { a.rawValue < b.rawValue }
    public static let zero = ModSeq(0)
    public var description: String { String(rawValue) }
}

public typealias UIDValidity = UInt32

/// Store identifiers. Opaque to the engine.
public struct AccountID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
}

public struct MailboxID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
}

/// The five permanent system flags (RFC 9051 §2.3.2) as a bit set, as the store keeps them.
public struct SystemFlags: OptionSet, Hashable, Sendable {
    public var rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let answered = SystemFlags(rawValue: 1 << 0)
    public static let flagged = SystemFlags(rawValue: 1 << 1)
    public static let deleted = SystemFlags(rawValue: 1 << 2)
    public static let seen = SystemFlags(rawValue: 1 << 3)
    public static let draft = SystemFlags(rawValue: 1 << 4)
}

/// The permanent flags of one message: system flags plus keywords. `\Recent` is per session, never stored.
public struct MessageFlags: Hashable, Sendable {
    public var system: SystemFlags
    /// Keywords in the order they were set. Compared exactly, as the store compares them (Dovecot treats keywords
    /// case-sensitively too).
    public var keywords: [String]

    public init(system: SystemFlags = [], keywords: [String] = []) {
        self.system = system
        self.keywords = keywords
    }

    public init(_ flags: [Flag]) {
        var result = MessageFlags()
        for flag in flags { result.insert(flag) }
        self = result
    }

    public mutating func insert(_ flag: Flag) {
        if let bit = flag.systemFlag {
            system.insert(bit)
        } else if case .keyword(let name) = flag, !containsKeyword(name) {
            keywords.append(name)
        }
    }

    public func containsKeyword(_ name: String) -> Bool {
        keywords.contains(name)
    }

    /// The flags in the order the server announces them.
    public var flags: [Flag] {
        var out: [Flag] = []
        if system.contains(.answered) { out.append(.answered) }
        if system.contains(.flagged) { out.append(.flagged) }
        if system.contains(.deleted) { out.append(.deleted) }
        if system.contains(.seen) { out.append(.seen) }
        if system.contains(.draft) { out.append(.draft) }
        out.append(contentsOf: keywords.map { .keyword($0) })
        return out
    }
}

@inline(__always) func asciiLower(_ byte: UInt8) -> UInt8 {
    (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
}

@inline(__always) func asciiUpper(_ byte: UInt8) -> UInt8 {
    (byte >= 0x61 && byte <= 0x7A) ? byte & ~0x20 : byte
}
