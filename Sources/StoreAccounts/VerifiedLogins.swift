import Crypto
import Foundation
import Synchronization

/// Logins whose password this process has already checked against their stored hash, so that the next LOGIN with
/// the same password skips crypt(3).
///
/// crypt(3) is the dearest part of a login by far: 2.7 ms of CPU for sha512-crypt on the bench machine, tens of
/// milliseconds for yescrypt, where the rest of LOGIN costs a tenth of a millisecond. Clients log in over and over
/// (a new connection per folder, a reconnect after every sleep). Dovecot's auth cache does this only for a passdb that
/// returns no hash (PAM: it keeps a SHA1 of the password); a hash from its passdb is kept and checked with its scheme on
/// every login.
///
/// What is kept per login is an HMAC-SHA-256, under a key made at random when the process starts and never stored,
/// of the login, the stored hash and the password: never the password. A hit needs all three to match, and the
/// authenticator reads the stored hash and the disabled flag from the store on every login, so a new password or a
/// disabled account takes effect at once on every instance. Only successes go in: a wrong password always pays for
/// crypt(3), so the cache cannot be used to guess faster, and unauthenticated clients cannot fill it.
public final class VerifiedLogins: Sendable {
    private struct Entry {
        var digest: HashedAuthenticationCode<SHA256>
        var expires: ContinuousClock.Instant
    }

    private let key = SymmetricKey(size: .bits256)
    private let capacity: Int
    private let lifetime: Duration
    private struct State {
        var entries: [String: Entry] = [:]
        /// No entry expires before this (it may be earlier than the true first expiry, never later), so that a cache
        /// full of live logins is not scanned on every insert, only once something may have expired.
        var earliestExpiry: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let hitCount = Atomic<Int>(0)

    /// At most `capacity` logins, each kept for `lifetime` after its last crypt(3) check.
    public init(capacity: Int = 10_000, lifetime: Duration = .seconds(3600)) {
        self.capacity = max(0, capacity)
        self.lifetime = lifetime
    }

    /// How many logins are kept.
    public var count: Int { state.withLock { $0.entries.count } }

    /// How many checks were answered from the cache, without crypt(3).
    public var hits: Int { hitCount.load(ordering: .relaxed) }

    private func digest(login: String, storedHash: String, password: String) -> HashedAuthenticationCode<SHA256> {
        var hmac = HMAC<SHA256>(key: key)
        // Lengths first: no two different triples feed the same bytes.
        for part in [login, storedHash, password] {
            var length = UInt64(part.utf8.count).bigEndian
            withUnsafeBytes(of: &length) { hmac.update(data: $0) }
            hmac.update(data: Data(part.utf8))
        }
        return hmac.finalize()
    }

    /// Whether `password` for `login` was verified against this same `storedHash` within the lifetime.
    public func contains(login: String, storedHash: String, password: String) -> Bool {
        let now = ContinuousClock.now
        guard let entry = state.withLock({ $0.entries[login] }), entry.expires > now else { return false }
        let expected = digest(login: login, storedHash: storedHash, password: password)
        // HashedAuthenticationCode compares in constant time.
        guard entry.digest == expected else { return false }
        hitCount.add(1, ordering: .relaxed)
        return true
    }

    /// Records that crypt(3) accepted `password` for `login` against `storedHash`.
    public func insert(login: String, storedHash: String, password: String) {
        guard capacity > 0 else { return }
        let entry = Entry(
            digest: digest(login: login, storedHash: storedHash, password: password), expires: .now + lifetime)
        state.withLock { state in
            if state.entries[login] == nil, state.entries.count >= capacity {
                let now = ContinuousClock.now
                if state.earliestExpiry.map({ $0 <= now }) ?? true {
                    state.entries = state.entries.filter { $0.value.expires > now }
                    state.earliestExpiry = state.entries.values.lazy.map(\.expires).min()
                }
                // Still full of live logins: one makes room (which one does not matter for correctness; it only pays
                // for crypt(3) once more).
                if state.entries.count >= capacity, let any = state.entries.keys.first { state.entries[any] = nil }
            }
            state.entries[login] = entry
            state.earliestExpiry = min(state.earliestExpiry ?? entry.expires, entry.expires)
        }
    }
}
