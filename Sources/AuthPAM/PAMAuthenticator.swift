// AuthPAM: password checks against system accounts through PAM. Knows nothing of IMAP; MailHost adapts it.

import CPAM
import Logging
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Checks user name and password with PAM (`pam_authenticate` then `pam_acct_mgmt`), off the caller's thread.
///
/// Each call is one PAM transaction with its own handle, run on `threadPool` (never on the caller's thread or an
/// event loop), so calls may be made concurrently from any task.
///
/// ## Deployment (measured on Debian 12 with pam_unix and yescrypt hashes; see shared/TOOLCHAIN.md §2)
/// - pam_unix can only check *other* users' passwords when the process runs as root or in group `shadow`. A plain
///   non-root daemon gets PAM_AUTHINFO_UNAVAIL (9, `.serviceError(code: 9)`, logged as a warning) for every other
///   account, because unix_chkpwd only verifies the caller's own account. Group `shadow` works but lets the process
///   read every password hash; the alternative is a small privileged helper.
/// - A missing /etc/pam.d/<service> does NOT make pam_start fail: PAM silently falls back to /etc/pam.d/other,
///   which on Debian includes common-auth (pam_unix) and whatever else the admin put there. Always install
///   deploy/pam.d/mailhost as /etc/pam.d/mailhost (or the configured service name).
/// - pam_unix sleeps about 2 s (randomised 1.65-2.7 s) on the calling thread after a failure. This module sets a
///   no-op PAM_FAIL_DELAY hook instead, so the service file needs no `nodelay`, and applies its own minimum failure
///   time with Task.sleep, which holds no thread.
/// - With the delay suppressed, an unknown user fails in about 1 ms and a wrong password in about 40 ms; the
///   minimum failure time hides that difference (no user enumeration by timing).
/// - Only auth and account stages run: no pam_setcred, no pam_open_session (an IMAP login is not a login session,
///   as in Dovecot's default).
public struct PAMAuthenticator: Sendable {
    /// The PAM service name: the file /etc/pam.d/<service>.
    public let service: String
    /// Every failure returns no earlier than this after the call started.
    public let minimumFailureTime: Duration
    /// Accounts with a lower uid (system accounts) never log in, whatever PAM says; root (uid 0) never does.
    public let minimumUID: UInt32
    private let threadPool: NIOThreadPool
    /// Test seam: runs on the pool thread right before PAM is called.
    let willRunPAM: (@Sendable () -> Void)?

    /// Longest user name passed to PAM, in UTF-8 bytes: far above real account names, low enough to keep junk
    /// away from PAM modules.
    static let maximumUserBytes = 256
    /// Longest password passed to PAM, in UTF-8 bytes (libpam's advisory PAM_MAX_RESP_SIZE is 512).
    static let maximumPasswordBytes = 1024

    public init(
        service: String = "mailhost",
        threadPool: NIOThreadPool = .singleton,
        minimumFailureTime: Duration = .seconds(1),
        minimumUID: UInt32 = 1000
    ) {
        self.init(
            service: service, threadPool: threadPool, minimumFailureTime: minimumFailureTime, minimumUID: minimumUID,
            willRunPAM: nil)
    }

    init(
        service: String,
        threadPool: NIOThreadPool = .singleton,
        minimumFailureTime: Duration,
        minimumUID: UInt32 = 1000,
        willRunPAM: (@Sendable () -> Void)?
    ) {
        self.service = service
        self.threadPool = threadPool
        self.minimumFailureTime = minimumFailureTime
        self.minimumUID = minimumUID
        self.willRunPAM = willRunPAM
    }

    /// Whether the system account `user` may log in: not root, uid at least `minimumUID`. A name the system does
    /// not know is left to PAM (which fails it, or knows it from elsewhere). Blocking (NSS): call it off the loop.
    static func accountMayLogIn(_ user: String, minimumUID: UInt32) -> Bool {
        switch systemAccount(user) {
        case .unknown: return true  // left to PAM, which fails it or knows it from elsewhere
        case .found(let uid): return uid != 0 && uid >= minimumUID
        case .lookupFailed: return false  // fail closed: the rule cannot be checked
        }
    }

    public enum SystemAccount: Equatable, Sendable {
        case found(uid: UInt32)
        case unknown
        /// NSS answered with an error (a directory service away): nothing can be said of the account.
        case lookupFailed
    }

    /// The system account `name` as NSS knows it. Blocking.
    public static func systemAccount(_ name: String) -> SystemAccount {
        var size = 16384
        while size <= 1 << 20 {
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: size)
            let error = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
            if error == ERANGE {
                size *= 4
                continue
            }
            guard error == 0 else { return .lookupFailed }
            return result == nil ? .unknown : .found(uid: entry.pw_uid)
        }
        return .lookupFailed
    }

    /// Authenticates `user` with `password` and checks that the account may log in.
    ///
    /// Runs pam_start/pam_authenticate/pam_acct_mgmt on the thread pool, with pam_unix's blocking fail delay
    /// suppressed. Every failure (bad input, unknown user, wrong password, refused account, service error) returns
    /// no earlier than `minimumFailureTime` after the call started, waiting with `Task.sleep`, so failures cannot be
    /// told apart by timing. Success returns as soon as PAM says so. If the task is cancelled the wait ends early.
    ///
    /// Rejected without calling PAM (`.badCredentials`): an empty user, a NUL byte in user or password, a user
    /// longer than 256 UTF-8 bytes or a password longer than 1024.
    ///
    /// The password is copied into a C buffer that is wiped (`explicit_bzero`) when the transaction ends; PAM's own
    /// copies are wiped by libpam. The caller's `String` is not touched (Swift strings cannot be wiped reliably).
    ///
    /// - Parameters:
    ///   - remoteHost: the client's address, passed to PAM as `PAM_RHOST` (pam_unix logs it; pam_access uses it).
    ///   - logger: gets a debug line per result and a warning for service errors; never the password.
    public func authenticate(
        user: String,
        password: String,
        remoteHost: String? = nil,
        logger: Logger? = nil
    ) async -> PAMOutcome {
        let started = ContinuousClock.now
        let outcome = await runTransaction(user: user, password: password, remoteHost: remoteHost, logger: logger)
        if case .failure = outcome {
            await Self.wait(until: started.advanced(by: minimumFailureTime))
        }
        logger?.debug(
            "PAM authentication finished",
            metadata: [
                "pam.service": "\(service)",
                "pam.result": "\(outcome.logDescription)",
                "pam.ms": "\((ContinuousClock.now - started).milliseconds)",
            ]
        )
        return outcome
    }

    static func acceptsInput(user: String, password: String) -> Bool {
        let userBytes = user.utf8
        let passwordBytes = password.utf8
        return !userBytes.isEmpty
            && userBytes.count <= maximumUserBytes
            && passwordBytes.count <= maximumPasswordBytes
            && !userBytes.contains(0)
            && !passwordBytes.contains(0)
    }

    private func runTransaction(
        user: String,
        password: String,
        remoteHost: String?,
        logger: Logger?
    ) async -> PAMOutcome {
        guard Self.acceptsInput(user: user, password: password) else { return .failure(.badCredentials) }
        let (service, minimumUID) = (self.service, self.minimumUID)
        let willRunPAM = self.willRunPAM
        let result: PAMTransaction.Result
        do {
            let checked = try await threadPool.runIfActive { () -> PAMTransaction.Result? in
                // System accounts and root are refused before PAM sees the password, and after it too, in case a
                // module mapped the name to one (PAM_USER).
                guard Self.accountMayLogIn(user, minimumUID: minimumUID) else { return nil }
                willRunPAM?()
                let result = PAMTransaction.run(
                    service: service, user: user, password: password, remoteHost: remoteHost)
                if result.code == PAM_SUCCESS, let mapped = result.user, mapped != user,
                    !Self.accountMayLogIn(mapped, minimumUID: minimumUID)
                {
                    return nil
                }
                return result
            }
            guard let checked else {
                logger?.notice(
                    "PAM login refused: system account", metadata: ["pam.minimumUID": "\(minimumUID)"])
                return .failure(.accountUnavailable)
            }
            result = checked
        } catch is CancellationError {
            return .failure(.serviceError(code: PAM_ABORT))
        } catch {
            logger?.warning(
                "PAM thread pool is not running",
                metadata: ["pam.service": "\(service)", "error": "\(error)"]
            )
            return .failure(.serviceError(code: PAM_SYSTEM_ERR))
        }

        if !result.failDelaySuppressed {
            logger?.warning("PAM refused the PAM_FAIL_DELAY hook; failures block a pool thread")
        }
        guard result.code == PAM_SUCCESS else {
            let failure: PAMFailure =
                result.stage == .start ? .serviceError(code: result.code) : PAMTransaction.failure(for: result.code)
            if case .serviceError = failure {
                logger?.warning(
                    "PAM service error",
                    metadata: [
                        "pam.service": "\(service)",
                        "pam.stage": "\(result.stage.rawValue)",
                        "pam.code": "\(result.code)",
                        "pam.error": "\(PAMTransaction.describe(result.code))",
                    ]
                )
            }
            return .failure(failure)
        }
        return .success(user: result.user ?? user)
    }

    /// Sleeps until `deadline` without holding a thread; returns early only when the task is cancelled.
    private static func wait(until deadline: ContinuousClock.Instant) async {
        while ContinuousClock.now < deadline {
            do {
                try await Task.sleep(until: deadline, clock: .continuous)
            } catch {
                return
            }
        }
    }
}

extension PAMOutcome {
    fileprivate var logDescription: String {
        switch self {
        case .success: "success"
        case .failure(.badCredentials): "badCredentials"
        case .failure(.unknownUser): "unknownUser"
        case .failure(.accountUnavailable): "accountUnavailable"
        case .failure(.serviceError(let code)): "serviceError(\(code))"
        }
    }
}

extension Duration {
    fileprivate var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
