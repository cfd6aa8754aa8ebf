/// NOTIFY (RFC 5465 §8).
extension CommandParser {
    /// `notify = "NOTIFY" SP (notify-set / notify-none)`; nil for NONE.
    static func parseNotify(_ buffer: inout ParseBuffer) throws(ParseError) -> Command {
        try buffer.space()
        switch try buffer.keyword() {
        case "NONE":
            return .notify(nil)
        case "SET":
            try buffer.space()
            let status = buffer.takeKeyword("STATUS")
            if status { try buffer.space() }
            var groups: [NotifyGroup] = []
            repeat {
                groups.append(try parseNotifyGroup(&buffer))
                guard groups.count <= 100 else { throw ParseError("Too many event groups") }
            } while buffer.take(UInt8(ascii: " "))
            return .notify(NotifyCommand(status: status, groups: groups))
        default:
            throw ParseError("NOTIFY takes SET or NONE")
        }
    }

    /// `event-group = "(" filter-mailboxes SP events ")"`.
    static func parseNotifyGroup(_ buffer: inout ParseBuffer) throws(ParseError) -> NotifyGroup {
        try buffer.expect(UInt8(ascii: "("))
        let filter: NotifyGroup.Filter
        switch try buffer.keyword() {
        case "SELECTED": filter = .selected
        case "SELECTED-DELAYED": filter = .selectedDelayed
        case "INBOXES": filter = .inboxes
        case "PERSONAL": filter = .personal
        case "SUBSCRIBED": filter = .subscribed
        case "SUBTREE":
            try buffer.space()
            filter = .subtree(try parseMailboxes(&buffer))
        case "MAILBOXES":
            try buffer.space()
            filter = .mailboxes(try parseMailboxes(&buffer))
        case let other:
            throw ParseError("Unknown mailbox filter \(other.prefix(32))")
        }
        try buffer.space()
        var events = Set<NotifyEvent>()
        var attributes: [FetchAttribute]? = nil
        if !buffer.takeKeyword("NONE") {
            try buffer.expect(UInt8(ascii: "("))
            repeat {
                let name = try buffer.keyword()
                guard let event = NotifyEvent(rawValue: name) else {
                    throw ParseError("Unknown event \(name.prefix(32))")
                }
                if event == .messageNew, buffer.peek() == UInt8(ascii: " "), buffer.peek(1) == UInt8(ascii: "(") {
                    // `MessageNew (fetch-att …)`: what to FETCH for each new message.
                    buffer.advance()
                    try buffer.expect(UInt8(ascii: "("))
                    var list: [FetchAttribute] = []
                    repeat {
                        if !list.isEmpty { try buffer.space() }
                        list.append(contentsOf: try parseFetchAttribute(&buffer, allowMacros: false))
                        guard list.count <= 100 else { throw ParseError("Too many FETCH attributes") }
                    } while !buffer.take(UInt8(ascii: ")"))
                    attributes = list
                }
                events.insert(event)
            } while buffer.take(UInt8(ascii: " "))
            try buffer.expect(UInt8(ascii: ")"))
        }
        try buffer.expect(UInt8(ascii: ")"))
        return NotifyGroup(filter: filter, events: events, newMessageAttributes: attributes)
    }

    /// `one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"`.
    static func parseMailboxes(_ buffer: inout ParseBuffer) throws(ParseError) -> [MailboxArgument] {
        guard buffer.take(UInt8(ascii: "(")) else { return [try parseMailbox(&buffer)] }
        var names: [MailboxArgument] = []
        repeat {
            names.append(try parseMailbox(&buffer))
            guard names.count <= 1000 else { throw ParseError("Too many mailboxes") }
        } while buffer.take(UInt8(ascii: " "))
        try buffer.expect(UInt8(ascii: ")"))
        return names
    }
}
