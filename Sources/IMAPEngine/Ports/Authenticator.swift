/// The authentication port (DESIGN.md §5). Implementations never block the caller's thread.
public protocol Authenticator: Sendable {
    /// Checks a user name and password. `user` is already lower-cased (login names are case-insensitive).
    func authenticate(user: String, password: String, remote: String?) async -> AuthenticationResult
}

public enum AuthenticationResult: Sendable, Equatable {
    /// `login` is the account's canonical name; `provision` asks for the account to be created on first login.
    case success(login: String, provision: Bool)
    case failure
    /// The authentication backend is broken or unreachable (`NO [UNAVAILABLE]`).
    case unavailable(String)
}
