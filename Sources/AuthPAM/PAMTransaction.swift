import CPAM

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One blocking PAM transaction: `pam_start` → `pam_authenticate` → `pam_acct_mgmt` → `pam_end`.
///
/// Invariants:
/// - Everything here blocks (tens of milliseconds, more with slow modules): it runs only on a thread-pool thread.
/// - Each transaction has its own handle, conversation and password copy; nothing is shared between calls, so any
///   number may run at once on different threads.
/// - The password handed to PAM lives in memory this module allocated and wipes (`ConversationPassword`).
enum PAMTransaction {
    /// The PAM call that produced `Result.code`.
    enum Stage: String, Sendable, Equatable {
        case start, authenticate, accountManagement
    }

    struct Result: Sendable, Equatable {
        var stage: Stage
        var code: Int32
        /// `PAM_USER` after a successful transaction.
        var user: String?
        /// False when `pam_set_item(PAM_FAIL_DELAY)` was refused, so a module's fail delay blocked the thread.
        var failDelaySuppressed: Bool
    }

    static func run(service: String, user: String, password: String, remoteHost: String?) -> Result {
        let secret = ConversationPassword(password)
        return withExtendedLifetime(secret) {
            // PAM copies the pam_conv struct in pam_start; a pointer of our own keeps it valid for the whole
            // transaction on implementations that do not.
            let conversation = UnsafeMutablePointer<pam_conv>.allocate(capacity: 1)
            conversation.initialize(
                to: pam_conv(conv: pamConversation, appdata_ptr: Unmanaged.passUnretained(secret).toOpaque())
            )
            defer { conversation.deallocate() }

            var handle: OpaquePointer? = nil
            var code = pam_start(service, user, conversation, &handle)
            guard code == PAM_SUCCESS, let handle else {
                return Result(stage: .start, code: code, user: nil, failDelaySuppressed: false)
            }
            defer { pam_end(handle, code) }

            // pam_unix sleeps about 2 s on this thread after a failure; the caller delays failures itself without
            // holding a thread, so replace the delay with a no-op.
            let noDelay: @convention(c) (Int32, UInt32, UnsafeMutableRawPointer?) -> Void = pamNoFailDelay
            let failDelaySuppressed =
                pam_set_item(handle, PAM_FAIL_DELAY, unsafeBitCast(noDelay, to: UnsafeRawPointer.self)) == PAM_SUCCESS

            if let remoteHost, !remoteHost.utf8.contains(0) {
                _ = pam_set_item(handle, PAM_RHOST, remoteHost)
            }

            let flags = Int32(bitPattern: PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK)
            code = pam_authenticate(handle, flags)
            guard code == PAM_SUCCESS else {
                return Result(stage: .authenticate, code: code, user: nil, failDelaySuppressed: failDelaySuppressed)
            }
            code = pam_acct_mgmt(handle, flags)
            guard code == PAM_SUCCESS else {
                return Result(
                    stage: .accountManagement,
                    code: code,
                    user: nil,
                    failDelaySuppressed: failDelaySuppressed
                )
            }
            return Result(
                stage: .accountManagement,
                code: code,
                user: pamUser(handle) ?? user,
                failDelaySuppressed: failDelaySuppressed
            )
        }
    }

    /// Maps a PAM result code to a failure. The mapping does not depend on the stage: `PAM_PERM_DENIED` from an
    /// auth module such as pam_access means the same as from an account module.
    static func failure(for code: Int32) -> PAMFailure {
        switch code {
        case PAM_AUTH_ERR, PAM_CRED_INSUFFICIENT, PAM_MAXTRIES:
            .badCredentials
        case PAM_USER_UNKNOWN:
            .unknownUser
        case PAM_ACCT_EXPIRED, PAM_NEW_AUTHTOK_REQD, PAM_AUTHTOK_EXPIRED, PAM_PERM_DENIED:
            .accountUnavailable
        default:
            .serviceError(code: code)
        }
    }

    /// `pam_strerror`'s text for a code, for logs. Linux-PAM ignores the handle argument.
    static func describe(_ code: Int32) -> String {
        guard let text = pam_strerror(nil, code) else { return "PAM error \(code)" }
        return String(cString: text)
    }

    private static func pamUser(_ handle: OpaquePointer) -> String? {
        var item: UnsafeRawPointer? = nil
        guard pam_get_item(handle, PAM_USER, &item) == PAM_SUCCESS, let item else { return nil }
        let name = String(cString: item.assumingMemoryBound(to: CChar.self))
        return name.isEmpty ? nil : name
    }
}

/// The password as a NUL-terminated C string in memory this module owns, so that it can be wiped.
///
/// What is wiped: this copy (on deinit, with `explicit_bzero`), and the `strdup`'d replies when the conversation
/// itself fails. The replies PAM received are PAM's to free; Linux-PAM overwrites them and its `PAM_AUTHTOK` copy
/// before freeing them. The caller's Swift `String` cannot be wiped from here: Swift strings are immutable values
/// that may be shared or copied by the runtime, so whoever reads the password off the wire owns that copy.
final class ConversationPassword {
    let bytes: UnsafeMutableBufferPointer<CChar>

    init(_ password: String) {
        bytes = .allocate(capacity: password.utf8.count + 1)
        bytes.initialize(repeating: 0)
        for (index, byte) in password.utf8.enumerated() {
            bytes[index] = CChar(bitPattern: byte)
        }
    }

    deinit {
        if let base = bytes.baseAddress { explicit_bzero(base, bytes.count) }
        bytes.deallocate()
    }
}

/// The PAM conversation function: answers every prompt with the password and ignores informational messages.
///
/// A global function that captures nothing converts to the `@convention(c)` pointer PAM wants; per-call state
/// comes through `appdata` (an unretained `ConversationPassword` kept alive by `PAMTransaction.run`).
/// On Linux-PAM `messages` is an array of `count` pointers. Replies are `calloc`/`strdup`'d because PAM frees them.
func pamConversation(
    _ count: Int32,
    _ messages: UnsafeMutablePointer<UnsafePointer<pam_message>?>?,
    _ responses: UnsafeMutablePointer<UnsafeMutablePointer<pam_response>?>?,
    _ appdata: UnsafeMutableRawPointer?
) -> Int32 {
    guard let responses else { return PAM_CONV_ERR }
    responses.pointee = nil
    guard count > 0, count <= PAM_MAX_NUM_MSG, let messages, let appdata else { return PAM_CONV_ERR }
    let password = Unmanaged<ConversationPassword>.fromOpaque(appdata).takeUnretainedValue()
    guard let passwordText = password.bytes.baseAddress else { return PAM_BUF_ERR }
    let total = Int(count)
    guard let raw = calloc(total, MemoryLayout<pam_response>.stride) else { return PAM_BUF_ERR }
    let replies = raw.bindMemory(to: pam_response.self, capacity: total)

    func discardReplies() {
        for index in 0..<total {
            if let answer = replies[index].resp {
                explicit_bzero(answer, strlen(answer))
                free(answer)
            }
        }
        free(raw)
    }

    for index in 0..<total {
        guard let message = messages[index] else {
            discardReplies()
            return PAM_CONV_ERR
        }
        switch message.pointee.msg_style {
        case PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON:
            guard let answer = strdup(passwordText) else {
                discardReplies()
                return PAM_BUF_ERR
            }
            replies[index].resp = answer
        case PAM_ERROR_MSG, PAM_TEXT_INFO:
            break
        default:
            discardReplies()
            return PAM_CONV_ERR
        }
    }
    responses.pointee = replies
    return PAM_SUCCESS
}

/// The `PAM_FAIL_DELAY` hook: PAM calls it instead of sleeping after a failure.
private func pamNoFailDelay(_ status: Int32, _ delayMicroseconds: UInt32, _ appdata: UnsafeMutableRawPointer?) {}
