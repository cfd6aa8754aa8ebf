import AuthPAM
import IMAPEngine
import Logging

/// Adapts AuthPAM (which knows nothing of IMAP) to the engine's `Authenticator` port. A PAM user's account is
/// provisioned at its first successful login (DESIGN.md §5).
struct PAMAuthentication: Authenticator {
    let pam: PAMAuthenticator
    let logger: Logger

    func authenticate(user: String, password: String, remote: String?) async -> AuthenticationResult {
        switch await pam.authenticate(user: user, password: password, remoteHost: remote, logger: logger) {
        case .success(let name):
            return .success(login: name.lowercased(), provision: true)
        case .failure(.badCredentials), .failure(.unknownUser), .failure(.accountUnavailable):
            return .failure
        case .failure(.serviceError(let code)):
            return .unavailable("PAM error \(code)")
        }
    }
}
