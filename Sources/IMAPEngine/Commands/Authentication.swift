import Logging

/// LOGIN and AUTHENTICATE (RFC 9051 §6.2; SASL PLAIN RFC 4616, SASL-IR RFC 4959, LOGIN draft-murchison-sasl-login).
///
/// Failures answer `NO [AUTHENTICATIONFAILED]` after the authenticator's uniform failure delay, so a wrong password
/// and an unknown user cannot be told apart by the answer or its timing (DESIGN.md §5).
enum SASLExchange {
    case plain
    case loginUser
    case loginPassword(user: String)
}

extension Session {
    func handleLogin(user: String, password: Secret) async throws -> Completion {
        guard plaintextAuthAllowed else {
            throw IMAPError.no(.privacyRequired, "Plaintext authentication disallowed on non-secure connections")
        }
        return try await authenticate(user: user, password: password.value)
    }

    func handleAuthenticate(tag: Tag, mechanism: String, initialResponse: Secret?) async throws -> Completion {
        switch mechanism {
        case "PLAIN":
            guard plaintextAuthAllowed else {
                throw IMAPError.no(.privacyRequired, "Plaintext authentication disallowed on non-secure connections")
            }
            if let initialResponse {
                return try await finishPlain(initialResponse.value)
            }
            continuation = .sasl(tag, .plain)
            try await out.sendLine("+ ")
            return Completion("")
        case "LOGIN":
            guard plaintextAuthAllowed else {
                throw IMAPError.no(.privacyRequired, "Plaintext authentication disallowed on non-secure connections")
            }
            if let initialResponse {
                guard let user = decodeBase64Text(initialResponse.value) else {
                    throw IMAPError.bad("Invalid base64 data")
                }
                continuation = .sasl(tag, .loginPassword(user: user))
                try await out.sendLine("+ UGFzc3dvcmQ6")  // "Password:"
            } else {
                continuation = .sasl(tag, .loginUser)
                try await out.sendLine("+ VXNlcm5hbWU6")  // "Username:"
            }
            return Completion("")
        default:
            throw IMAPError.no(.cannot, "Unsupported authentication mechanism")
        }
    }

    /// The next client line of a SASL exchange; `*` cancels (RFC 9051 §6.2.2).
    func continueSASL(tag: Tag, exchange: SASLExchange, line: [UInt8]) async throws -> Outcome {
        continuation = .none
        let text = String(decoding: line, as: UTF8.self)
        var reply: TaggedReply
        do {
            if text == "*" { throw IMAPError.bad("Authentication cancelled") }
            let completion: Completion
            switch exchange {
            case .plain:
                completion = try await finishPlain(text)
            case .loginUser:
                guard let user = decodeBase64Text(text) else { throw IMAPError.bad("Invalid base64 data") }
                continuation = .sasl(tag, .loginPassword(user: user))
                try await out.sendLine("+ UGFzc3dvcmQ6")
                return .keepGoing
            case .loginPassword(let user):
                guard let password = decodeBase64Text(text) else { throw IMAPError.bad("Invalid base64 data") }
                completion = try await authenticate(user: user, password: password)
            }
            reply = TaggedReply(status: "OK", code: completion.code, text: completion.text)
        } catch {
            guard let failure = failureReply(for: error, logger: logger) else { throw error }
            reply = failure
        }
        var w = responseWriter()
        w.tagged(tag, reply.status, code: reply.code, reply.text)
        try await out.send(w)
        return .keepGoing
    }

    /// RFC 4616: `[authzid] NUL authcid NUL passwd`; a different authzid (proxy login) is refused.
    private func finishPlain(_ base64: String) async throws -> Completion {
        guard let bytes = base64 == "=" ? [] : Base64.decode(base64) else {
            throw IMAPError.bad("Invalid base64 data")
        }
        let fields = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let authzid = String(validating: fields[0], as: UTF8.self),
            let authcid = String(validating: fields[1], as: UTF8.self),
            let password = String(validating: fields[2], as: UTF8.self)
        else {
            throw IMAPError.bad("Invalid PLAIN response")
        }
        if !authzid.isEmpty && authzid.lowercased() != authcid.lowercased() {
            throw IMAPError.no(.authorizationFailed, "Authorization as another user is not permitted")
        }
        return try await authenticate(user: authcid, password: password)
    }

    private func decodeBase64Text(_ text: String) -> String? {
        guard let bytes = Base64.decode(text) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Checks credentials and moves to the authenticated state (RFC 9051 §6.2.3).
    func authenticate(user rawUser: String, password: String) async throws -> Completion {
        // Login names are case-insensitive: `TIM` logs in as `tim`.
        let user = rawUser.lowercased()
        let started = ContinuousClock.now
        let result = await server.authenticator.authenticate(
            user: user, password: password, remote: info.remoteAddress)
        switch result {
        case .failure:
            try await failLogin(user: user, started: started)
        case .unavailable(let reason):
            SessionMetrics.login("unavailable")
            logger.warning("authentication unavailable", metadata: ["error": "\(reason)"])
            throw IMAPError.no(.unavailable, "Authentication service is temporarily unavailable")
        case .success(let login, let provision):
            guard server.connections.authenticate(address: address, user: login) else {
                SessionMetrics.login("limit")
                logger.notice("connection limit", metadata: ["imap.user": "\(login)", "imap.peer": "\(address)"])
                throw IMAPError.no(.limit, "Too many connections for this user from your address")
            }
            let accountID: AccountID
            do {
                accountID = try await store.account(login: login, create: provision, logger: logger)
            } catch {
                // Still not logged in: the connection counts as unauthenticated again.
                server.connections.unauthenticate(address: address, user: login)
                switch error {
                case .cannot, .accountNotFound:
                    // A disabled (or deleted) account fails like a wrong password, in the same time: the answer
                    // must not tell that the password was right, and the failure counts for the penalty.
                    try await failLogin(user: user, started: started)
                default:
                    throw error
                }
            }
            server.penalty.recordSuccess(address: address)
            SessionMetrics.login("success")
            account = accountID
            self.login = login
            state = .authenticated
            loginState?.set(true)
            logger[metadataKey: "imap.user"] = "\(login)"
            logger.info("login")
            let signals = self.signals
            feedRegistration = server.feed.register(account: accountID) { event in
                signals.post(.change(event))
            }
            return Completion("Logged in", code: .capability(capabilities))
        }
    }
}

extension Session {
    /// RFC 8437: every state of the login is reset, TLS stays; the selected mailbox is let go without expunge
    /// events. Never NO (a client may pipeline the next AUTHENTICATE).
    func handleUnauthenticate() -> Completion {
        if let registration = feedRegistration { server.feed.unregister(registration) }
        feedRegistration = nil
        if let login { server.connections.unauthenticate(address: address, user: login) }
        logger.info("logout", metadata: ["reason": "unauthenticate"])
        logger[metadataKey: "imap.user"] = nil
        account = nil
        login = nil
        view = nil
        markCurrent()
        savedSearch = []
        updateContexts = []
        notify = nil
        reportedFlags = [:]
        rev2 = false
        utf8Accept = false
        condstore = false
        qresync = false
        pendingHighestModSeq = false
        state = .notAuthenticated
        loginState?.set(false)  // the small pre-login limits apply again
        return Completion("UNAUTHENTICATE completed")
    }

    /// The one answer to every failed login: logged for fail2ban, slowed to the uniform failure time and then by the
    /// address's penalty, `NO [AUTHENTICATIONFAILED]`.
    func failLogin(user: String, started: ContinuousClock.Instant) async throws -> Never {
        SessionMetrics.login("failure")
        // One line per failure with user and address, for fail2ban (deploy/fail2ban).
        logger.notice(
            "authentication failed", metadata: ["imap.user": "\(user.prefix(64))", "imap.peer": "\(address)"])
        try await Task.sleep(until: started + server.authenticationFailureTime)
        let penalty = server.penalty.recordFailure(address: address)
        if penalty > .zero { try await Task.sleep(for: penalty) }
        throw IMAPError.no(.authenticationFailed, "Authentication failed.")
    }
}

/// Standard base64 (RFC 4648 §4), as SASL uses it.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    /// Strict decoding: only the alphabet and trailing padding; nil otherwise.
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        var padding = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return nil }
            let value = reverse[Int(byte)]
            guard value >= 0 else { return nil }
            buffer = (buffer << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        guard padding <= 2, (text.utf8.count % 4 == 0) || padding == 0 else { return nil }
        return out
    }

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        var iterator = bytes.makeIterator()
        while let a = iterator.next() {
            let b = iterator.next()
            let c = iterator.next()
            let n = (UInt32(a) << 16) | (UInt32(b ?? 0) << 8) | UInt32(c ?? 0)
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            out.append(b == nil ? UInt8(ascii: "=") : alphabet[Int((n >> 6) & 63)])
            out.append(c == nil ? UInt8(ascii: "=") : alphabet[Int(n & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Session {
    /// STARTTLS (RFC 9051 §6.2.1): the tagged OK, then TLS. The framing decoder has already stopped reading
    /// plaintext (`StartTLSGate`); whatever the client pipelined after STARTTLS is discarded, never executed.
    func handleStartTLS(tag: Tag) async throws -> Outcome {
        guard let tls, !secure else {
            tls?.refuse()
            var w = responseWriter()
            w.tagged(tag, "BAD", secure ? "TLS is already active" : "STARTTLS is not available on this connection")
            try await out.send(w)
            return .keepGoing
        }
        var w = responseWriter()
        w.tagged(tag, "OK", "Begin TLS negotiation now")
        try await out.flush()
        do {
            try await tls.start(reply: w.bytes)
        } catch {
            logger.notice("STARTTLS failed", metadata: ["error": "\(error)"])
            return .close
        }
        secure = true
        logger.debug("STARTTLS done")
        return .keepGoing
    }
}

extension Session {
    /// COMPRESS (RFC 4978): the tagged OK uncompressed, then DEFLATE both ways. The framing decoder stopped reading
    /// when it framed the command (the client must wait for the OK before it compresses).
    func handleCompress(tag: Tag, mechanism: String) async throws -> Outcome {
        var w = responseWriter()
        guard mechanism == "DEFLATE" else {
            w.tagged(tag, "BAD", "Unknown compression mechanism")
            try await out.send(w)
            return .keepGoing
        }
        guard let compression, !compressed else {
            if compressed {
                w.tagged(tag, "NO", code: .compressionActive, "DEFLATE is already active")
            } else {
                w.tagged(tag, "NO", "COMPRESS is not available on this connection")
            }
            try await out.send(w)
            return .keepGoing
        }
        w.tagged(tag, "OK", "DEFLATE active")
        try await out.flush()
        do {
            try await compression.start(reply: w.bytes)
        } catch {
            logger.notice("COMPRESS failed", metadata: ["error": "\(error)"])
            return .close
        }
        compressed = true
        logger.debug("COMPRESS=DEFLATE active")
        return .keepGoing
    }
}
