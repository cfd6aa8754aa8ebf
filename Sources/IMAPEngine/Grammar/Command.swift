/// A command tag (RFC 9051 `tag`).
public typealias Tag = String

/// A secret such as a password: never printed.
public struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// A mailbox argument exactly as the client sent it (an `astring`, before modified UTF-7 decoding).
public struct MailboxArgument: Hashable, Sendable {
    public var wire: String
    public init(_ wire: String) { self.wire = wire }
}

/// A STATUS data item (RFC 9051 §6.3.11, RFC 3501 §6.3.10 for RECENT, RFC 9208 for SIZE's origin).
public enum StatusAttribute: String, Hashable, Sendable, CaseIterable {
    case messages = "MESSAGES"
    case uidNext = "UIDNEXT"
    case uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN"
    case deleted = "DELETED"
    case size = "SIZE"
    case recent = "RECENT"
    /// RFC 7162 §3.1.2.3 (a CONDSTORE enabling command).
    case highestModSeq = "HIGHESTMODSEQ"
    /// RFC 8474 §4.
    case mailboxID = "MAILBOXID"
}

/// STORE's action (RFC 9051 §6.4.6).
public struct StoreAction: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case replace, add, remove }
    public var kind: Kind
    public var silent: Bool
    public var flags: [Flag]
    /// RFC 7162 §3.1.3 `UNCHANGEDSINCE`: only messages whose modseq is at most this are changed.
    public var unchangedSince: ModSeq?
    public init(kind: Kind, silent: Bool, flags: [Flag], unchangedSince: ModSeq? = nil) {
        self.kind = kind
        self.silent = silent
        self.flags = flags
        self.unchangedSince = unchangedSince
    }
}

/// FETCH modifiers (RFC 4466 §2.4): `CHANGEDSINCE` (RFC 7162 §3.1.4) and `VANISHED` (§3.2.6, UID FETCH only).
public struct FetchModifiers: Hashable, Sendable {
    public var changedSince: ModSeq?
    public var vanished: Bool
    public init(changedSince: ModSeq? = nil, vanished: Bool = false) {
        self.changedSince = changedSince
        self.vanished = vanished
    }
}

/// SELECT/EXAMINE parameters (RFC 4466 §2.1): `CONDSTORE` (RFC 7162 §3.1.8) and `QRESYNC` (§3.2.5).
public struct SelectParameters: Hashable, Sendable {
    public struct QResync: Hashable, Sendable {
        public var uidValidity: UInt32
        public var modSeq: ModSeq
        /// The UIDs the client knows (`*` not allowed); nil: all.
        public var knownUIDs: UIDRanges?
        public init(uidValidity: UInt32, modSeq: ModSeq, knownUIDs: UIDRanges? = nil) {
            self.uidValidity = uidValidity
            self.modSeq = modSeq
            self.knownUIDs = knownUIDs
        }
    }
    public var condstore: Bool
    public var qresync: QResync?
    public init(condstore: Bool = false, qresync: QResync? = nil) {
        self.condstore = condstore
        self.qresync = qresync
    }
}

/// LIST with the RFC 5258 extensions that RFC 9051 §6.3.9 made part of the base command.
public struct ListCommand: Hashable, Sendable {
    public struct SelectOptions: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let subscribed = SelectOptions(rawValue: 1)
        public static let remote = SelectOptions(rawValue: 2)
        public static let recursiveMatch = SelectOptions(rawValue: 4)
        public static let specialUse = SelectOptions(rawValue: 8)
    }

    public struct ReturnOptions: Hashable, Sendable {
        public var subscribed = false
        public var children = false
        public var specialUse = false
        public var status: [StatusAttribute]? = nil
        public init() {}
    }

    public var selectOptions: SelectOptions
    public var reference: MailboxArgument
    public var patterns: [MailboxArgument]
    public var returnOptions: ReturnOptions
    /// True when the client used any RFC 5258 syntax (selection or return options, or a pattern list).
    public var isExtended: Bool

    public init(
        selectOptions: SelectOptions = [], reference: MailboxArgument, patterns: [MailboxArgument],
        returnOptions: ReturnOptions = ReturnOptions(), isExtended: Bool = false
    ) {
        self.selectOptions = selectOptions
        self.reference = reference
        self.patterns = patterns
        self.returnOptions = returnOptions
        self.isExtended = isExtended
    }
}

/// The message APPEND delivers (RFC 9051 §6.3.12).
public struct AppendCommand: Hashable, Sendable {
    public var mailbox: MailboxArgument
    public var flags: [Flag]
    public var date: InternalDate?
    public var message: [UInt8]
    /// `literal8` (`~{n}`, RFC 3516): binary content allowed.
    public var isBinary: Bool
    /// MULTIAPPEND (RFC 3502): the messages after the first, each with its own flags and date.
    public var more: [AppendCommand]
    /// CATENATE (RFC 4469): the message is these parts joined (then `message` is empty).
    public var catenate: [CatenatePart]?

    /// One `cat-part` (RFC 4469 §5): literal text, or an IMAP URL of (part of) a message in this account.
    public enum CatenatePart: Hashable, Sendable {
        case text([UInt8])
        case url(String)
    }

    public init(
        mailbox: MailboxArgument, flags: [Flag], date: InternalDate?, message: [UInt8], isBinary: Bool = false,
        more: [AppendCommand] = []
    ) {
        self.mailbox = mailbox
        self.flags = flags
        self.date = date
        self.message = message
        self.isBinary = isBinary
        self.more = more
        self.catenate = nil
    }
}

/// Every command of RFC 9051 and RFC 3501 that MailHost understands, UID forms folded in through `MessageSelector`.
public enum Command: Hashable, Sendable {
    // Any state (RFC 9051 §6.1)
    case capability, noop, logout
    // Not authenticated (§6.2)
    case starttls
    case login(user: String, password: Secret)
    /// `AUTHENTICATE mech [initial-response]`; the response is base64 text ("=" for an empty one), nil when absent.
    case authenticate(mechanism: String, initialResponse: Secret?)
    // Authenticated (§6.3)
    case enable([String])
    /// `COMPRESS mechanism` (RFC 4978); the mechanism upper-cased.
    case compress(mechanism: String)
    /// RFC 5464 GETMETADATA: the mailbox ("" for the server), MAXSIZE, DEPTH and the entry names (lower-case).
    case getMetadata(MailboxArgument, maxSize: UInt32?, depth: MetadataDepth, entries: [String])
    /// RFC 5464 SETMETADATA: entries to set, or to remove (nil values).
    case setMetadata(MailboxArgument, [MetadataEntry])
    /// RFC 8437: back to not authenticated, on the same connection.
    case unauthenticate
    /// ID (RFC 2971): nil for `ID NIL`.
    case id([IDField]?)
    case namespace
    case select(MailboxArgument, readOnly: Bool, parameters: SelectParameters = SelectParameters())
    /// `CREATE mailbox [(USE (attr …))]` (RFC 6154 §3 CREATE-SPECIAL-USE).
    case create(MailboxArgument, use: [String] = [])
    case delete(MailboxArgument)
    case rename(from: MailboxArgument, to: MailboxArgument)
    case subscribe(MailboxArgument)
    case unsubscribe(MailboxArgument)
    case list(ListCommand)
    case lsub(reference: MailboxArgument, pattern: MailboxArgument)
    case status(MailboxArgument, [StatusAttribute])
    case append(AppendCommand)
    case idle
    // QUOTA (RFC 9208)
    case getQuota(root: String)
    case getQuotaRoot(MailboxArgument)
    case setQuota(root: String)
    // Selected (§6.4)
    case check, close, unselect
    /// RFC 5465 NOTIFY SET (nil: NOTIFY NONE).
    case notify(NotifyCommand?)
    /// RFC 5267 §4.3.5: stop updating the searches with these tags.
    case cancelUpdate([String])
    /// nil: EXPUNGE; a set: UID EXPUNGE (RFC 4315).
    case expunge(uids: NumberSet?)
    case search(isUID: Bool, SearchCommand)
    case sort(isUID: Bool, SortCommand)
    case thread(isUID: Bool, ThreadCommand)
    case fetch(MessageSelector, [FetchAttribute], FetchModifiers = FetchModifiers())
    case store(MessageSelector, StoreAction)
    case copy(MessageSelector, MailboxArgument)
    case move(MessageSelector, MailboxArgument)

    /// The command's name for logs and metrics, e.g. "UID FETCH".
    public var name: String {
        switch self {
        case .capability: "CAPABILITY"
        case .noop: "NOOP"
        case .logout: "LOGOUT"
        case .starttls: "STARTTLS"
        case .login: "LOGIN"
        case .authenticate: "AUTHENTICATE"
        case .enable: "ENABLE"
        case .compress: "COMPRESS"
        case .cancelUpdate: "CANCELUPDATE"
        case .notify: "NOTIFY"
        case .getMetadata: "GETMETADATA"
        case .setMetadata: "SETMETADATA"
        case .unauthenticate: "UNAUTHENTICATE"
        case .id: "ID"
        case .namespace: "NAMESPACE"
        case .select(_, let readOnly, _): readOnly ? "EXAMINE" : "SELECT"
        case .create: "CREATE"
        case .delete: "DELETE"
        case .rename: "RENAME"
        case .subscribe: "SUBSCRIBE"
        case .unsubscribe: "UNSUBSCRIBE"
        case .list: "LIST"
        case .lsub: "LSUB"
        case .status: "STATUS"
        case .append: "APPEND"
        case .idle: "IDLE"
        case .getQuota: "GETQUOTA"
        case .getQuotaRoot: "GETQUOTAROOT"
        case .setQuota: "SETQUOTA"
        case .check: "CHECK"
        case .close: "CLOSE"
        case .unselect: "UNSELECT"
        case .expunge(let uids): uids == nil ? "EXPUNGE" : "UID EXPUNGE"
        case .search(let isUID, _): isUID ? "UID SEARCH" : "SEARCH"
        case .sort(let isUID, _): isUID ? "UID SORT" : "SORT"
        case .thread(let isUID, _): isUID ? "UID THREAD" : "THREAD"
        case .fetch(let s, _, _): s.isUID ? "UID FETCH" : "FETCH"
        case .store(let s, _): s.isUID ? "UID STORE" : "STORE"
        case .copy(let s, _): s.isUID ? "UID COPY" : "COPY"
        case .move(let s, _): s.isUID ? "UID MOVE" : "MOVE"
        }
    }
}

public struct IDField: Hashable, Sendable {
    public var key: String
    public var value: String?
    public init(key: String, value: String?) {
        self.key = key
        self.value = value
    }
}
