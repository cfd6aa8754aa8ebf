import Logging

/// One mailbox as LIST sees it.
public struct MailboxListing: Sendable, Equatable {
    public var id: MailboxID
    public var name: MailboxName
    public var specialUse: String?
    public init(id: MailboxID, name: MailboxName, specialUse: String? = nil) {
        self.id = id
        self.name = name
        self.specialUse = specialUse
    }
}

/// STATUS counters of one mailbox (RFC 9051 §6.3.11).
public struct MailboxStatus: Sendable, Equatable {
    public var messages: Int
    public var unseen: Int
    public var deleted: Int
    public var size: Int64
    public var recent: Int
    public var uidNext: UID
    public var uidValidity: UIDValidity
    public var highestModSeq: ModSeq
    /// The mailbox's id (RFC 8474 MAILBOXID); nil from a store that does not say.
    public var id: MailboxID?
    public init(
        messages: Int, unseen: Int, deleted: Int, size: Int64, recent: Int, uidNext: UID, uidValidity: UIDValidity,
        highestModSeq: ModSeq, id: MailboxID? = nil
    ) {
        self.id = id
        self.messages = messages
        self.unseen = unseen
        self.deleted = deleted
        self.size = size
        self.recent = recent
        self.uidNext = uidNext
        self.uidValidity = uidValidity
        self.highestModSeq = highestModSeq
    }
}

/// What SELECT needs, read in one consistent snapshot (STYLE.md §4.5).
public struct MailboxSnapshot: Sendable {
    public var id: MailboxID
    public var name: MailboxName
    public var uidValidity: UIDValidity
    public var uidNext: UID
    public var highestModSeq: ModSeq
    /// Every UID in the mailbox, ascending.
    public var uids: [UID]
    /// The UID of the first message without `\Seen`, if any.
    public var firstUnseen: UID?
    /// Keywords in use in the mailbox (for FLAGS and PERMANENTFLAGS).
    public var keywords: [String]
    /// UIDs this session owns as `\Recent` (claimed atomically; empty for EXAMINE).
    public var recent: [UID]
    public init(
        id: MailboxID, name: MailboxName, uidValidity: UIDValidity, uidNext: UID, highestModSeq: ModSeq, uids: [UID],
        firstUnseen: UID?, keywords: [String], recent: [UID]
    ) {
        self.id = id
        self.name = name
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModSeq = highestModSeq
        self.uids = uids
        self.firstUnseen = firstUnseen
        self.keywords = keywords
        self.recent = recent
    }
}

/// Changes to a mailbox since a modseq (STYLE.md §4): what a session folds into its view.
public struct MailboxDelta: Sendable, Equatable {
    public struct FlagChange: Sendable, Equatable {
        public var uid: UID
        public var flags: MessageFlags
        public var modSeq: ModSeq
        public init(uid: UID, flags: MessageFlags, modSeq: ModSeq) {
            self.uid = uid
            self.flags = flags
            self.modSeq = modSeq
        }
    }
    /// Messages whose modseq is newer: both new messages and flag changes, ascending by UID.
    public var changed: [FlagChange]
    /// UIDs expunged since, ascending.
    public var expunged: [UID]
    /// The highest modseq this delta accounts for.
    public var highestModSeq: ModSeq
    /// The lowest modseq among `expunged`.
    public var lowestExpungedModSeq: ModSeq?
    /// Expunges this old are no longer recorded (past the tombstone retention): `expunged` lists only the recent
    /// ones, and any UID that is not in the mailbox may have been expunged since.
    public var expungedIncomplete = false
    /// The lowest UID no session has yet claimed as `\Recent`, when the store read it with the changes: a session
    /// need not try to claim UIDs below it (another one has them).
    public var firstUnclaimedUID: UID?
    public init(
        changed: [FlagChange] = [], expunged: [UID] = [], highestModSeq: ModSeq, lowestExpungedModSeq: ModSeq? = nil
    ) {
        self.changed = changed
        self.expunged = expunged
        self.highestModSeq = highestModSeq
        self.lowestExpungedModSeq = lowestExpungedModSeq
    }
}

/// What a flags-only FETCH (UID, FLAGS, MODSEQ) needs of a message: what a changes delta says of one.
public typealias MessageFlagsRecord = MailboxDelta.FlagChange

/// Which message data a FETCH needs from the store.
public struct FetchColumns: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let envelope = FetchColumns(rawValue: 1 << 0)
    public static let body = FetchColumns(rawValue: 1 << 1)
    public static let bodyStructure = FetchColumns(rawValue: 1 << 2)
    /// The MIME tree, for sections below the top level and BINARY.
    public static let parts = FetchColumns(rawValue: 1 << 3)
    /// The top-level header bytes, for HEADER.FIELDS, when at most `headerLimit` long (longer ones are read as a
    /// section of the content, in pieces).
    public static let header = FetchColumns(rawValue: 1 << 4)
    public static let headerLimit = 65536
    /// The header length, to map sections onto stored bytes. Without any column the store reads only the message
    /// rows (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ), never the contents.
    public static let layout = FetchColumns(rawValue: 1 << 5)
    /// RFC 8514 SAVEDATE, from the message row.
    public static let saveDate = FetchColumns(rawValue: 1 << 6)
    /// RFC 8970 PREVIEW text, from the content.
    public static let preview = FetchColumns(rawValue: 1 << 7)
    /// With `.header`: every header item of the FETCH is HEADER.FIELDS of names that `HeaderFilter.coveredBySummary`,
    /// so a store may give, for `header`, the message's `HeaderFilter.summary` instead (where it keeps one).
    public static let headerSummary = FetchColumns(rawValue: 1 << 8)

    /// Whether any column is the content's (the message rows alone serve the others).
    public var readsContent: Bool { !subtracting(.saveDate).isEmpty }
}

/// One message's row as FETCH reads it. Fields not asked for are empty.
public struct MessageRecord: Sendable {
    public var uid: UID
    public var contentID: Int64
    public var flags: MessageFlags
    public var internalDate: InternalDate
    public var size: Int
    public var headerLength: Int
    public var modSeq: ModSeq
    public var envelope: [UInt8]
    public var body: [UInt8]
    public var bodyStructure: [UInt8]
    public var parts: MessagePart?
    /// The top-level header (`.header`); nil when not asked for or longer than `FetchColumns.headerLimit`.
    public var header: [UInt8]?
    /// True when the message was expunged by another session (still in this session's view).
    public var isExpunged: Bool
    /// When the message was stored in this mailbox (seconds since the epoch); nil when unknown or not asked for.
    public var saveDate: Int64?
    /// The PREVIEW text (`.preview`); nil when there is none.
    public var preview: String?
    public init(
        uid: UID, contentID: Int64, flags: MessageFlags, internalDate: InternalDate, size: Int, headerLength: Int,
        modSeq: ModSeq, envelope: [UInt8] = [], body: [UInt8] = [], bodyStructure: [UInt8] = [],
        parts: MessagePart? = nil, header: [UInt8]? = nil, isExpunged: Bool = false, saveDate: Int64? = nil,
        preview: String? = nil
    ) {
        self.saveDate = saveDate
        self.preview = preview
        self.uid = uid
        self.contentID = contentID
        self.flags = flags
        self.internalDate = internalDate
        self.size = size
        self.headerLength = headerLength
        self.modSeq = modSeq
        self.envelope = envelope
        self.body = body
        self.bodyStructure = bodyStructure
        self.parts = parts
        self.header = header
        self.isExpunged = isExpunged
    }
}

/// One batch of FETCH rows (`MailStore.fetch`).
public struct FetchedBatch: Sendable {
    public var records: [MessageRecord]
    /// How many of the requested UIDs, from the first, this batch accounts for: returned, or no longer there.
    public var covered: Int
    public init(records: [MessageRecord], covered: Int) {
        self.records = records
        self.covered = covered
    }
}

extension MailStore {
    public func mailboxesAndSubscriptions(account: AccountID, logger: Logger) async throws(StoreError)
        -> (listings: [MailboxListing], subscriptions: [MailboxName])
    {
        (
            try await listMailboxes(account: account, logger: logger),
            try await subscriptions(account: account, logger: logger)
        )
    }
    public func createMailbox(account: AccountID, name: MailboxName, logger: Logger) async throws(StoreError) {
        try await createMailbox(account: account, name: name, specialUse: nil, logger: logger)
    }

    /// `flags` through `fetch`, for stores with nothing faster.
    public func flags(account: AccountID, mailbox: MailboxID, uids: [UID], logger: Logger) async throws(StoreError)
        -> [MessageFlagsRecord]
    {
        try await flagsFromRows(account: account, mailbox: mailbox, uids: uids, logger: logger)
    }

    /// What `flags` answers, read from the message rows through `fetch`.
    public func flagsFromRows(account: AccountID, mailbox: MailboxID, uids: [UID], logger: Logger)
        async throws(StoreError) -> [MessageFlagsRecord]
    {
        try await fetch(account: account, mailbox: mailbox, uids: uids, columns: [], logger: logger).map {
            MessageFlagsRecord(uid: $0.uid, flags: $0.flags, modSeq: $0.modSeq)
        }
    }

    /// Every row of `uids` at once (for tools that read few messages at a time).
    public func fetch(account: AccountID, mailbox: MailboxID, uids: [UID], columns: FetchColumns, logger: Logger)
        async throws(StoreError) -> [MessageRecord]
    {
        try await fetch(
            account: account, mailbox: mailbox, uids: uids, columns: columns, byteBudget: nil, logger: logger
        ).records
    }
}

/// A byte range of stored message content.
public struct ContentSlice: Sendable, Hashable {
    public var contentID: Int64
    public var range: Range<Int>
    public init(contentID: Int64, range: Range<Int>) {
        self.contentID = contentID
        self.range = range
    }
}

/// A flag update STORE asks of the store, in store terms.
public struct FlagUpdate: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case replace, add, remove }
    public var kind: Kind
    public var flags: MessageFlags
    /// RFC 7162 `UNCHANGEDSINCE`: messages whose modseq is above it are left alone (`StoredFlags.conditionFailed`).
    public var unchangedSince: ModSeq?
    public init(kind: Kind, flags: MessageFlags, unchangedSince: ModSeq? = nil) {
        self.kind = kind
        self.flags = flags
        self.unchangedSince = unchangedSince
    }
}

/// A message's flags after STORE.
public struct StoredFlags: Sendable, Equatable {
    public var uid: UID
    public var flags: MessageFlags
    public var modSeq: ModSeq
    public var changed: Bool
    /// The message was changed after the update's `unchangedSince`: it was left alone (`flags` are its current ones).
    public var conditionFailed: Bool
    public init(uid: UID, flags: MessageFlags, modSeq: ModSeq, changed: Bool, conditionFailed: Bool = false) {
        self.uid = uid
        self.flags = flags
        self.modSeq = modSeq
        self.changed = changed
        self.conditionFailed = conditionFailed
    }
}

/// What an EXPUNGE removed.
public struct ExpungeResult: Sendable, Equatable {
    /// The expunged UIDs, ascending.
    public var uids: [UID]
    /// The modseq of their tombstones, the mailbox's new HIGHESTMODSEQ; nil when nothing was expunged.
    public var modSeq: ModSeq?
    public init(uids: [UID], modSeq: ModSeq?) {
        self.uids = uids
        self.modSeq = modSeq
    }
}

/// The outcome of COPY or MOVE, for `[COPYUID]` (RFC 4315 §3).
public struct CopyResult: Sendable, Equatable {
    public var uidValidity: UIDValidity
    public var sourceUIDs: [UID]
    public var destinationUIDs: [UID]
    public init(uidValidity: UIDValidity, sourceUIDs: [UID], destinationUIDs: [UID]) {
        self.uidValidity = uidValidity
        self.sourceUIDs = sourceUIDs
        self.destinationUIDs = destinationUIDs
    }
}

/// The outcome of APPEND, for `[APPENDUID]`.
public struct AppendResult: Sendable, Equatable {
    public var uidValidity: UIDValidity
    public var uid: UID
    /// The message's modseq, the mailbox's new HIGHESTMODSEQ; nil from a store that does not say.
    public var modSeq: ModSeq?
    /// With `claimRecent`: the UIDs that became the appending session's `\Recent` (the message's and any other not
    /// yet claimed below it).
    public var recent: ClosedRange<UInt32>?
    public init(uidValidity: UIDValidity, uid: UID, modSeq: ModSeq? = nil, recent: ClosedRange<UInt32>? = nil) {
        self.uidValidity = uidValidity
        self.uid = uid
        self.modSeq = modSeq
        self.recent = recent
    }
}

/// The storage port (DESIGN.md §1, §3–4). Every method is one short transaction or statement; none waits on a client.
/// All mailbox names are normalised (`MailboxName`); the engine has validated them.
public protocol MailStore: Sendable {
    /// The account for a login name, created with an INBOX when `create` is set and it does not exist.
    func account(login: String, create: Bool, logger: Logger) async throws(StoreError) -> AccountID

    func listMailboxes(account: AccountID, logger: Logger) async throws(StoreError) -> [MailboxListing]
    func subscriptions(account: AccountID, logger: Logger) async throws(StoreError) -> [MailboxName]
    /// Both of the above, as of one moment (LIST and LSUB need both; a store may read them in one round trip).
    func mailboxesAndSubscriptions(account: AccountID, logger: Logger) async throws(StoreError)
        -> (listings: [MailboxListing], subscriptions: [MailboxName])
    /// Creates the mailbox and any missing superiors (RFC 9051 §6.3.4).
    /// Creates `name` (and missing ancestors); `specialUse` (RFC 6154, e.g. `\\Sent`) marks it.
    func createMailbox(account: AccountID, name: MailboxName, specialUse: String?, logger: Logger)
        async throws(StoreError)
    func deleteMailbox(account: AccountID, name: MailboxName, logger: Logger) async throws(StoreError)
    /// Renames the mailbox and its inferiors; renaming INBOX moves its messages to a new mailbox (RFC 9051 §6.3.6).
    func renameMailbox(account: AccountID, from: MailboxName, to: MailboxName, logger: Logger) async throws(StoreError)
    func setSubscribed(account: AccountID, name: MailboxName, subscribed: Bool, logger: Logger) async throws(StoreError)
    /// RFC 5464: the entries of `mailbox` (nil: the server's) named in `entries` (lower-case), with their
    /// descendants to `depth`, ordered by name.
    func metadata(
        account: AccountID, mailbox: MailboxName?, entries: [String], depth: MetadataDepth, logger: Logger
    ) async throws(StoreError) -> [MetadataEntry]
    /// Sets (or, for a nil value, removes) entries, all or none. False, and nothing changed, when the account would
    /// then have more than `maxEntries` entries.
    func setMetadata(
        account: AccountID, mailbox: MailboxName?, entries: [MetadataEntry], maxEntries: Int, logger: Logger
    ) async throws(StoreError) -> Bool
    func status(account: AccountID, name: MailboxName, logger: Logger) async throws(StoreError) -> MailboxStatus

    /// Reads the mailbox for SELECT/EXAMINE; with `claimRecent`, takes ownership of `\Recent` for the new messages.
    func select(account: AccountID, name: MailboxName, claimRecent: Bool, logger: Logger) async throws(StoreError)
        -> MailboxSnapshot
    /// Claims `\Recent` for UIDs up to `upTo` not yet claimed by any session; returns the UIDs now owned.
    func claimRecent(account: AccountID, mailbox: MailboxID, upTo: UID, logger: Logger) async throws(StoreError)
        -> ClosedRange<UInt32>?
    func changes(account: AccountID, mailbox: MailboxID, since: ModSeq, logger: Logger) async throws(StoreError)
        -> MailboxDelta

    /// Stores a message. With `claimRecent` (an IMAP4rev1 session that has `mailbox` selected read-write) the
    /// message and every UID not yet claimed below it become that session's `\Recent` in the same write, as
    /// `claimRecent(upTo:)` would, so no other session tries to claim them (`AppendResult.recent`).
    func append(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        claimRecent: Bool, logger: Logger
    ) async throws(StoreError) -> AppendResult
    /// MULTIAPPEND (RFC 3502): all messages or none; their UIDs in order.
    func appendAll(
        account: AccountID, mailbox: MailboxName, messages: [(ParsedMessage, MessageFlags, InternalDate)],
        logger: Logger
    ) async throws(StoreError) -> [AppendResult]

    /// Rows for `uids` (ascending), including messages expunged by others that still have content. With a
    /// `byteBudget`, the batch stops after the row whose content columns (ENVELOPE, BODYSTRUCTURE, header, MIME
    /// tree) take the total past it, always returning at least one row: `covered` then says how many of `uids`, from
    /// the first, the batch accounts for (returned, or gone); the caller asks again for the rest.
    func fetch(
        account: AccountID, mailbox: MailboxID, uids: [UID], columns: FetchColumns, byteBudget: Int?, logger: Logger
    ) async throws(StoreError) -> FetchedBatch
    /// UID, flags and modseq of each message of `uids` that exists, or was expunged elsewhere with its content still
    /// kept (as `fetch` serves it), ascending: a flags-only FETCH. The whole set is answered at once.
    func flags(account: AccountID, mailbox: MailboxID, uids: [UID], logger: Logger) async throws(StoreError)
        -> [MessageFlagsRecord]
    /// Byte ranges of stored contents, in the order asked.
    func contentBytes(account: AccountID, slices: [ContentSlice], logger: Logger) async throws(StoreError) -> [[UInt8]]

    /// Applies a flag update; returns every message of `uids` that exists, with its flags after the update and
    /// whether they changed.
    func updateFlags(account: AccountID, mailbox: MailboxID, uids: [UID], update: FlagUpdate, logger: Logger)
        async throws(StoreError) -> [StoredFlags]
    /// Expunges `\Deleted` messages (only those in `uids` when given), all with one new modseq.
    func expunge(account: AccountID, mailbox: MailboxID, uids: [UID]?, logger: Logger)
        async throws(StoreError) -> ExpungeResult
    func copy(account: AccountID, from: MailboxID, uids: [UID], to: MailboxName, logger: Logger)
        async throws(StoreError) -> CopyResult
    /// COPY + EXPUNGE of the originals in one transaction (RFC 6851).
    func move(account: AccountID, from: MailboxID, uids: [UID], to: MailboxName, logger: Logger)
        async throws(StoreError) -> CopyResult

    /// Storage use and limits of the account (RFC 9208 quota root "").
    func quota(account: AccountID, logger: Logger) async throws(StoreError) -> QuotaUsage

    /// UIDs matching `query` among messages with UID ≤ `maxUID`, ascending.
    func search(account: AccountID, mailbox: MailboxID, query: SearchQuery, maxUID: UID, logger: Logger)
        async throws(StoreError) -> [UID]
    /// The SORT and THREAD keys computed at ingest of the messages among `uids` that exist, ascending by UID.
    func messageKeys(account: AccountID, mailbox: MailboxID, uids: UIDRanges, logger: Logger)
        async throws(StoreError) -> [MessageKeys]
    /// The same, ordered by `criteria` and then by UID (RFC 5256 §3: ties keep mailbox order).
    func sort(
        account: AccountID, mailbox: MailboxID, query: SearchQuery, criteria: [SortCriterion], maxUID: UID,
        logger: Logger
    ) async throws(StoreError) -> [UID]
}

extension MailStore {
    /// APPEND that claims no `\Recent` (delivery, import).
    public func append(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        logger: Logger
    ) async throws(StoreError) -> AppendResult {
        try await append(
            account: account, mailbox: mailbox, message: message, flags: flags, date: date, claimRecent: false,
            logger: logger)
    }
}

/// An account's quota use (RFC 9208 STORAGE in bytes here, MESSAGE in messages); a nil limit means none.
public struct QuotaUsage: Sendable, Equatable {
    public var usedBytes: Int64
    public var usedMessages: Int64
    public var byteLimit: Int64?
    public var messageLimit: Int64?
    public init(usedBytes: Int64, usedMessages: Int64, byteLimit: Int64?, messageLimit: Int64?) {
        self.usedBytes = usedBytes
        self.usedMessages = usedMessages
        self.byteLimit = byteLimit
        self.messageLimit = messageLimit
    }
}

/// A SEARCH program after the session resolved sequence numbers and `\Recent` into UIDs: only what the store can
/// answer on its own.
/// One SORT criterion (RFC 5256 §3, RFC 5957 §4), possibly REVERSE.
/// What SORT by ARRIVAL, DATE, SIZE or SUBJECT and THREAD need of a message (RFC 5256), computed at ingest. A
/// message's keys never change (UIDs are not reused within a mailbox), except once: `mailadmin db backfill` computes
/// them for messages an older version stored, which `isFinal` tells apart.
public struct MessageKeys: Sendable, Equatable {
    public var uid: UID
    /// THREAD's keys; `subject` is SORT's SUBJECT key (the base subject, i;ascii-casemapped, compared as bytes),
    /// `date` SORT's DATE key (the sent date, or the internal date where there is none).
    public var thread: Threading.Message
    /// The internal date, seconds since 1970 (SORT ARRIVAL).
    public var arrival: Int64
    public var size: Int64
    /// False for keys an older version stored that `mailadmin db backfill` has not recomputed yet (not to be kept).
    public var isFinal: Bool
    public init(uid: UID, thread: Threading.Message, arrival: Int64, size: Int64, isFinal: Bool) {
        self.uid = uid
        self.thread = thread
        self.arrival = arrival
        self.size = size
        self.isFinal = isFinal
    }
}

public struct SortCriterion: Sendable, Hashable {
    public enum Key: String, Sendable, Hashable, CaseIterable {
        case arrival = "ARRIVAL", cc = "CC", date = "DATE", from = "FROM", size = "SIZE", subject = "SUBJECT"
        case to = "TO", displayFrom = "DISPLAYFROM", displayTo = "DISPLAYTO"
    }
    public var key: Key
    public var reverse: Bool
    public init(_ key: Key, reverse: Bool = false) {
        self.key = key
        self.reverse = reverse
    }
}

public indirect enum SearchQuery: Sendable, Hashable {
    case all
    case none
    case systemFlag(SystemFlags, present: Bool)
    case keyword(String, present: Bool)
    case uids(UIDRanges)
    case address(AddressField, String)
    case subject(String)
    case header(name: String, value: String)
    case body(String)
    case text(String)
    case internalDate(DateComparison, IMAPDate)
    case sentDate(DateComparison, IMAPDate)
    case larger(Int64)
    case smaller(Int64)
    /// Messages whose modseq is at least this (RFC 7162 SEARCH MODSEQ).
    case modSeq(ModSeq)
    /// Messages whose internal date (as an instant, seconds since 1970) is before / at or after this (RFC 5032).
    case arrivedBefore(Int64), arrivedSince(Int64)
    /// Messages whose stored content is this one (RFC 8474 EMAILID).
    case contentID(Int64)
    /// RFC 8514: the day (UTC) the message was stored in the mailbox.
    case saveDate(DateComparison, IMAPDate)
    case not(SearchQuery)
    case or(SearchQuery, SearchQuery)
    case and([SearchQuery])

    public enum AddressField: String, Sendable, Hashable { case from, to, cc, bcc }
    public enum DateComparison: Sendable, Hashable { case before, on, since }
}

/// One METADATA entry (RFC 5464): a lower-case name such as `/private/comment`, and its value (nil: none / remove).
public struct MetadataEntry: Hashable, Sendable {
    public var name: String
    public var value: [UInt8]?
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }
}

/// GETMETADATA's DEPTH (RFC 5464 §4.2.2).
public enum MetadataDepth: Hashable, Sendable {
    case zero, one, infinity
}
