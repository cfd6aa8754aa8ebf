import Logging
import NIOCore

/// Everything a session needs from the server, shared by all connections of one process. A class: every connection
/// refers to the one context (a struct of this size copied into each session and each of its long-lived frames cost
/// about 1.5 KiB per idle connection).
public final class IMAPServerContext: Sendable {
    public let store: any MailStore
    public let feed: ChangeFeed
    public let authenticator: any Authenticator
    public let limits: IMAPLimits
    public let logger: Logger
    /// Accept LOGIN and AUTHENTICATE PLAIN on connections that are neither TLS nor loopback (DESIGN.md §5).
    public let allowPlaintextAuth: Bool
    public let greeting: String
    public let connections: ConnectionRegistry
    public let penalty: LoginPenalty
    /// Memory for messages being uploaded, shared by every connection of the process (IMAP and LMTP).
    public let messageBudget: MessageBudget
    /// Every failed login is answered no sooner than this after it began (the authenticator pads its own failures
    /// to the same time; a disabled account is refused after the authenticator succeeded).
    public let authenticationFailureTime: Duration
    /// SORT and THREAD keys of recently sorted mailboxes, shared by the process's sessions.
    public let keyCache: MessageKeyCache

    public init(
        store: any MailStore, feed: ChangeFeed, authenticator: any Authenticator, limits: IMAPLimits = IMAPLimits(),
        logger: Logger, allowPlaintextAuth: Bool = false, greeting: String = "MailHost ready.",
        connections: ConnectionRegistry = ConnectionRegistry(), penalty: LoginPenalty = LoginPenalty(),
        messageBudget: MessageBudget = MessageBudget(capacity: IMAPLimits.defaultUploadMemory),
        authenticationFailureTime: Duration = .seconds(1), keyCache: MessageKeyCache = MessageKeyCache()
    ) {
        self.keyCache = keyCache
        self.messageBudget = messageBudget
        self.authenticationFailureTime = authenticationFailureTime
        self.store = store
        self.feed = feed
        self.authenticator = authenticator
        self.limits = limits
        self.logger = logger
        self.allowPlaintextAuth = allowPlaintextAuth
        self.greeting = greeting
        self.connections = connections
        self.penalty = penalty
    }
}

/// Facts about one client connection.
public struct ConnectionInfo: Sendable {
    public var id: String
    public var remoteAddress: String?
    public var isLoopback: Bool
    public var isSecure: Bool
    public init(id: String, remoteAddress: String?, isLoopback: Bool, isSecure: Bool) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.isLoopback = isLoopback
        self.isSecure = isSecure
    }
}

/// Events a session reacts to besides client input (posted through `SessionSignals`).
enum ControlEvent: Sendable, Equatable {
    case change(ChangeEvent)
    /// More change notifications arrived than the session could hold (NOTIFY: RFC 5465 §5.8).
    case notificationOverflow
    case tick
    case shutdown
}

enum SessionEvent: Sendable {
    case client(FramedInput)
    /// The client's input ended (FIN, RST): there is nobody left to answer.
    case clientClosed
    /// `SessionSignals` has something pending.
    case signalled
    case control(ControlEvent)
}

/// One IMAP session (RFC 9051 §3): one connection, one `Session`, used by one task at a time (the connection's task
/// hands it to a task per event: `SessionHandoff`).
///
/// Invariants:
/// - Commands run one at a time, in the order received; pipelined commands wait in the event queue (mox).
/// - The session is the connection's only writer (`ResponseSink`), so a `+` continuation never lands inside another
///   response.
/// - The selected mailbox's `MailboxView` changes only at a command's sync point or in IDLE (STYLE.md §4).
/// - No store transaction is open while the session waits for the client.
/// - Passwords and message bodies never reach a log line.
final class Session {
    enum State: Equatable {
        case notAuthenticated
        case authenticated
        case selected
        case logout
    }

    /// A command that spans several client lines.
    enum Continuation {
        case none
        case idle(Tag)
        case sasl(Tag, SASLExchange)
    }

    let server: IMAPServerContext
    let info: ConnectionInfo
    let out: ResponseSink
    /// How STARTTLS turns this connection into TLS; nil when it cannot (already TLS, or no certificate).
    let tls: (any TLSUpgrade)?
    /// TLS is in place (implicit TLS, or after STARTTLS).
    var secure: Bool
    /// How COMPRESS=DEFLATE is installed on this connection; nil when it cannot be.
    let compression: (any CompressionUpgrade)?
    /// COMPRESS=DEFLATE is active (RFC 4978).
    var compressed = false
    /// The address limits and penalties count (the real client's, through the PROXY protocol).
    var address: String { info.remoteAddress ?? "unknown" }
    let signals: SessionSignals
    /// Tells the framing decoder when the client has logged in (larger commands are accepted from then on).
    let loginState: LoginState?
    var logger: Logger

    var state: State = .notAuthenticated {
        didSet { if state != oldValue { SessionMetrics.move(from: oldValue, to: state) } }
    }
    var continuation: Continuation = .none
    var account: AccountID?
    var login: String?
    var view: MailboxView?
    /// IMAP4rev2 enabled (RFC 9051 §6.3.1): ESEARCH replies, UTF-8 names, no `\Recent`.
    var rev2 = false
    /// `ENABLE UTF8=ACCEPT` (RFC 6855): UTF-8 mailbox names both ways, no SEARCH CHARSET.
    var utf8Accept = false
    /// Mailbox names are UTF-8 on the wire (IMAP4rev2 or UTF8=ACCEPT), not modified UTF-7.
    var utf8Names: Bool { rev2 || utf8Accept }
    /// A CONDSTORE enabling command was issued (RFC 7162 §3.1): every untagged FETCH carries MODSEQ, SELECT reports
    /// HIGHESTMODSEQ.
    var condstore = false
    /// `ENABLE QRESYNC` (RFC 7162 §3.2.3): VANISHED instead of EXPUNGE, and the QRESYNC SELECT parameter.
    var qresync = false
    /// The tagged OK of this command carries the mailbox's HIGHESTMODSEQ after its sync point (RFC 7162 §3.2.10:
    /// EXPUNGE under QRESYNC).
    var reportHighestModSeq = false
    /// CONDSTORE was enabled with a mailbox selected: its HIGHESTMODSEQ is announced at the next sync point that
    /// leaves no expunge withheld (RFC 7162 §3.1).
    var pendingHighestModSeq = false
    /// The selected mailbox has changes the session has not pulled yet (a change-feed hint arrived). Set with
    /// `markStale`, cleared with `markCurrent`.
    private(set) var viewIsStale = false
    /// What the change feed said changed in the selected mailbox since the view was current: taken in instead of a
    /// pull while it tells everything.
    private(set) var backlog = FeedBacklog()
    /// RFC 5182 SEARCHRES: the UIDs saved by `SEARCH RETURN (SAVE)`.
    var savedSearch: [UID] = []
    /// RFC 5267 updating searches of the selected mailbox.
    var updateContexts: [UpdateContext] = []
    /// RFC 5465 NOTIFY SET in effect.
    var notify: NotifyState?
    /// Flags this command already reported for messages (STORE, FETCH setting \Seen): the matching pending updates
    /// from the store are the command's own and are not announced again (STYLE.md §4.4).
    var reportedFlags: [UID: MessageFlags] = [:]
    var feedRegistration: ChangeFeed.Registration?
    var badCommands = 0
    var lastActivity = ContinuousClock.now
    /// The running FETCH found content gone while it read it (it ends NO [EXPUNGEISSUED]).
    var lostContent = false
    /// Why the session ended, for the disconnect log line.
    var endReason = "connection closed by the client"

    init(
        server: IMAPServerContext, info: ConnectionInfo, out: ResponseSink,
        signals: SessionSignals, tls: (any TLSUpgrade)? = nil, compression: (any CompressionUpgrade)? = nil,
        login: LoginState? = nil
    ) {
        self.loginState = login
        self.compression = compression
        self.server = server
        self.info = info
        self.out = out
        self.signals = signals
        self.tls = info.isSecure ? nil : tls
        self.secure = info.isSecure
        SessionMetrics.enter(.notAuthenticated)
        var logger = server.logger
        logger[metadataKey: "imap.conn"] = "\(info.id)"
        if let remote = info.remoteAddress { logger[metadataKey: "imap.peer"] = "\(remote)" }
        self.logger = logger
    }

    var store: any MailStore { server.store }

    /// Plaintext credentials are acceptable on this connection (DESIGN.md §5).
    var plaintextAuthAllowed: Bool { secure || info.isLoopback || server.allowPlaintextAuth }

    func responseWriter() -> ResponseWriter { ResponseWriter(utf8Names: utf8Names) }

    // MARK: lifecycle

    func greet() async throws {
        try await out.sendLine("* OK [CAPABILITY \(capabilities.joined(separator: " "))] \(server.greeting)")
        try await out.flush()
        logger.info("connect")
    }

    /// Takes the session off every count; runs exactly once, however the connection ended.
    func cleanup() {
        if let registration = feedRegistration { server.feed.unregister(registration) }
        feedRegistration = nil
        server.connections.release(address: address, user: login)
        SessionMetrics.leave(state)
        if signals.abort.isOpen { endReason = "account disabled" }
        logger.info("disconnect", metadata: ["reason": "\(endReason)"])
    }

    enum Outcome { case keepGoing, close }

    func handle(_ event: SessionEvent) async throws -> Outcome {
        switch event {
        case .client(let input):
            lastActivity = .now
            let outcome = try await handleClient(input)
            try await out.flush()
            out.shrink()
            // Inactivity counts from the end of a command: one that ran longer than the timeout (a slow LOGIN on a
            // loaded machine, a long FETCH) is not followed at once by the autologout its own run would seem to be.
            lastActivity = .now
            return outcome
        case .clientClosed:
            return .close
        case .signalled:
            if signals.abort.isOpen {
                signals.abortAnswered.open()
                try await out.sendLine(SessionSignals.disabledBye)
                try await out.flush()
                endReason = "account disabled"
                return .close
            }
            for control in signals.take() where try await handle(.control(control)) == .close {
                return .close
            }
            out.shrink()
            return .keepGoing
        case .control(.change(let change)):
            return try await closingOnBye { try await handleChange(change) }
        case .control(.notificationOverflow):
            try await notificationOverflow()
            try await out.flush()
            return .keepGoing
        case .control(.tick):
            let timeout =
                state == .notAuthenticated ? server.limits.unauthenticatedTimeout : server.limits.authenticatedTimeout
            if ContinuousClock.now - lastActivity > timeout {
                try await out.sendLine("* BYE Disconnected for inactivity.")
                try await out.flush()
                endReason = "autologout"
                return .close
            }
            if case .idle = continuation, viewIsStale {
                // A sync in IDLE that failed (the database away, a claim timed out) is tried again now: otherwise what
                // it took in would wait for the next change, which may never come.
                return try await closingOnBye { try await synchronizeInIdle() }
            }
            return .keepGoing
        case .control(.shutdown):
            try await out.sendLine("* BYE Server shutting down.")
            try await out.flush()
            endReason = "server shutting down"
            return .close
        }
    }

    private func handleClient(_ input: FramedInput) async throws -> Outcome {
        switch input {
        case .literalRequested:
            try await out.sendLine("+ Ready for literal data")
            return .keepGoing
        case .lineTooLong(let tag):
            return try await badCommand(tag: tag, code: .tooBig, "Command line too long")
        case .literalTooLarge(let tag, _):
            if let tag {
                var w = responseWriter()
                w.tagged(tag, "NO", code: .tooBig, "Literal too large")
                try await out.send(w)
                return .keepGoing
            }
            return try await badCommand(tag: nil, code: .tooBig, "Literal too large")
        case .uploadRefused(let tag):
            var w = responseWriter()
            w.tagged(
                tag ?? "*", "NO", code: .limit, "Too many messages are being uploaded right now; try again shortly")
            try await out.send(w)
            logger.notice("upload refused: message memory budget spent")
            return .keepGoing
        case .line(let bytes, let reservation):
            // The APPEND's memory stays reserved until the command is done. Input flows again if the line closed the
            // COMPRESS gate (after COMPRESS is installed, the gate is open already, and opening it again is harmless).
            defer {
                reservation?.release()
                compression?.refuse()
            }
            switch continuation {
            case .idle(let tag):
                return try await finishIdle(tag: tag, line: bytes)
            case .sasl(let tag, let exchange):
                return try await continueSASL(tag: tag, exchange: exchange, line: bytes)
            case .none:
                switch CommandParser.parse(bytes) {
                case .failure(let tag, let error):
                    return try await badCommand(tag: tag, code: nil, error.message)
                case .command(let tag, let command):
                    return try await dispatch(tag: tag, command: command)
                }
            }
        }
    }

    /// Answers a malformed command; too many in a row end the session (DESIGN.md §7).
    func badCommand(tag: Tag?, code: ResponseCode?, _ text: String) async throws -> Outcome {
        badCommands += 1
        var w = responseWriter()
        w.tagged(tag ?? "*", "BAD", code: code, text)
        try await out.send(w)
        if badCommands >= server.limits.maxBadCommands {
            try await out.sendLine("* BYE Too many invalid commands.")
            logger.notice("too many bad commands")
            endReason = "too many bad commands"
            return .close
        }
        return .keepGoing
    }

    // MARK: change feed

    /// Runs `body` between commands and flushes what it wrote; a BYE it throws (the selected mailbox was deleted while
    /// the session was in IDLE) is sent and ends the session.
    private func closingOnBye(_ body: () async throws -> Void) async throws -> Outcome {
        do {
            try await body()
        } catch IMAPError.bye(let text) {
            try await out.sendLine("* BYE \(ResponseWriter.sanitize(text))")
            try await out.flush()
            endReason = text
            return .close
        }
        try await out.flush()
        return .keepGoing
    }

    func handleChange(_ change: ChangeEvent) async throws {
        if notify != nil {
            switch change {
            case .mailboxChanged(let mailbox, _, _) where mailbox != view?.mailbox:
                await notifyOtherMailboxes(changed: mailbox)
            case .resync:
                await notifyOtherMailboxes(changed: nil)
                await announceMailboxChanges()
            case .mailboxesChanged:
                await announceMailboxChanges()
            case .metadataChanged(let owner, let entries):
                await announceMetadata(owner: owner, entries: entries)
            default:
                break
            }
        }
        guard let view else { return }
        switch change {
        case .mailboxChanged(let mailbox, let modSeq, let deltas):
            guard mailbox == view.mailbox, modSeq > view.highestModSeq else { return }
            backlog.add(deltas, upTo: modSeq, after: view.highestModSeq)
        case .resync:
            backlog.breakOff()
        case .accountDisabled, .mailboxesChanged, .metadataChanged:
            return
        }
        viewIsStale = true
        if case .idle = continuation {
            try await synchronizeInIdle()
        } else if case .none = continuation, let notify, let events = notify.selected, !events.isEmpty {
            // NOTIFY SELECTED (RFC 5465 §3): announced at once, between commands too; SELECTED-DELAYED keeps the
            // expunges for a command that may carry them (sequence numbers stay stable for the client).
            do {
                try await synchronize(notify.selectedDelayed ? .noExpunges : .full)
            } catch let error as StoreError {
                markStale()
                logger.warning("changes not announced for NOTIFY", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Announces the selected mailbox's changes to a client in IDLE. A failure leaves the view stale: the next change,
    /// the next tick, or DONE and the next command tries again.
    func synchronizeInIdle() async throws {
        do {
            try await synchronize(.full)
        } catch let error as StoreError {
            markStale()
            logger.warning("changes not announced in IDLE", metadata: ["error": "\(error)"])
        }
    }

    /// The view lacks changes that the feed's deltas may not describe (the session's own write, a lost feed): the
    /// next sync point reads them from the store.
    func markStale() {
        viewIsStale = true
        backlog.breakOff()
    }

    /// The view holds everything up to its HIGHESTMODSEQ (a new selection, or changes just taken in).
    func markCurrent() {
        viewIsStale = false
        backlog = FeedBacklog()
    }

    /// A write of the session's own to the selected mailbox: `own` says what it changed (nil: the store did not say,
    /// or it is not one modseq's change), and the sync point takes it in with the feed's deltas, or pulls.
    func wroteSelected(_ own: MailboxDelta?) {
        guard let view else { return }
        if let own { backlog.record(own, after: view.highestModSeq) } else { backlog.breakOff() }
        viewIsStale = true
    }

    /// The client was shown messages as the store holds them now (FETCH, STORE), with changes up to `modSeq`. When
    /// that is ahead of the view, the feed's deltas may only stand in for a read if they reach it: stopping short
    /// would take a message's flags and MODSEQ back in time (imaptest: "MODSEQ dropped").
    func showed(upTo modSeq: ModSeq?) {
        guard let modSeq, let view, modSeq > view.highestModSeq else { return }
        backlog.expect(modSeq)
    }

    /// Brings the selected mailbox's view up to date: with the feed's deltas when they tell everything since the
    /// view's HIGHESTMODSEQ, else with the changes read from the store.
    func pullChanges(fromStore: Bool = false) async throws {
        guard let current = view, let account else { return }
        if !fromStore {
            if backlog.covering(current.highestModSeq) == nil, let pending = signals.takeChange(of: current.mailbox) {
                // Notifications that came in during this command: a write's modseq is usually right above them.
                backlog.add(pending.deltas, upTo: pending.modSeq, after: current.highestModSeq)
            }
            if let deltas = backlog.covering(current.highestModSeq) {
                try await takeIn(deltas)
                return
            }
        }
        let delta: MailboxDelta
        do {
            delta = try await store.changes(
                account: account, mailbox: current.mailbox, since: current.highestModSeq, logger: logger)
        } catch {
            if error == .mailboxNotFound { throw IMAPError.bye("Selected mailbox was deleted, have to disconnect.") }
            throw error  // still stale: the next sync point tries again
        }
        try await takeIn([delta])
    }

    /// Takes pulled `deltas` (consecutive) into the view, then claims their new messages as `\Recent` for an
    /// IMAP4rev1 session.
    func takeIn(_ deltas: [MailboxDelta]) async throws {
        absorbChanges(deltas)
        guard let current = view, let account else { return }
        // IMAP4rev2 has no \Recent: such a session leaves the claim to IMAP4rev1 ones.
        if !current.readOnly, !rev2, let highest = current.highestPendingUID,
            deltas.compactMap(\.firstUnclaimedUID).max().map({ $0 <= highest }) ?? true
        {
            if let claimed = try await store.claimRecent(
                account: account, mailbox: current.mailbox, upTo: highest, logger: logger)
            {
                view?.markRecent(claimed)
            }
        }
    }

    /// Takes `deltas` into the view, less what the client was already told (a STORE's own FETCH responses).
    func absorbChanges(_ deltas: [MailboxDelta]) {
        markCurrent()
        for delta in deltas { view?.absorb(delta) }
        if !reportedFlags.isEmpty {
            view?.suppressFlagUpdates(matching: reportedFlags)
            reportedFlags = [:]
        }
    }

    /// A sync point (Dovecot's `cmd_sync`): pull changes when needed, then announce what `policy` allows.
    func synchronize(_ policy: FlushPolicy, forcePull: Bool = false) async throws {
        guard view != nil, policy != .none else { return }
        if forcePull || viewIsStale { try await pullChanges(fromStore: forcePull) }
        guard var current = view else { return }
        let before = current
        var responses = current.flush(policy, reportRecent: !rev2, modSeqs: condstore, vanished: qresync)
        if pendingHighestModSeq, !current.hasPendingExpunges {
            pendingHighestModSeq = false
            responses.append(.highestModSeq(current.highestModSeq))
        }
        view = current
        // RFC 5267 §4.3.3-4: REMOVEFROM before the EXPUNGEs (their numbers still valid), ADDTO after EXISTS.
        var (removals, additions): ([UInt8], [UInt8]) = ([], [])
        if !updateContexts.isEmpty {
            (removals, additions) = await refreshUpdateContexts(before: before, after: current)
        }
        guard !responses.isEmpty || !removals.isEmpty || !additions.isEmpty else { return }
        var w = responseWriter()
        w.raw(removals)
        for response in responses { w.untagged(response) }
        w.raw(additions)
        try await out.send(w)
        if let attributes = notify?.newMessageAttributes, notify?.selected?.contains(.messageNew) == true,
            current.count > 0, current.lastUID != before.lastUID
        {
            try await fetchNewMessages(after: before.lastUID, in: current, attributes)
        }
    }

    // MARK: helpers shared by command families

    /// The authenticated account; commands that reach here passed the state gate.
    var requireAccount: AccountID {
        get throws(IMAPError) {
            guard let account else { throw IMAPError.bad("Not logged in") }
            return account
        }
    }

    var requireView: MailboxView {
        get throws(IMAPError) {
            guard let view else { throw IMAPError.bad("No mailbox selected") }
            return view
        }
    }

    /// A mailbox argument as a stored name: modified UTF-7 for IMAP4rev1 clients, UTF-8 after ENABLE IMAP4rev2
    /// (RFC 9051 §5.1, Appendix A.1).
    func mailboxName(_ argument: MailboxArgument) throws(IMAPError) -> MailboxName {
        let wire = argument.wire
        if utf8Names || wire.utf8.contains(where: { $0 >= 0x80 }) {
            return MailboxName(normalizing: wire)
        }
        guard let decoded = ModifiedUTF7.decode(wire) else {
            throw IMAPError.no(.cannot, "Mailbox name is not valid modified UTF-7")
        }
        return MailboxName(normalizing: decoded)
    }

    var capabilities: [String] {
        var caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        switch state {
        case .notAuthenticated:
            if tls != nil && !secure { caps.append("STARTTLS") }
            if plaintextAuthAllowed {
                caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
            } else {
                caps.append("LOGINDISABLED")
            }
        default:
            caps += [
                "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "ESEARCH", "SEARCHRES", "LIST-EXTENDED",
                "LIST-STATUS", "SPECIAL-USE", "BINARY", "STATUS=SIZE", "QUOTA", "QUOTA=RES-STORAGE",
                "QUOTA=RES-MESSAGE", "APPENDLIMIT=\(server.limits.maxAppendSize)", "CONDSTORE", "QRESYNC", "WITHIN",
                "UNAUTHENTICATE", "CREATE-SPECIAL-USE", "SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT",
                "THREAD=REFERENCES", "THREAD=REFS", "MULTIAPPEND", "OBJECTID", "SAVEDATE", "PREVIEW", "UTF8=ACCEPT",
                "CATENATE",
                "METADATA", "METADATA-SERVER", "CONTEXT=SEARCH", "CONTEXT=SORT", "NOTIFY",
            ]
            if compression != nil && !compressed { caps.append("COMPRESS=DEFLATE") }
        }
        return caps
    }
}
