import IMAPEngine

/// The backends named by `--auth`, tried in order (`db,pam`: store accounts first, then system accounts).
///
/// Every failure — unknown user, wrong password, disabled account, a backend error — takes at least
/// `minimumFailureTime` from the start of the attempt, slept without holding a thread, so failures cannot be told
/// apart by timing (no user enumeration, DESIGN.md §5). The backends themselves add no delay.
struct AuthenticatorChain: Authenticator {
    let backends: [any Authenticator]
    let minimumFailureTime: Duration

    func authenticate(user: String, password: String, remote: String?) async -> AuthenticationResult {
        let started = ContinuousClock.now
        var unavailable: String?
        for backend in backends {
            switch await backend.authenticate(user: user, password: password, remote: remote) {
            case .success(let login, let provision):
                return .success(login: login, provision: provision)
            case .failure:
                continue
            case .unavailable(let reason):
                unavailable = reason
            }
        }
        let remaining = minimumFailureTime - (ContinuousClock.now - started)
        if remaining > .zero { try? await Task.sleep(for: remaining) }
        return unavailable.map { .unavailable($0) } ?? .failure
    }
}
