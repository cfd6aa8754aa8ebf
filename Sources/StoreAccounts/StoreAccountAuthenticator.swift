import IMAPEngine
import Logging
import NIOPosix

/// Store accounts (virtual users) as an `Authenticator` (DESIGN.md §5), over any store's `CredentialStore`: the
/// stored hash checked with crypt(3) on a thread pool, never on an event loop. A disabled account, an unknown login
/// and a wrong password all answer `.failure`; the composition root gives every failure the same minimum duration.
public struct StoreAccountAuthenticator: Authenticator {
    let store: any CredentialStore
    let threadPool: NIOThreadPool
    let logger: Logger

    public init(store: any CredentialStore, threadPool: NIOThreadPool = .singleton, logger: Logger) {
        self.store = store
        self.threadPool = threadPool
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
        let matches = try? await threadPool.runIfActive { PasswordHash.verify(password, against: hash) }
        return matches == true ? .success(login: user, provision: false) : .failure
    }
}
