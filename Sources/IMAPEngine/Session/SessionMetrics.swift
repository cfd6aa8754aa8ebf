import Metrics

/// swift-metrics instruments of the IMAP side (DESIGN.md §8). Whatever backend the process bootstraps (Prometheus
/// in `mailhost`) receives them; without one they cost nothing.
enum SessionMetrics {
    static let connectionsTotal = Counter(label: "imap_connections_total")
    static let connectionsOpen = Meter(label: "imap_connections")

    static func sessions(_ state: Session.State) -> Meter {
        switch state {
        case .notAuthenticated: notAuthenticated
        case .authenticated: authenticated
        case .selected: selected
        case .logout: loggingOut
        }
    }

    // Made once: making a metric goes through the backend's registry (see `TimerCache`).
    private static let notAuthenticated = Meter(label: "imap_sessions", dimensions: [("state", "not_authenticated")])
    private static let authenticated = Meter(label: "imap_sessions", dimensions: [("state", "authenticated")])
    private static let selected = Meter(label: "imap_sessions", dimensions: [("state", "selected")])
    private static let loggingOut = Meter(label: "imap_sessions", dimensions: [("state", "logout")])
    /// Keyed by command and result: no string is built per command.
    private struct CommandKey: Hashable, Sendable {
        let command: String
        let result: String
    }
    private static let commandTimers = TimerCache<CommandKey>()

    static func connectionOpened() {
        connectionsTotal.increment()
        connectionsOpen.increment()
    }

    static func enter(_ state: Session.State) {
        sessions(state).increment()
    }

    static func connectionClosed() {
        connectionsOpen.decrement()
    }

    static func move(from old: Session.State, to new: Session.State) {
        sessions(old).decrement()
        sessions(new).increment()
    }

    static func leave(_ state: Session.State) {
        sessions(state).decrement()
    }

    static func login(_ result: String) {
        Counter(label: "imap_logins_total", dimensions: [("result", result)]).increment()
    }

    static func command(_ name: String, result: String, duration: Duration) {
        commandTimers.timer(CommandKey(command: name, result: result)) {
            Timer(label: "imap_command_duration_seconds", dimensions: [("command", name), ("result", result)])
        }.recordNanoseconds(duration.nanoseconds)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
