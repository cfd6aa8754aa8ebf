import Metrics
import Synchronization

/// How much memory the messages being received and stored may take in this process, all connections together
/// (docs/limits.md). An APPEND literal is checked when it is announced and reserves its share as it arrives, as an
/// LMTP message does; past the budget the upload is refused with a temporary error (`NO [LIMIT]`, `452 4.3.1`), so
/// that many concurrent large uploads cannot take the process's memory, however many connections send them. The
/// metric `mailhost_upload_memory_bytes` is what is reserved now.
public final class MessageBudget: Sendable {
    /// Memory one message of n bytes takes, as a multiple of n, while it is received, parsed (search text) and bound
    /// into the INSERT. Measured: a 61 MiB APPEND peaked at 5.6 times its size.
    public static let costFactor = 6

    public let capacity: Int
    private let used = Mutex(0)

    public init(capacity: Int) { self.capacity = capacity }

    /// Bytes reserved now.
    public var inUse: Int { used.withLock { $0 } }

    /// Reserves the memory of a message of `messageBytes`; nil when the budget cannot take it now.
    public func reserve(messageBytes: Int) -> Reservation? {
        let cost = Self.cost(messageBytes)
        guard take(cost) else { return nil }
        return Reservation(budget: self, bytes: cost)
    }

    /// Whether a message of `messageBytes` would fit now (its memory is reserved as it arrives).
    public func couldReserve(messageBytes: Int) -> Bool {
        let cost = Self.cost(messageBytes)
        return used.withLock { cost <= capacity - $0 }
    }

    public static func cost(_ messageBytes: Int) -> Int {
        let (cost, overflow) = messageBytes.multipliedReportingOverflow(by: costFactor)
        return overflow ? Int.max : cost
    }

    private static let meter = Meter(label: "mailhost_upload_memory_bytes")

    fileprivate func take(_ bytes: Int) -> Bool {
        used.withLock { used in
            guard bytes <= capacity - used else { return false }
            used += bytes
            Self.meter.set(used)
            return true
        }
    }

    fileprivate func give(_ bytes: Int) {
        used.withLock { used in
            used -= bytes
            Self.meter.set(used)
        }
    }

    /// Memory held for one message; given back by `release()` or when the last reference goes.
    public final class Reservation: Sendable, Equatable {
        private let budget: MessageBudget
        private let bytes: Mutex<Int>

        fileprivate init(budget: MessageBudget, bytes: Int) {
            self.budget = budget
            self.bytes = Mutex(bytes)
        }

        /// Reserves room for `messageBytes` more (a message arriving piece by piece); false when over the budget.
        public func grow(messageBytes: Int) -> Bool {
            let cost = MessageBudget.cost(messageBytes)
            guard budget.take(cost) else { return false }
            bytes.withLock { $0 += cost }
            return true
        }

        public func release() {
            let held = bytes.withLock { bytes in
                defer { bytes = 0 }
                return bytes
            }
            if held > 0 { budget.give(held) }
        }

        deinit { release() }

        public static func == (a: Reservation, b: Reservation) -> Bool { a === b }
    }
}
