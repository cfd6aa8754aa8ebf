import Metrics

/// swift-metrics instruments of the IMAP side (DESIGN.md §8). Whatever backend the process bootstraps (Prometheus
/// in `mailhost`) receives them; without one they cost nothing.
enum SessionMetrics {
    static let connectionsTotal = Counter(label: "imap_connections_total")
    static let connectionsOpen = Meter(label: "imap_connections")

    static func sessions(_ state: Session.State) -> Meter {
        let name =
            switch state {
            case .notAuthenticated: "not_authenticated"
            case .authenticated: "authenticated"
            case .selected: "selected"
            case .logout: "logout"
            }
        return Meter(label: "imap_sessions", dimensions: [("state", name)])
    }

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
        Timer(label: "imap_command_duration_seconds", dimensions: [("command", name), ("result", result)])
            .recordNanoseconds(duration.nanoseconds)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
