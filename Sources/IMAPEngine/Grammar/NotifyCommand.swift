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
    public init(filter: Filter, events: Set<NotifyEvent>) {
        self.filter = filter
        self.events = events
    }
}

/// RFC 5465 §5 event names (upper-cased on the wire here; they are case-insensitive).
public enum NotifyEvent: String, Hashable, Sendable {
    case messageNew = "MESSAGENEW", messageExpunge = "MESSAGEEXPUNGE", flagChange = "FLAGCHANGE"
    case annotationChange = "ANNOTATIONCHANGE", mailboxName = "MAILBOXNAME", subscriptionChange = "SUBSCRIPTIONCHANGE"
    case mailboxMetadataChange = "MAILBOXMETADATACHANGE", serverMetadataChange = "SERVERMETADATACHANGE"
    /// MessageNew with FETCH attributes (RFC 5465 §5.2), which MailHost does not offer.
    case messageNewWithAttributes = "MESSAGENEW (…)"

    /// The events MailHost notifies (BADEVENT lists them).
    public static let supported: [String] = ["MessageNew", "MessageExpunge", "FlagChange"]
    var isSupported: Bool { self == .messageNew || self == .messageExpunge || self == .flagChange }
}
