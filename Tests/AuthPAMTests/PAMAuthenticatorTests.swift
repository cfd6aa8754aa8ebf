// Real-PAM tests: real libpam, real pam_unix, real system users. No mocks.
//
// CONTRACT with the CI script (it sets this up before `swift test`; the tests run as root):
// - MAILHOST_TEST_PAM_SERVICE names a PAM service: /etc/pam.d/$MAILHOST_TEST_PAM_SERVICE contains
//       auth    required pam_unix.so
//       account required pam_unix.so
// - system users exist with these passwords:
//       tim       password "timmy"
//       mhtest2   password "secret two"
//       mhlocked  password "locked1", account expired (`chage -E 0 mhlocked`)
// - the user "mhnosuchuser" does not exist.
// Setup used locally (as root; the users may stay on the machine):
//       for u in tim mhtest2 mhlocked; do id "$u" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$u"; done
//       printf '%s\n' 'tim:timmy' 'mhtest2:secret two' 'mhlocked:locked1' | chpasswd
//       chage -E 0 mhlocked
//       printf '%s\n' 'auth    required pam_unix.so' 'account required pam_unix.so' > /etc/pam.d/mailhost-test
//       MAILHOST_TEST_PAM_SERVICE=mailhost-test swift test
// When the variable is unset, every test in this file is skipped and Swift Testing prints
// "Suite ... skipped: MAILHOST_TEST_PAM_SERVICE is not set ..." (the marshalling tests in
// PAMConversationTests.swift still run).

import Synchronization
import Testing

@testable import AuthPAM

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

private let pamService: String? = {
    #if canImport(Glibc) || canImport(Musl)
        guard let value = getenv("MAILHOST_TEST_PAM_SERVICE") else { return nil }
        let service = String(cString: value)
        return service.isEmpty ? nil : service
    #else
        return nil
    #endif
}()

private func makeAuthenticator(
    minimumFailureTime: Duration = .milliseconds(200),
    willRunPAM: (@Sendable () -> Void)? = nil
) -> PAMAuthenticator {
    PAMAuthenticator(
        service: pamService ?? "unset",
        minimumFailureTime: minimumFailureTime,
        willRunPAM: willRunPAM
    )
}

/// The name the kernel keeps for the current thread (NIO names pool threads "SGLTN-TP-#n" / "TP-#n").
private func currentThreadName() -> String {
    let file = open("/proc/thread-self/comm", O_RDONLY)
    guard file >= 0 else { return "" }
    defer { close(file) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let count = read(file, &buffer, buffer.count)
    guard count > 0 else { return "" }
    return String(decoding: buffer.prefix(count).prefix { $0 != 0x0a }, as: UTF8.self)
}

@Suite(
    "PAM against real system users",
    // Skipped loudly, not silently passed: these need the service file and users described at the top of this file.
    .enabled(
        if: pamService != nil,
        "MAILHOST_TEST_PAM_SERVICE is not set; see the contract at the top of PAMAuthenticatorTests.swift"
    )
)
struct PAMAuthenticatorTests {
    @Test(arguments: [("tim", "timmy"), ("mhtest2", "secret two")])
    func correctPasswordSucceeds(_ user: String, _ password: String) async {
        let outcome = await makeAuthenticator().authenticate(user: user, password: password, remoteHost: "127.0.0.1")
        #expect(outcome == .success(user: user))
    }

    @Test(arguments: [("tim", "timmx"), ("tim", ""), ("tim", "TIMMY"), ("mhtest2", "secret"), ("mhlocked", "nope")])
    func wrongPasswordIsBadCredentials(_ user: String, _ password: String) async {
        let outcome = await makeAuthenticator().authenticate(user: user, password: password)
        #expect(outcome == .failure(.badCredentials))
    }

    @Test func unknownUserIsUnknownUser() async {
        let outcome = await makeAuthenticator().authenticate(user: "mhnosuchuser", password: "timmy")
        #expect(outcome == .failure(.unknownUser))
    }

    @Test func expiredAccountIsUnavailable() async {
        let outcome = await makeAuthenticator().authenticate(user: "mhlocked", password: "locked1")
        #expect(outcome == .failure(.accountUnavailable))
    }

    /// Only the lower bound is asserted: each failure kind takes at least the minimum failure time, so an
    /// unknown user (about 1 ms in PAM) cannot be told from a wrong password (about 40 ms) by timing.
    @Test(arguments: [
        ("mhnosuchuser", "timmy", PAMOutcome.failure(.unknownUser)),
        ("tim", "wrong", .failure(.badCredentials)),
        ("mhlocked", "locked1", .failure(.accountUnavailable)),
        ("", "timmy", .failure(.badCredentials)),
    ])
    func failuresTakeAtLeastTheMinimumTime(_ user: String, _ password: String, _ expected: PAMOutcome) async {
        let minimum = Duration.seconds(1)
        let authenticator = makeAuthenticator(minimumFailureTime: minimum)
        let started = ContinuousClock.now
        let outcome = await authenticator.authenticate(user: user, password: password)
        let elapsed = ContinuousClock.now - started
        #expect(outcome == expected)
        #expect(elapsed >= minimum, "\(user.isEmpty ? "<empty>" : user) failed after \(elapsed)")
    }

    @Test func twentyConcurrentMixedCallsGetTheirOwnAnswers() async {
        let cases: [(user: String, password: String, expected: PAMOutcome)] = [
            ("tim", "timmy", .success(user: "tim")),
            ("tim", "timmy!", .failure(.badCredentials)),
            ("mhtest2", "secret two", .success(user: "mhtest2")),
            ("mhtest2", "timmy", .failure(.badCredentials)),
            ("mhnosuchuser", "secret two", .failure(.unknownUser)),
            ("mhlocked", "locked1", .failure(.accountUnavailable)),
            ("tim", "secret two", .failure(.badCredentials)),
            ("mhtest2", "secret two", .success(user: "mhtest2")),
            ("tim", "timmy", .success(user: "tim")),
            ("tim\0", "timmy", .failure(.badCredentials)),
        ]
        let calls = (0..<20).map { cases[$0 % cases.count] }
        let authenticator = makeAuthenticator(minimumFailureTime: .milliseconds(100))
        let outcomes = await withTaskGroup(of: (Int, PAMOutcome).self) { group in
            for (index, call) in calls.enumerated() {
                group.addTask {
                    (index, await authenticator.authenticate(user: call.user, password: call.password))
                }
            }
            var outcomes = [PAMOutcome?](repeating: nil, count: calls.count)
            for await (index, outcome) in group {
                outcomes[index] = outcome
            }
            return outcomes
        }
        for (index, call) in calls.enumerated() {
            #expect(outcomes[index] == call.expected, "call \(index): \(call.user)")
        }
    }

    /// PAM runs on a NIO thread-pool thread, not on the thread of the task that asked.
    @Test func pamRunsOnAPoolThread() async {
        let pamThread = Mutex<(id: pthread_t, name: String)?>(nil)
        let authenticator = makeAuthenticator(willRunPAM: {
            pamThread.withLock { $0 = (pthread_self(), currentThreadName()) }
        })
        let callerThread = pthread_self()
        let outcome = await authenticator.authenticate(user: "tim", password: "timmy")
        #expect(outcome == .success(user: "tim"))
        let observed = pamThread.withLock { $0 }
        #expect(observed != nil)
        if let observed {
            #expect(pthread_equal(observed.id, callerThread) == 0)
            #expect(observed.name.contains("TP-#"), "PAM ran on thread \"\(observed.name)\"")
        }
    }
}
