import Synchronization

/// What the change feed tells a session (DESIGN.md §3).
public enum ChangeEvent: Sendable, Equatable {
    /// Mailbox `mailbox` of the account reached `modSeq` (or changed in a way that needs a re-read). `deltas`, when the
    /// store described the change, are what changed, one delta per modseq (see `FeedBacklog`); a session whose view
    /// is right below them takes them in without reading the changes.
    case mailboxChanged(MailboxID, ModSeq, deltas: [MailboxDelta] = [])
    /// Mailboxes of the account were created, deleted or renamed, or its subscriptions changed (NOTIFY MailboxName
    /// and SubscriptionChange re-read the list).
    case mailboxesChanged
    /// METADATA entries (lower-cased names) of mailbox `mailbox` (nil: the server's) were set or removed.
    case metadataChanged(MailboxID?, [String])
    /// The feed lost notifications (a reconnect): every session re-reads what it watches.
    case resync
    /// The account was disabled or deleted by an administrator: its sessions end with BYE.
    case accountDisabled
}

/// Fans store change notifications out to the sessions of this process that watch an account.
///
/// Store adapters publish into it (PostgreSQL: from one LISTEN connection per instance; every commit's NOTIFY comes
/// back through it, local or remote). Sessions register a callback; the callback must not block (sessions yield into
/// their control stream).
public final class ChangeFeed: Sendable {
    public typealias Handler = @Sendable (ChangeEvent) -> Void

    public struct Registration: Hashable, Sendable {
        let account: AccountID
        let id: UInt64
    }

    private struct State {
        var nextID: UInt64 = 1
        var handlers: [AccountID: [UInt64: Handler]] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Registers `handler` for every change of `account`'s mailboxes.
    public func register(account: AccountID, handler: @escaping Handler) -> Registration {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.handlers[account, default: [:]][id] = handler
            return Registration(account: account, id: id)
        }
    }

    public func unregister(_ registration: Registration) {
        state.withLock { state in
            state.handlers[registration.account]?[registration.id] = nil
            if state.handlers[registration.account]?.isEmpty == true { state.handlers[registration.account] = nil }
        }
    }

    /// Delivers a change to every session watching the account.
    public func publish(account: AccountID, event: ChangeEvent) {
        let handlers = state.withLock { state in state.handlers[account].map { Array($0.values) } ?? [] }
        for handler in handlers { handler(event) }
    }

    /// Tells every registered session to re-read (after the feed lost its connection).
    public func publishResyncToAll() {
        let handlers = state.withLock { state in state.handlers.values.flatMap { $0.values } }
        for handler in handlers { handler(.resync) }
    }

    /// The accounts some session of this process watches.
    public var registeredAccounts: [AccountID] { state.withLock { Array($0.handlers.keys) } }

    /// Number of registered sessions (for metrics and tests).
    public var registrationCount: Int {
        state.withLock { $0.handlers.values.reduce(0) { $0 + $1.count } }
    }
}
