import Synchronization

/// Connection limits shared by every listener of a process (DESIGN.md §7): in total, per client address before
/// login, per user and address after login. The client's address is the real one (PROXY protocol included).
public final class ConnectionRegistry: Sendable {
    public struct Limits: Sendable {
        public var total: Int
        public var perAddressBeforeLogin: Int
        public var perUserAndAddress: Int
        public init(total: Int = 5000, perAddressBeforeLogin: Int = 20, perUserAndAddress: Int = 20) {
            self.total = total
            self.perAddressBeforeLogin = perAddressBeforeLogin
            self.perUserAndAddress = perUserAndAddress
        }
    }

    private struct State {
        var total = 0
        var unauthenticated: [String: Int] = [:]
        var authenticated: [String: Int] = [:]
    }

    public let limits: Limits
    private let state = Mutex(State())

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Counts a new connection, or says why it is refused.
    func admit(address: String) -> String? {
        state.withLock { state in
            if state.total >= limits.total { return "Too many connections to this server" }
            if state.unauthenticated[address, default: 0] >= limits.perAddressBeforeLogin {
                return "Too many connections from your address"
            }
            state.total += 1
            state.unauthenticated[address, default: 0] += 1
            return nil
        }
    }

    /// Moves a connection to the authenticated count of `user`; false (nothing changed) past the per-user limit.
    func authenticate(address: String, user: String) -> Bool {
        state.withLock { state in
            let key = user + "\u{0}" + address
            if state.authenticated[key, default: 0] >= limits.perUserAndAddress { return false }
            state.authenticated[key, default: 0] += 1
            Self.decrement(&state.unauthenticated, address)
            return true
        }
    }

    /// Undoes `authenticate` when the login could not complete after all.
    func unauthenticate(address: String, user: String) {
        state.withLock { state in
            Self.decrement(&state.authenticated, user + "\u{0}" + address)
            state.unauthenticated[address, default: 0] += 1
        }
    }

    func release(address: String, user: String?) {
        state.withLock { state in
            state.total -= 1
            if let user {
                Self.decrement(&state.authenticated, user + "\u{0}" + address)
            } else {
                Self.decrement(&state.unauthenticated, address)
            }
        }
    }

    public var connectionCount: Int { state.withLock { $0.total } }

    private static func decrement(_ counts: inout [String: Int], _ key: String) {
        let value = counts[key, default: 0] - 1
        counts[key] = value > 0 ? value : nil
    }
}

/// Slows failed logins from one address (DESIGN.md §5): after the first failure each further one waits twice as
/// long as the one before, up to `cap`; an address is forgiven `window` after its last failure or at a success.
public final class LoginPenalty: Sendable {
    private struct Entry {
        var failures: Int
        var last: ContinuousClock.Instant
    }

    let base: Duration
    let cap: Duration
    let window: Duration
    private static let maxTracked = 100_000
    private let entries = Mutex<[String: Entry]>([:])

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(15), window: Duration = .seconds(900)) {
        self.base = base
        self.cap = cap
        self.window = window
    }

    /// Records a failure and returns how long to wait before answering it.
    func recordFailure(address: String) -> Duration {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            if entries.count >= Self.maxTracked {
                entries = entries.filter { now - $0.value.last < window }
                if entries.count >= Self.maxTracked { entries.removeAll() }
            }
            var entry = entries[address] ?? Entry(failures: 0, last: now)
            if now - entry.last >= window { entry.failures = 0 }
            entry.failures += 1
            entry.last = now
            entries[address] = entry
            guard entry.failures > 1 else { return .zero }
            let exponent = min(entry.failures - 2, 16)
            return min(base * (1 << exponent), cap)
        }
    }

    func recordSuccess(address: String) {
        _ = entries.withLock { $0.removeValue(forKey: address) }
    }
}
