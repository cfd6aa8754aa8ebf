import Logging

/// CAPABILITY, LOGOUT, ID and ENABLE (RFC 9051 §6.1, §6.3.1; RFC 2971; RFC 5161).
extension Session {
    /// RFC 9051 §6.1.1.
    func handleCapability() async throws -> Completion {
        try await out.sendLine("* CAPABILITY " + capabilities.joined(separator: " "))
        return Completion("CAPABILITY completed")
    }

    /// RFC 9051 §6.1.3: BYE first, then the tagged OK, then close.
    func handleLogout() async throws -> Completion {
        try await out.sendLine("* BYE Logging out")
        state = .logout
        return Completion("LOGOUT completed")
    }

    /// RFC 2971: the client's fields are logged, the server answers with its own.
    func handleID(_ fields: [IDField]?) async throws -> Completion {
        if let fields, !fields.isEmpty {
            let summary = fields.prefix(8).map { "\($0.key)=\($0.value ?? "NIL")" }.joined(separator: " ")
            logger.debug("client id", metadata: ["imap.id": "\(summary.prefix(256))"])
        }
        try await out.sendLine(
            "* ID (\"name\" \"MailHost\" \"vendor\" \"MailHost\" \"support-url\" \"https://mailhost.invalid\")")
        return Completion("ID completed")
    }

    /// RFC 5161 §3.1, RFC 9051 §6.3.1: only capabilities that change behaviour are enabled; others are ignored.
    /// QRESYNC implies CONDSTORE (RFC 7162 §3.2.3); each is listed once, the first time it is enabled.
    func handleEnable(_ names: [String]) async throws -> Completion {
        var enabled: [String] = []
        for name in names {
            switch name {
            case "IMAP4REV2" where !rev2:
                rev2 = true
                enabled.append("IMAP4rev2")
            case "CONDSTORE" where !condstore:
                enableCondstore()
                enabled.append("CONDSTORE")
            case "UTF8=ACCEPT" where !utf8Accept:
                utf8Accept = true
                enabled.append("UTF8=ACCEPT")
            case "QRESYNC" where !qresync:
                qresync = true
                enableCondstore()
                enabled.append("QRESYNC")
            default: break
            }
        }
        try await out.sendLine("* ENABLED" + enabled.map { " " + $0 }.joined())
        return Completion("ENABLE completed")
    }

    /// The first CONDSTORE enabling command (RFC 7162 §3.1): with a mailbox selected, its HIGHESTMODSEQ is reported
    /// now (the OK untagged response is sent by the caller's sync, from the view).
    func enableCondstore() {
        guard !condstore else { return }
        condstore = true
        if view != nil { pendingHighestModSeq = true }
    }

    /// RFC 2342, RFC 9051 §6.3.10: one personal namespace with "/" as separator.
    func handleNamespace() async throws -> Completion {
        try await out.sendLine("* NAMESPACE ((\"\" \"/\")) NIL NIL")
        return Completion("NAMESPACE completed")
    }
}
