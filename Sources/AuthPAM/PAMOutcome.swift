/// The answer of one PAM authentication: the account's PAM user name, or why it was refused.
public enum PAMOutcome: Sendable, Equatable {
    /// Both `pam_authenticate` and `pam_acct_mgmt` succeeded. `user` is `PAM_USER` after the transaction
    /// (a module may canonicalise it); normally it is the name that was passed in.
    case success(user: String)
    case failure(PAMFailure)
}

/// Why PAM refused a login. Only `serviceError` means the server (not the client) has a problem.
public enum PAMFailure: Sendable, Equatable {
    /// Wrong password (`PAM_AUTH_ERR`, `PAM_CRED_INSUFFICIENT`, `PAM_MAXTRIES`), or input rejected before
    /// PAM was called (empty user, NUL bytes, too long).
    case badCredentials
    /// `PAM_USER_UNKNOWN`.
    case unknownUser
    /// The password was checked but the account may not log in: expired or locked account, password that must
    /// be changed first, or a policy module's refusal (`PAM_ACCT_EXPIRED`, `PAM_NEW_AUTHTOK_REQD`,
    /// `PAM_AUTHTOK_EXPIRED`, `PAM_PERM_DENIED`).
    case accountUnavailable
    /// Any other PAM result, e.g. `PAM_AUTHINFO_UNAVAIL` (9) when the process may not read `/etc/shadow`.
    /// `PAM_ABORT` (26) is also used when the caller's task was cancelled before PAM ran, and
    /// `PAM_SYSTEM_ERR` (4) when the thread pool is not running.
    case serviceError(code: Int32)
}
