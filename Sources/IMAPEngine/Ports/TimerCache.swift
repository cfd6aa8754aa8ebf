import Metrics
import Synchronization

/// Timers made once per key, then reused. Making a metric goes through the metrics backend every time (Prometheus:
/// its registry's lock, string keys, a dimension check); with the two timers of every command that was about a tenth
/// of mailhost's CPU on a run of SELECTs (issue 11). Keys must come from a small fixed set (command names, store
/// operations, results), as the metrics' own dimensions must; and the cache must be first used after the process
/// bootstraps its metrics backend (`mailhost serve` does that before anything else).
public final class TimerCache<Key: Hashable & Sendable>: Sendable {
    private let timers = Mutex<[Key: Metrics.Timer]>([:])

    public init() {}

    /// The timer of `key`, made by `make` the first time.
    public func timer(_ key: Key, make: () -> Metrics.Timer) -> Metrics.Timer {
        if let timer = timers.withLock({ $0[key] }) { return timer }
        let timer = make()
        timers.withLock { $0[key] = timer }
        return timer
    }
}
