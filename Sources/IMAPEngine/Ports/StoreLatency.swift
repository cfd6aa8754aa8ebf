import Metrics

/// Store latency by operation (DESIGN.md §8), the same series for every backend:
/// `mailhost_store_duration_seconds{operation,result}`, `operation` being the port method's name without its labels.
public enum StoreLatency {
    /// Records one call of `function` (a `#function` string) that began at `started`.
    public static func record(_ function: String, ok: Bool, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let (seconds, attoseconds) = elapsed.components
        let result = ok ? "ok" : "error"
        timers.timer(Key(function: function, ok: ok)) {
            Metrics.Timer(
                label: "mailhost_store_duration_seconds",
                dimensions: [("operation", String(function.prefix { $0 != "(" })), ("result", result)])
        }.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// A timer's key: no string is built per call.
    private struct Key: Hashable, Sendable {
        let function: String
        let ok: Bool
    }
    private static let timers = TimerCache<Key>()
}
