/// NOTIFY (RFC 5465 §3, §6): which events the client wants, for which mailboxes.
public struct NotifyCommand: Hashable, Sendable {
    /// STATUS indicator: a STATUS response for every watched mailbox before the tagged OK.
    public var status: Bool
    public var groups: [NotifyGroup]
    public init(status: Bool, groups: [NotifyGroup]) {
        self.status = status
        self.groups = groups
    }
}

public struct NotifyGroup: Hashable, Sendable {
    public enum Filter: Hashable, Sendable {
        case selected, selectedDelayed, inboxes, personal, subscribed
        case subtree([MailboxArgument]), mailboxes([MailboxArgument])
    }
    public var filter: Filter
    /// Empty: NONE.
    public var events: Set<NotifyEvent>
    /// `MessageNew (fetch-att …)`: what to FETCH for each new message in the selected mailbox (RFC 5465 §5.2).
    public var newMessageAttributes: [FetchAttribute]?
    public init(filter: Filter, events: Set<NotifyEvent>, newMessageAttributes: [FetchAttribute]? = nil) {
        self.filter = filter
        self.events = events
        self.newMessageAttributes = newMessageAttributes
    }
}

/// RFC 5465 §5 event names (upper-cased on the wire here; they are case-insensitive).
public enum NotifyEvent: String, Hashable, Sendable {
    case messageNew = "MESSAGENEW", messageExpunge = "MESSAGEEXPUNGE", flagChange = "FLAGCHANGE"
    case annotationChange = "ANNOTATIONCHANGE", mailboxName = "MAILBOXNAME", subscriptionChange = "SUBSCRIPTIONCHANGE"
    case mailboxMetadataChange = "MAILBOXMETADATACHANGE", serverMetadataChange = "SERVERMETADATACHANGE"

    /// The events MailHost notifies (BADEVENT lists them).
    public static let supported: [String] = [
        "MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange", "MailboxMetadataChange",
        "ServerMetadataChange",
    ]
    var isSupported: Bool { self != .annotationChange }
    /// Events about messages: the only ones SELECTED and SELECTED-DELAYED take (RFC 5465 §6.1).
    var isMessageEvent: Bool {
        switch self {
        case .messageNew, .messageExpunge, .flagChange, .annotationChange: true
        case .mailboxName, .subscriptionChange, .mailboxMetadataChange, .serverMetadataChange: false
        }
    }
}
