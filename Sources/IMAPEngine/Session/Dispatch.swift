import Logging

/// What a handler returns: the tagged OK line's code and text. Handlers write untagged data themselves and never
/// write the tagged line (STYLE.md §3).
struct Completion {
    var code: ResponseCode?
    var text: String
    init(_ text: String, code: ResponseCode? = nil) {
        self.code = code
        self.text = text
    }
}

/// The states in which a command is valid (RFC 9051 §6).
enum AllowedStates {
    case any, notAuthenticated, authenticated, selected
}

struct TaggedReply {
    var status: String
    var code: ResponseCode?
    var text: String
}

extension Command {
    var allowedStates: AllowedStates {
        switch self {
        case .capability, .noop, .logout, .id: .any
        case .starttls, .login, .authenticate: .notAuthenticated
        case .enable, .compress, .getMetadata, .setMetadata, .notify, .unauthenticate, .namespace, .select, .create,
            .delete,
            .rename, .subscribe,
            .unsubscribe, .list,
            .lsub, .status,
            .append, .idle, .getQuota, .getQuotaRoot, .setQuota:
            .authenticated
        case .check, .close, .unselect, .cancelUpdate, .expunge, .search, .sort, .thread, .fetch, .store, .copy, .move:
            .selected
        }
    }

    /// What the command's sync point may announce (RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH by
    /// sequence number).
    var flushPolicy: FlushPolicy {
        switch self {
        case .fetch(.sequence, _, _), .store(.sequence, _), .search(isUID: false, _),
            .sort(isUID: false, _), .thread(isUID: false, _):
            .noExpunges
        case .select, .logout, .close, .unselect, .unauthenticate: .none
        default: .full
        }
    }

    /// Commands whose point is to learn of changes: they always ask the store (RFC 9051 §6.1.2 NOOP, §6.4.1 CHECK).
    var forcesPull: Bool {
        switch self {
        case .noop, .check, .idle: true
        default: false
        }
    }
}

extension Session {
    /// State gate → handler → sync point → tagged line (Dovecot's `cmd_sync`, STYLE.md §3).
    func dispatch(tag: Tag, command: Command) async throws -> Outcome {
        var commandLogger = logger
        commandLogger[metadataKey: "imap.tag"] = "\(tag)"
        commandLogger[metadataKey: "imap.cmd"] = "\(command.name)"
        let started = ContinuousClock.now

        if let refusal = stateRefusal(for: command) {
            return try await badCommand(tag: tag, code: nil, refusal)
        }
        if case .starttls = command { return try await handleStartTLS(tag: tag) }
        if case .compress(let mechanism) = command { return try await handleCompress(tag: tag, mechanism: mechanism) }
        badCommands = 0
        reportedFlags = [:]
        reportHighestModSeq = false

        var reply = TaggedReply(status: "OK", code: nil, text: "")
        var outcome = Outcome.keepGoing
        do {
            let completion = try await execute(tag: tag, command: command)
            reply.code = completion.code
            reply.text = completion.text
            switch continuation {
            case .idle, .sasl: return .keepGoing  // answered later, when the client's next line arrives
            case .none: break
            }
            do {
                try await synchronize(command.flushPolicy, forcePull: command.forcesPull)
                if reportHighestModSeq, let view, !view.hasPendingExpunges {
                    reply.code = .highestModSeq(view.highestModSeq)
                }
            } catch let error as StoreError where !command.forcesPull && !Task.isCancelled {
                // The command did its work; a NO now would say it had not (an EXPUNGE answered NO whose messages
                // are gone). What the sync point could not announce is announced at the next one.
                markStale()
                commandLogger.warning("changes not announced", metadata: ["error": "\(error)"])
            }
            if state == .logout {
                outcome = .close
                endReason = "logout"
            }
        } catch {
            // The connection is ending (the peer left): nothing to answer, and nothing went wrong with the store.
            if Task.isCancelled { throw CancellationError() }
            guard let failure = failureReply(for: error, logger: commandLogger) else {
                if let error = error as? StoreError, case .bye(let text) = IMAPError.from(error) {
                    commandLogger.warning("store lost during a write", metadata: ["error": "\(error)"])
                    try await out.sendLine("* BYE \(ResponseWriter.sanitize(text))")
                    endReason = "store lost during a write"
                    return .close
                }
                if case IMAPError.bye(let text) = error {
                    try await out.sendLine("* BYE \(ResponseWriter.sanitize(text))")
                    endReason = text
                    return .close
                }
                throw error
            }
            reply = failure
            if reply.status == "NO", !Self.isUnavailable(error) {
                // A refused command is still a sync point for changes made elsewhere (RFC 9051 §7.5.1). Not when
                // the store is away: the answer must not wait for a second store timeout.
                try? await synchronize(command.flushPolicy)
            }
        }
        var w = responseWriter()
        w.tagged(tag, reply.status, code: reply.code, reply.text)
        try await out.send(w)
        SessionMetrics.command(command.name, result: reply.status, duration: ContinuousClock.now - started)
        commandLogger.debug(
            "command done",
            metadata: ["imap.result": "\(reply.status)", "imap.ms": "\((ContinuousClock.now - started).milliseconds)"])
        return outcome
    }

    /// The tagged NO/BAD for a handler's error (STYLE.md §6: the one error→wire mapping), or nil for errors that are
    /// not replies (BYE, connection failures).
    func failureReply(for error: any Error, logger: Logger) -> TaggedReply? {
        switch error {
        case let error as IMAPError:
            switch error {
            case .bad(let code, let text): return TaggedReply(status: "BAD", code: code, text: text)
            case .no(let code, let text): return TaggedReply(status: "NO", code: code, text: text)
            case .bye: return nil
            }
        case let error as StoreError:
            switch error {
            case .internal(let detail): logger.error("store error", metadata: ["error": "\(detail)"])
            case .unavailable(let detail): logger.warning("store unavailable", metadata: ["error": "\(detail)"])
            default: break
            }
            return failureReply(for: IMAPError.from(error), logger: logger)
        default:
            return nil
        }
    }

    static func isUnavailable(_ error: any Error) -> Bool {
        if case .unavailable = error as? StoreError { return true }
        return false
    }

    /// Why the command may not run now (RFC 9051 §3), or nil.
    func stateRefusal(for command: Command) -> String? {
        switch (command.allowedStates, state) {
        case (.any, _): return nil
        case (.notAuthenticated, .notAuthenticated): return nil
        case (.notAuthenticated, _): return "\(command.name) not allowed: already authenticated"
        case (.authenticated, .authenticated), (.authenticated, .selected): return nil
        case (.authenticated, _): return "\(command.name) not allowed: not authenticated yet"
        case (.selected, .selected): return nil
        case (.selected, .notAuthenticated): return "\(command.name) not allowed: not authenticated yet"
        case (.selected, _): return "\(command.name) not allowed: no mailbox selected"
        }
    }

    func execute(tag: Tag, command: Command) async throws -> Completion {
        switch command {
        case .capability: return try await handleCapability()
        case .noop: return Completion("NOOP completed")
        case .logout: return try await handleLogout()
        case .id(let fields): return try await handleID(fields)
        case .enable(let names): return try await handleEnable(names)
        case .unauthenticate: return handleUnauthenticate()
        case .starttls: throw IMAPError.bad("STARTTLS is handled before dispatch")
        case .compress: throw IMAPError.bad("COMPRESS is handled before dispatch")
        case .login(let user, let password): return try await handleLogin(user: user, password: password)
        case .authenticate(let mechanism, let initial):
            return try await handleAuthenticate(tag: tag, mechanism: mechanism, initialResponse: initial)
        case .namespace: return try await handleNamespace()
        case .select(let mailbox, let readOnly, let parameters):
            return try await handleSelect(mailbox, readOnly: readOnly, parameters: parameters)
        case .create(let mailbox, let use): return try await handleCreate(mailbox, use: use)
        case .delete(let mailbox): return try await handleDelete(mailbox)
        case .rename(let from, let to): return try await handleRename(from: from, to: to)
        case .subscribe(let mailbox): return try await handleSubscribe(mailbox, subscribe: true)
        case .cancelUpdate(let tags): return handleCancelUpdate(tags)
        case .notify(let command): return try await handleNotify(command)
        case .getMetadata(let mailbox, let maxSize, let depth, let entries):
            return try await handleGetMetadata(mailbox, maxSize: maxSize, depth: depth, entries: entries)
        case .setMetadata(let mailbox, let entries): return try await handleSetMetadata(mailbox, entries)
        case .unsubscribe(let mailbox): return try await handleSubscribe(mailbox, subscribe: false)
        case .list(let list): return try await handleList(list)
        case .lsub(let reference, let pattern): return try await handleLsub(reference: reference, pattern: pattern)
        case .status(let mailbox, let items): return try await handleStatus(mailbox, items: items)
        case .append(let append): return try await handleAppend(append)
        case .idle: return try await handleIdle(tag: tag)
        case .getQuota(let root): return try await handleGetQuota(root: root)
        case .getQuotaRoot(let mailbox): return try await handleGetQuotaRoot(mailbox)
        case .setQuota: throw IMAPError.no(.noPerm, "Quotas are set by the administrator (mailadmin quota set)")
        case .check: return Completion("CHECK completed")
        case .close: return try await handleClose(expunge: true)
        case .unselect: return try await handleClose(expunge: false)
        case .expunge(let uids): return try await handleExpunge(uids: uids)
        case .search(let isUID, let search): return try await handleSearch(tag: tag, isUID: isUID, search)
        case .sort(let isUID, let sort): return try await handleSort(tag: tag, isUID: isUID, sort)
        case .thread(let isUID, let thread): return try await handleThread(isUID: isUID, thread)
        case .fetch(let selector, let items, let modifiers):
            return try await handleFetch(selector, items: items, modifiers: modifiers)
        case .store(let selector, let action): return try await handleStore(selector, action: action)
        case .copy(let selector, let mailbox): return try await handleCopy(selector, to: mailbox, move: false)
        case .move(let selector, let mailbox): return try await handleCopy(selector, to: mailbox, move: true)
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
