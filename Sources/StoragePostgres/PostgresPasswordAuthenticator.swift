import IMAPEngine
import Logging
import NIOPosix
import PostgresNIO

/// Store accounts (virtual users) as an `Authenticator` (DESIGN.md §5): the password hash kept in `accounts`,
/// checked with crypt(3) on a thread pool, never on an event loop. A disabled account, an unknown login and a
/// wrong password all answer `.failure`; the composition root gives every failure the same minimum duration.
public struct PostgresPasswordAuthenticator: Authenticator {
    let store: PostgresMailStore
    let threadPool: NIOThreadPool
    let logger: Logger

    public init(store: PostgresMailStore, threadPool: NIOThreadPool = .singleton, logger: Logger) {
        self.store = store
        self.threadPool = threadPool
        self.logger = logger
    }

    public func authenticate(user: String, password: String, remote: String?) async -> AuthenticationResult {
        let credentials: PostgresMailStore.Credentials?
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

extension PostgresMailStore {
    public struct Credentials: Sendable {
        public var passwordHash: String?
        public var disabled: Bool
    }

    /// The password hash and state of a login, nil when there is no such account.
    public func credentials(login: String, logger: Logger) async throws(StoreError) -> Credentials? {
        let client = self.client
        return try await run(logger) {
            let rows = try await client.prepared(
                "SELECT password_hash, disabled FROM accounts WHERE login = \(login)", logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (hash, disabled) = try row.decode((String?, Bool).self)
            return Credentials(passwordHash: hash, disabled: disabled)
        }
    }
}
