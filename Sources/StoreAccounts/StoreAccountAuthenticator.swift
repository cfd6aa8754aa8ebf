import IMAPEngine
import Logging
import NIOPosix

/// Store accounts (virtual users) as an `Authenticator` (DESIGN.md §5), over any store's `CredentialStore`: the
/// stored hash checked with crypt(3) on a thread pool, never on an event loop, unless `VerifiedLogins` already saw
/// this password succeed against the same hash. A disabled account, an unknown login
/// and a wrong password all answer `.failure`; the composition root gives every failure the same minimum duration.
public struct StoreAccountAuthenticator: Authenticator {
    let store: any CredentialStore
    let threadPool: NIOThreadPool
    let logger: Logger
    /// Passwords already checked against the same stored hash; nil checks every login with crypt(3).
    let verified: VerifiedLogins?

    public init(
        store: any CredentialStore, threadPool: NIOThreadPool = .singleton, verified: VerifiedLogins? = nil,
        logger: Logger
    ) {
        self.store = store
        self.threadPool = threadPool
        self.verified = verified
        self.logger = logger
    }

    public func authenticate(user: String, password: String, remote: String?) async -> AuthenticationResult {
        let credentials: StoreCredentials?
        do {
            credentials = try await store.credentials(login: user, logger: logger)
        } catch {
            return .unavailable(String(describing: error))
        }
        guard let credentials, let hash = credentials.passwordHash, !credentials.disabled else { return .failure }
        if let verified, verified.contains(login: user, storedHash: hash, password: password) {
            return .success(login: user, provision: false)
        }
        let matches = try? await threadPool.runIfActive { PasswordHash.verify(password, against: hash) }
        guard matches == true else { return .failure }
        verified?.insert(login: user, storedHash: hash, password: password)
        return .success(login: user, provision: false)
    }
}
