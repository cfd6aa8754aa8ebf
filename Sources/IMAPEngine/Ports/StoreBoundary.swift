import Logging

// The rest of the storage boundary (issue #12): what the executables need of a store beyond the IMAP `MailStore`
// port. A backend (PostgreSQL, SQLite) implements all of it; `mailhost` and `mailadmin` see only these protocols,
// built by one factory from the storage URL.
//
// Obligations every backend keeps, whichever protocol a method belongs to:
// - **Change feed after commit.** Every committed change to a mailbox, its messages, the account's mailbox list,
//   subscriptions or METADATA, and every disabling or deletion of an account, reaches the `ChangeFeed` of every
//   process serving the account (`StoreBackend.run(feed:)`), after the commit and never before it. A change that
//   commits is announced even when the caller never hears the commit (a lost connection). A feed that may have lost
//   announcements publishes `.resync`.
// - **Modseq and UID order.** Each change to a mailbox takes the next modseq of that mailbox (HIGHESTMODSEQ rises by
//   exactly one per change, under the mailbox's write lock), and new messages take UIDs from UIDNEXT in that same
//   step, so sessions that replay described changes (`FeedBacklog`) see every modseq once, in order. UIDs are never
//   reused within a UIDVALIDITY.
// - **Quota rule.** A write that adds messages fails with `StoreError.overQuota`, changing nothing, when the account
//   would then exceed its byte or message limit; usage counts what the account's messages reference (content shared
//   within the account counted once per message). Expunging and deleting always succeed, even above a lowered limit.
// - **Content within an account.** Message content may be shared by messages of one account (COPY, delivery to
//   `user` and `user+folder`), never across accounts; content no message or recent tombstone references is removed
//   by `StoreMaintenance.collectGarbage`, never before it is ten minutes old.
// - **Tombstones.** Expunges stay recorded (for QRESYNC VANISHED) until `collectGarbage` removes those older than the
//   retention, raising the mailbox's floor below which `MailboxDelta.expungedIncomplete` is set.

/// Delivery and import: APPEND that shares one stored content among one account's recipients.
public protocol DeliveryStore: MailStore {
    /// Stores a message, reusing content this account already stores when `sharing` is the `contentID` an earlier
    /// call returned for the same `message` (one LMTP transaction's recipients `user` and `user+folder`); when that
    /// content is gone the message is stored anew. Returns the append's outcome and the content's id.
    func append(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        sharing: Int64?, claimRecent: Bool, logger: Logger
    ) async throws(StoreError) -> (result: AppendResult, contentID: Int64)
    /// How many messages of `mailbox` have each SHA-256 digest of their bytes (an import skips messages it already
    /// stored).
    func contentDigests(account: AccountID, mailbox: MailboxName, logger: Logger) async throws(StoreError)
        -> [[UInt8]: Int]
}

extension DeliveryStore {
    /// Delivery's APPEND, which claims no `\Recent`.
    public func append(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        sharing: Int64?, logger: Logger
    ) async throws(StoreError) -> (result: AppendResult, contentID: Int64) {
        try await append(
            account: account, mailbox: mailbox, message: message, flags: flags, date: date, sharing: sharing,
            claimRecent: false, logger: logger)
    }
}

/// The password hash and state of a store account (virtual user).
public struct StoreCredentials: Sendable, Equatable {
    /// A crypt(3) string, possibly with Dovecot's `{SCHEME}` prefix; nil for an account without a password (a PAM
    /// user's account, or one whose password was never set).
    public var passwordHash: String?
    public var disabled: Bool
    public init(passwordHash: String?, disabled: Bool) {
        self.passwordHash = passwordHash
        self.disabled = disabled
    }
}

/// What store-account logins read.
public protocol CredentialStore: Sendable {
    /// The credentials of a login, nil when there is no such account.
    func credentials(login: String, logger: Logger) async throws(StoreError) -> StoreCredentials?
}

/// One account as `mailadmin user list` shows it.
public struct AccountSummary: Sendable, Encodable, Equatable {
    public var login: String
    public var disabled: Bool
    /// When the account was created, ISO 8601 in UTC (`2026-12-01T07:00:00Z`).
    public var created: String
    public var mailboxes: Int64
    public var messages: Int64
    public var bytes: Int64
    public var quotaBytes: Int64?
    public var quotaMessages: Int64?
    public var hasPassword: Bool
    public init(
        login: String, disabled: Bool, created: String, mailboxes: Int64, messages: Int64, bytes: Int64,
        quotaBytes: Int64?, quotaMessages: Int64?, hasPassword: Bool
    ) {
        self.login = login
        self.disabled = disabled
        self.created = created
        self.mailboxes = mailboxes
        self.messages = messages
        self.bytes = bytes
        self.quotaBytes = quotaBytes
        self.quotaMessages = quotaMessages
        self.hasPassword = hasPassword
    }

    private enum CodingKeys: String, CodingKey {
        case login, disabled, created, mailboxes, messages, bytes, quotaBytes, quotaMessages, hasPassword
    }

    /// Every key always present: no quota is `null` (a script reading `quotaBytes` finds it either way).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(login, forKey: .login)
        try container.encode(disabled, forKey: .disabled)
        try container.encode(created, forKey: .created)
        try container.encode(mailboxes, forKey: .mailboxes)
        try container.encode(messages, forKey: .messages)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(quotaBytes, forKey: .quotaBytes)
        try container.encode(quotaMessages, forKey: .quotaMessages)
        try container.encode(hasPassword, forKey: .hasPassword)
    }
}

/// A mailbox every new account gets beside INBOX.
public struct DefaultMailbox: Sendable, Equatable {
    public var name: String
    /// An RFC 6154 use such as `\Sent`.
    public var specialUse: String?
    public init(name: String, specialUse: String?) {
        self.name = name
        self.specialUse = specialUse
    }
}

/// The whole store's size (`mailadmin stats`).
public struct StoreStatistics: Sendable, Encodable, Equatable {
    public var accounts: Int64
    public var mailboxes: Int64
    public var messages: Int64
    public var bytes: Int64
    /// Stored contents, each counted once however many messages share it.
    public var storedContents: Int64
    public var storedBytes: Int64
    public init(
        accounts: Int64, mailboxes: Int64, messages: Int64, bytes: Int64, storedContents: Int64, storedBytes: Int64
    ) {
        self.accounts = accounts
        self.mailboxes = mailboxes
        self.messages = messages
        self.bytes = bytes
        self.storedContents = storedContents
        self.storedBytes = storedBytes
    }
}

/// Why an administrative call failed.
public enum AdministrationError: Error, CustomStringConvertible, Equatable {
    case noSuchUser(String)
    case userExists(String)
    case store(StoreError)
    public var description: String {
        switch self {
        case .noSuchUser(let login): "no such user: \(login)"
        case .userExists(let login): "a user named \(login) already exists"
        case .store(let error): String(describing: error)
        }
    }
}

/// What `mailadmin` does to accounts beyond the IMAP port. Disabling and deleting an account announce it on the
/// change feed (`ChangeEvent.accountDisabled`), so every server closes its sessions with BYE.
public protocol StoreAdministration: Sendable {
    /// Accounts with their usage, ordered by login: one login (`.noSuchUser` when it does not exist) or all.
    func accounts(login: String?, logger: Logger) async throws(AdministrationError) -> [AccountSummary]
    /// The mailboxes every new account gets beside INBOX, in order.
    func defaultMailboxes(logger: Logger) async throws(AdministrationError) -> [DefaultMailbox]
    /// Replaces them, all or none (names already validated and normalised; uses among RFC 6154's).
    func setDefaultMailboxes(_ mailboxes: [DefaultMailbox], logger: Logger) async throws(AdministrationError)
    /// Creates a store account with its INBOX and the default mailboxes (`.userExists` when the login is taken).
    func addAccount(login: String, passwordHash: String?, quotaBytes: Int64?, quotaMessages: Int64?, logger: Logger)
        async throws(AdministrationError)
    /// The account of a login, disabled or not (`.noSuchUser`).
    func accountID(_ login: String, logger: Logger) async throws(AdministrationError) -> AccountID
    func setPassword(login: String, hash: String, logger: Logger) async throws(AdministrationError)
    func setDisabled(login: String, disabled: Bool, logger: Logger) async throws(AdministrationError)
    /// Renames the login; the account keeps its mail (`.userExists` when the new login is taken).
    func rename(login: String, to newLogin: String, logger: Logger) async throws(AdministrationError)
    /// Removes the account and all its mail.
    func delete(login: String, logger: Logger) async throws(AdministrationError)
    /// Sets or clears (nil) the limits; usage may stay above a lowered limit (only deletions succeed then).
    func setQuota(login: String, bytes: Int64?, messages: Int64?, logger: Logger) async throws(AdministrationError)
    func statistics(logger: Logger) async throws(AdministrationError) -> StoreStatistics
    /// Computes the SORT, THREAD and PREVIEW keys of up to `batch` messages stored by a version that did not, and
    /// says how many it did and how many are left (`mailadmin db backfill`); resumable and idempotent.
    func backfillKeys(batch: Int, logger: Logger) async throws(AdministrationError) -> (done: Int, left: Int)
    /// Stores the header summaries (`HeaderFilter.summary`) of up to `batch` contents stored without one, after `after`
    /// in key order; `next` is where to go on from, nil when none is left after `after` (`mailadmin db backfill`).
    /// Stores that keep no summaries do nothing (the default).
    func backfillHeaderSummaries(after: ContentKey?, batch: Int, logger: Logger) async throws(AdministrationError)
        -> (done: Int, next: ContentKey?)
}

/// A stored content's key, as `backfillHeaderSummaries` walks them.
public struct ContentKey: Sendable, Equatable {
    public var account: Int64
    public var content: Int64

    public init(account: Int64, content: Int64) {
        self.account = account
        self.content = content
    }
}

extension StoreAdministration {
    public func backfillHeaderSummaries(after: ContentKey?, batch: Int, logger: Logger)
        async throws(AdministrationError) -> (done: Int, next: ContentKey?)
    {
        (0, nil)
    }

    public func accounts(logger: Logger) async throws(AdministrationError) -> [AccountSummary] {
        try await accounts(login: nil, logger: logger)
    }
}

/// The state of a store's schema against what this build knows.
public enum SchemaState: Equatable, Sendable {
    /// Nothing of MailHost's there yet.
    case empty
    case current
    case behind(current: Int, latest: Int)
    case ahead(current: Int, latest: Int)
}

/// The store's schema: its version, and migrations. Every method opens what it needs itself and works before
/// `StoreBackend.run(feed:)` (a server checks the schema before it starts anything else). Errors say in words what
/// failed (the address that could not be reached, the credentials refused).
public protocol StoreSchema: Sendable {
    /// The version this build migrates to.
    var latestVersion: Int { get }
    /// The version the store is at: nil when MailHost never ran there, 0 when no migration completed.
    func currentVersion(logger: Logger) async throws -> Int?
    func state(logger: Logger) async throws -> SchemaState
    /// Applies pending migrations, each all or nothing, one process at a time; returns the versions applied.
    /// Idempotent.
    func migrate(logger: Logger) async throws -> [Int]
    /// What a server does at start: creates the schema when the store is empty, all under the same exclusion as
    /// `migrate` (instances starting together on an empty store). A store several instances share (PostgreSQL) leaves
    /// an older schema alone (`mailadmin db migrate` upgrades it); a store one process serves (SQLite) also applies
    /// pending migrations. Returns the state it found and the versions it applied.
    func prepare(logger: Logger) async throws -> (found: SchemaState, applied: [Int])
}

extension StoreSchema {
    public func state(logger: Logger) async throws -> SchemaState {
        guard let version = try await currentVersion(logger: logger) else { return .empty }
        if version == latestVersion { return .current }
        if version < latestVersion { return .behind(current: version, latest: latestVersion) }
        return .ahead(current: version, latest: latestVersion)
    }
}

/// Periodic work (one server at a time does it; the others' calls return at once).
public protocol StoreMaintenance: Sendable {
    /// Removes content no message references any more once tombstones older than `retention` let go of it, and
    /// tombstones older than `tombstoneRetention`. Returns the number of contents removed.
    func collectGarbage(retention: Duration, tombstoneRetention: Duration, logger: Logger) async throws(StoreError)
        -> Int
}

/// One opened store: every part of the boundary, and the background work that keeps it going.
public protocol StoreBackend: Sendable {
    var mail: any DeliveryStore { get }
    var credentials: any CredentialStore { get }
    var administration: any StoreAdministration { get }
    var schema: any StoreSchema { get }
    var maintenance: any StoreMaintenance { get }
    var transfer: any StoreTransfer { get }
    /// Runs what the store needs in the background (connection pools; with a `feed`, the change feed that publishes
    /// every committed change into it) until the task is cancelled. Calls on the parts above need it running.
    func run(feed: ChangeFeed?) async
}

// MARK: moving a store to another backend

/// One account as a store holds it, without message bytes: what `mailadmin migrate` copies, and compares after
/// copying. Ids (mailbox, content) are kept: clients see them as MAILBOXID and EMAILID (RFC 8474).
public struct AccountExport: Sendable, Equatable {
    public struct Mailbox: Sendable, Equatable {
        public var id: Int64
        public var name: String
        public var uidValidity: Int64
        public var uidNext: Int64
        public var highestModSeq: Int64
        public var firstRecentUID: Int64
        public var keywords: [String]
        public var specialUse: String?
        public var vanishedFloor: Int64
        public init(
            id: Int64, name: String, uidValidity: Int64, uidNext: Int64, highestModSeq: Int64, firstRecentUID: Int64,
            keywords: [String], specialUse: String?, vanishedFloor: Int64
        ) {
            self.id = id
            self.name = name
            self.uidValidity = uidValidity
            self.uidNext = uidNext
            self.highestModSeq = highestModSeq
            self.firstRecentUID = firstRecentUID
            self.keywords = keywords
            self.specialUse = specialUse
            self.vanishedFloor = vanishedFloor
        }
    }

    /// A message row, or (with `expungedAt`) a tombstone; a tombstone's `contentID` is nil once its content is gone.
    public struct Message: Sendable, Equatable {
        public var mailbox: Int64
        public var uid: Int64
        public var contentID: Int64?
        public var flags: Int64
        public var keywords: [String]
        public var modSeq: Int64
        public var internalDate: Int64
        public var internalZone: Int64
        public var size: Int64
        public var savedAt: Int64?
        /// Seconds since 1970; nil for a message that is not expunged.
        public var expungedAt: Int64?
        public init(
            mailbox: Int64, uid: Int64, contentID: Int64?, flags: Int64, keywords: [String], modSeq: Int64,
            internalDate: Int64, internalZone: Int64, size: Int64, savedAt: Int64?, expungedAt: Int64?
        ) {
            self.mailbox = mailbox
            self.uid = uid
            self.contentID = contentID
            self.flags = flags
            self.keywords = keywords
            self.modSeq = modSeq
            self.internalDate = internalDate
            self.internalZone = internalZone
            self.size = size
            self.savedAt = savedAt
            self.expungedAt = expungedAt
        }
    }

    public var login: String
    public var passwordHash: String?
    public var disabled: Bool
    public var quotaBytes: Int64?
    public var quotaMessages: Int64?
    /// Seconds since 1970.
    public var createdAt: Int64
    public var lastUIDValidity: Int64
    /// Ordered by id.
    public var mailboxes: [Mailbox]
    /// Sorted.
    public var subscriptions: [String]
    /// METADATA entries: owner mailbox id (0: the server's), name, value; ordered by owner and name.
    public var metadata: [MetadataRow]
    /// Messages, then tombstones, each ordered by mailbox and UID.
    public var messages: [Message]
    public var tombstones: [Message]
    /// Every content of the account (also those only tombstones or nothing reference yet), ascending, with when it
    /// was stored (seconds since 1970).
    public var contents: [ContentRef]

    public struct MetadataRow: Sendable, Equatable {
        public var mailbox: Int64
        public var name: String
        public var value: [UInt8]
        public init(mailbox: Int64, name: String, value: [UInt8]) {
            self.mailbox = mailbox
            self.name = name
            self.value = value
        }
    }

    public struct ContentRef: Sendable, Equatable {
        public var id: Int64
        public var size: Int64
        public var createdAt: Int64
        /// SHA-256 of the bytes (compared after copying).
        public var sha256: [UInt8]
        public init(id: Int64, size: Int64, createdAt: Int64, sha256: [UInt8]) {
            self.id = id
            self.size = size
            self.createdAt = createdAt
            self.sha256 = sha256
        }
    }

    public init(
        login: String, passwordHash: String?, disabled: Bool, quotaBytes: Int64?, quotaMessages: Int64?,
        createdAt: Int64, lastUIDValidity: Int64, mailboxes: [Mailbox], subscriptions: [String],
        metadata: [MetadataRow], messages: [Message], tombstones: [Message], contents: [ContentRef]
    ) {
        self.login = login
        self.passwordHash = passwordHash
        self.disabled = disabled
        self.quotaBytes = quotaBytes
        self.quotaMessages = quotaMessages
        self.createdAt = createdAt
        self.lastUIDValidity = lastUIDValidity
        self.mailboxes = mailboxes
        self.subscriptions = subscriptions
        self.metadata = metadata
        self.messages = messages
        self.tombstones = tombstones
        self.contents = contents
    }
}

extension AccountExport {
    /// For each content, the internal date of the first message or tombstone that references it (SENTBEFORE/ON/SINCE
    /// fall back to it when a message has no Date: header).
    public func firstInternalDates() -> [Int64: InternalDate] {
        var dates: [Int64: InternalDate] = [:]
        for message in messages + tombstones {
            guard let content = message.contentID, dates[content] == nil else { continue }
            dates[content] = InternalDate(
                secondsSinceEpoch: message.internalDate, zoneMinutes: Int(message.internalZone))
        }
        return dates
    }

    /// The contents in batches of at most 32 MB or 500 contents (a larger content alone), to be read and written in
    /// bounded memory.
    public func contentBatches() -> [[ContentRef]] {
        var result: [[ContentRef]] = []
        var current: [ContentRef] = []
        var bytes: Int64 = 0
        for content in contents {
            if !current.isEmpty && (bytes + content.size > 32 << 20 || current.count >= 500) {
                result.append(current)
                current = []
                bytes = 0
            }
            current.append(content)
            bytes += content.size
        }
        if !current.isEmpty { result.append(current) }
        return result
    }
}

/// Copying whole accounts between stores, exactly (`mailadmin migrate`): every id, UID, UIDVALIDITY, modseq, flag,
/// date and tombstone is kept, so clients keep their caches (a QRESYNC client resyncs with nothing to fetch).
/// Derived content columns (envelope, body structure, search text, sort keys) are computed again from the bytes.
public protocol StoreTransfer: Sendable {
    /// The logins of every account, sorted.
    func transferLogins(logger: Logger) async throws(StoreError) -> [String]
    /// One account without message bytes, read in one snapshot; nil when there is no such login.
    func exportAccount(login: String, logger: Logger) async throws(StoreError) -> AccountExport?
    /// The bytes of contents of the account, in the order asked (ids that do not exist are left out).
    func contentBodies(login: String, ids: [Int64], logger: Logger) async throws(StoreError) -> [(Int64, [UInt8])]
    /// Stores an account that does not exist here yet, all or nothing, with its ids; `bodies` gives the bytes of the
    /// contents asked, in batches. Fails with `.alreadyExists` when the login, or one of the ids, is taken.
    func importAccount(
        _ account: AccountExport, bodies: @escaping @Sendable ([Int64]) async throws -> [(Int64, [UInt8])],
        logger: Logger
    ) async throws(StoreError)
}
