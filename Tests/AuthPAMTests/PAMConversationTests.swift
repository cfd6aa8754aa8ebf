// Marshalling tests: the conversation function, the result-code mapping and input validation.
// They need no PAM service and no system users, so they always run.

import CPAM
import Synchronization
import Testing

@testable import AuthPAM

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Calls `pamConversation` as libpam would, with `styles.count` messages (a `nil` style is a NULL message pointer),
/// and returns its result code plus the reply strings, freeing the replies as libpam does.
private func converse(
    password: String,
    styles: [Int32?],
    count: Int32? = nil
) -> (code: Int32, replies: [String?]?) {
    let secret = ConversationPassword(password)
    return withExtendedLifetime(secret) {
        let texts = styles.map { _ in strdup("Password: ") }
        defer {
            for text in texts { free(text) }
        }
        let messages = UnsafeMutablePointer<pam_message>.allocate(capacity: max(styles.count, 1))
        defer { messages.deallocate() }
        let pointers = UnsafeMutablePointer<UnsafePointer<pam_message>?>.allocate(capacity: max(styles.count, 1))
        defer { pointers.deallocate() }
        for (index, style) in styles.enumerated() {
            messages[index] = pam_message(msg_style: style ?? 0, msg: UnsafePointer(texts[index]))
            pointers[index] = style == nil ? nil : UnsafePointer(messages + index)
        }
        // Poison the out-parameter so the test sees whether the function always sets it.
        var responses: UnsafeMutablePointer<pam_response>? = UnsafeMutablePointer(bitPattern: 0xdead)
        let code = pamConversation(
            count ?? Int32(styles.count),
            pointers,
            &responses,
            Unmanaged.passUnretained(secret).toOpaque()
        )
        guard let responses else { return (code, nil) }
        var replies: [String?] = []
        for index in 0..<styles.count {
            if let text = responses[index].resp {
                replies.append(String(cString: text))
                free(text)
            } else {
                replies.append(nil)
            }
        }
        free(responses)
        return (code, replies)
    }
}

@Suite("PAM conversation and mapping (no PAM needed)")
struct PAMConversationTests {
    @Test func answersPromptsWithThePasswordAndIgnoresMessages() {
        let (code, replies) = converse(
            password: "secret two",
            styles: [PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO, PAM_PROMPT_ECHO_ON, PAM_ERROR_MSG]
        )
        #expect(code == PAM_SUCCESS)
        #expect(replies == ["secret two", nil, "secret two", nil])
    }

    @Test(arguments: ["", "timmy", "pässwörd ✓", String(repeating: "x", count: 1024)])
    func passwordBytesSurviveTheCopy(_ password: String) {
        let (code, replies) = converse(password: password, styles: [PAM_PROMPT_ECHO_OFF])
        #expect(code == PAM_SUCCESS)
        #expect(replies == [password])
    }

    @Test func maximumMessageCountIsAnswered() {
        let styles = [Int32?](repeating: PAM_PROMPT_ECHO_OFF, count: Int(PAM_MAX_NUM_MSG))
        let (code, replies) = converse(password: "p", styles: styles)
        #expect(code == PAM_SUCCESS)
        #expect(replies?.count == Int(PAM_MAX_NUM_MSG))
        let allPasswords = replies?.allSatisfy { $0 == "p" }
        #expect(allPasswords == true)
    }

    @Test(arguments: [0, -1, Int32.min, PAM_MAX_NUM_MSG + 1, Int32.max])
    func impossibleMessageCountsAreRefused(_ count: Int32) {
        // Only one message exists; counts above the PAM maximum must be refused before anything is read.
        let (code, replies) = converse(password: "p", styles: [PAM_PROMPT_ECHO_OFF], count: count)
        #expect(code == PAM_CONV_ERR)
        #expect(replies == nil)
    }

    @Test func unknownStyleFailsAndReturnsNoReplies() {
        let (code, replies) = converse(password: "p", styles: [PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, 99])
        #expect(code == PAM_CONV_ERR)
        #expect(replies == nil)
    }

    @Test func nullMessagePointerFails() {
        let (code, replies) = converse(password: "p", styles: [PAM_PROMPT_ECHO_OFF, nil])
        #expect(code == PAM_CONV_ERR)
        #expect(replies == nil)
    }

    @Test func missingArgumentsFail() {
        #expect(pamConversation(1, nil, nil, nil) == PAM_CONV_ERR)
        var responses: UnsafeMutablePointer<pam_response>? = nil
        #expect(pamConversation(1, nil, &responses, nil) == PAM_CONV_ERR)
        #expect(responses == nil)
    }

    @Test(arguments: [
        (PAM_AUTH_ERR, PAMFailure.badCredentials),
        (PAM_CRED_INSUFFICIENT, .badCredentials),
        (PAM_MAXTRIES, .badCredentials),
        (PAM_USER_UNKNOWN, .unknownUser),
        (PAM_ACCT_EXPIRED, .accountUnavailable),
        (PAM_NEW_AUTHTOK_REQD, .accountUnavailable),
        (PAM_AUTHTOK_EXPIRED, .accountUnavailable),
        (PAM_PERM_DENIED, .accountUnavailable),
        (PAM_AUTHINFO_UNAVAIL, .serviceError(code: 9)),
        (PAM_SYSTEM_ERR, .serviceError(code: 4)),
        (PAM_CONV_ERR, .serviceError(code: 19)),
        (PAM_ABORT, .serviceError(code: 26)),
    ])
    func resultCodesMapToFailures(_ code: Int32, _ failure: PAMFailure) {
        #expect(PAMTransaction.failure(for: code) == failure)
    }

    @Test(arguments: [
        ("tim", "timmy", true),
        ("tim", "", true),
        ("", "timmy", false),
        ("t\0im", "timmy", false),
        ("tim", "tim\0my", false),
        (String(repeating: "u", count: 256), "p", true),
        (String(repeating: "u", count: 257), "p", false),
        (String(repeating: "é", count: 128), "p", true),  // 256 UTF-8 bytes
        (String(repeating: "é", count: 129), "p", false),  // 258 UTF-8 bytes
        ("tim", String(repeating: "p", count: 1024), true),
        ("tim", String(repeating: "p", count: 1025), false),
        ("tim", String(repeating: "ü", count: 513), false),  // 1026 UTF-8 bytes
    ])
    func inputLimits(_ user: String, _ password: String, _ accepted: Bool) {
        #expect(PAMAuthenticator.acceptsInput(user: user, password: password) == accepted)
    }

    @Test func defaults() {
        let authenticator = PAMAuthenticator()
        #expect(authenticator.service == "mailhost")
        #expect(authenticator.minimumFailureTime == .seconds(1))
    }

    /// Rejected input never reaches PAM, and still takes the minimum failure time.
    @Test(arguments: [
        ("", "timmy"),
        ("tim\0", "timmy"),
        ("tim", "timmy\0"),
        (String(repeating: "u", count: 257), "timmy"),
        ("tim", String(repeating: "p", count: 1025)),
    ])
    func invalidInputIsRefusedWithoutPAM(_ user: String, _ password: String) async {
        let pamCalls = Mutex(0)
        let minimum = Duration.milliseconds(300)
        let authenticator = PAMAuthenticator(
            service: "mailhost-test-never-opened",
            minimumFailureTime: minimum,
            willRunPAM: { pamCalls.withLock { $0 += 1 } }
        )
        let started = ContinuousClock.now
        let outcome = await authenticator.authenticate(user: user, password: password)
        let elapsed = ContinuousClock.now - started
        #expect(outcome == .failure(.badCredentials))
        #expect(elapsed >= minimum)
        let calls = pamCalls.withLock { $0 }
        #expect(calls == 0)
    }
}
