/// An error a command handler throws; `Dispatch` is the only place that turns it into wire text (STYLE.md §6).
enum IMAPError: Error, Sendable, Equatable {
    /// Malformed, or not valid in this state: `tag BAD [code] text`.
    case bad(ResponseCode? = nil, String)
    /// Valid but refused: `tag NO [code] text`.
    case no(ResponseCode? = nil, String)
    /// Unrecoverable for the session: `* BYE text`, then close.
    case bye(String)

    static func bad(_ text: String) -> IMAPError { .bad(nil, text) }
    static func no(_ text: String) -> IMAPError { .no(nil, text) }

    /// The one mapping from store errors to IMAP responses (STYLE.md §6).
    static func from(_ error: StoreError) -> IMAPError {
        switch error {
        case .mailboxNotFound: .no(.nonexistent, "Mailbox doesn't exist")
        case .alreadyExists: .no(.alreadyExists, "Mailbox already exists")
        case .cannot(let reason): .no(.cannot, reason)
        case .overQuota: .no(.overQuota, "Quota exceeded")
        case .accountNotFound: .no(.nonexistent, "Account doesn't exist")
        case .unavailable: .no(.unavailable, "Mail storage is temporarily unavailable, try again later")
        case .outcomeUnknown:
            .bye("[UNAVAILABLE] Lost the mail storage during the last command; its outcome is unknown, reconnect")
        case .internal: .no(.serverBug, "Internal error occurred; refer to server log for more information")
        }
    }
}

/// Response codes of RFC 9051 §7.1 (and RFC 4315, RFC 7889) that MailHost sends.
enum ResponseCode: Sendable, Equatable {
    case alert, parse, readOnly, readWrite, tryCreate, authenticationFailed, authorizationFailed, unavailable, cannot,
        limit
    case overQuota, alreadyExists, nonexistent, serverBug, clientBug, expungeIssued, tooBig, noPerm, inUse, closed
    case privacyRequired, unknownCTE
    /// RFC 6154 §3: CREATE refused because of its special-use attribute.
    case useAttr
    /// RFC 4978 §3: COMPRESS when compression is already on.
    case compressionActive
    /// RFC 8474 §4.1.
    case mailboxID(String)
    /// RFC 5464: `METADATA LONGENTRIES n`, `METADATA MAXSIZE n`, `METADATA TOOMANY` (the text after "METADATA ").
    case metadata(String)
    /// RFC 5465 §3: the events the server notifies.
    case badEvent([String])
    /// RFC 5465 §5.8: NOTIFY turned off because the session fell too far behind.
    case notificationOverflow
    /// RFC 4469 §5: a CATENATE URL that cannot be used (the URL as the client sent it, made safe for resp-text).
    case badURL(String)
    case capability([String])
    case permanentFlags([String])
    case uidNext(UID)
    case uidValidity(UIDValidity)
    case unseen(SequenceNumber)
    case highestModSeq(ModSeq)
    /// RFC 7162 §3.1.3: the messages (sequence numbers, or UIDs for UID STORE) a conditional STORE left alone.
    case modified(UIDRanges)
    case appendUID(UIDValidity, UID)
    /// RFC 4315 §3 for MULTIAPPEND: the UIDs of every message, as a set.
    case appendUIDs(UIDValidity, UIDRanges)
    case copyUID(UIDValidity, UIDRanges, UIDRanges)
    case badCharset([String])

    var wire: String {
        switch self {
        case .alert: "ALERT"
        case .parse: "PARSE"
        case .readOnly: "READ-ONLY"
        case .readWrite: "READ-WRITE"
        case .tryCreate: "TRYCREATE"
        case .authenticationFailed: "AUTHENTICATIONFAILED"
        case .authorizationFailed: "AUTHORIZATIONFAILED"
        case .unavailable: "UNAVAILABLE"
        case .cannot: "CANNOT"
        case .limit: "LIMIT"
        case .overQuota: "OVERQUOTA"
        case .alreadyExists: "ALREADYEXISTS"
        case .nonexistent: "NONEXISTENT"
        case .serverBug: "SERVERBUG"
        case .clientBug: "CLIENTBUG"
        case .expungeIssued: "EXPUNGEISSUED"
        case .tooBig: "TOOBIG"
        case .useAttr: "USEATTR"
        case .compressionActive: "COMPRESSIONACTIVE"
        case .mailboxID(let id): "MAILBOXID (\(id))"
        case .metadata(let detail): "METADATA " + detail
        case .badEvent(let events): "BADEVENT (" + events.joined(separator: " ") + ")"
        case .notificationOverflow: "NOTIFICATIONOVERFLOW"
        case .badURL(let url):
            "BADURL "
                + String(
                    url.unicodeScalars.prefix(200).filter { $0 != "]" && $0.value >= 0x20 && $0.value != 0x7F }
                        .map(Character.init))
        case .noPerm: "NOPERM"
        case .inUse: "INUSE"
        case .closed: "CLOSED"
        case .privacyRequired: "PRIVACYREQUIRED"
        case .unknownCTE: "UNKNOWN-CTE"
        case .capability(let caps): "CAPABILITY " + caps.joined(separator: " ")
        case .permanentFlags(let flags): "PERMANENTFLAGS (" + flags.joined(separator: " ") + ")"
        case .uidNext(let uid): "UIDNEXT \(uid)"
        case .uidValidity(let v): "UIDVALIDITY \(v)"
        case .unseen(let seq): "UNSEEN \(seq)"
        case .highestModSeq(let m): "HIGHESTMODSEQ \(m)"
        case .modified(let set): "MODIFIED \(set)"
        case .appendUID(let v, let uid): "APPENDUID \(v) \(uid)"
        case .appendUIDs(let v, let uids): "APPENDUID \(v) \(uids)"
        case .copyUID(let v, let from, let to): "COPYUID \(v) \(from) \(to)"
        case .badCharset(let names): "BADCHARSET (" + names.joined(separator: " ") + ")"
        }
    }
}

/// Untagged responses the mailbox view produces.
enum Untagged: Sendable, Equatable {
    case exists(Int)
    case recent(Int)
    case expunge(SequenceNumber)
    /// A message's flags changed; `modSeq` is reported once CONDSTORE is enabled (RFC 7162 §3.1.4.1).
    case fetchFlags(SequenceNumber, uid: UID, flags: MessageFlags, recent: Bool, modSeq: ModSeq? = nil)
    case flags(keywords: [String])
    case permanentFlags(keywords: [String])
    /// RFC 7162 §3.2.10: expunged UIDs once QRESYNC is enabled; `earlier` for messages the client may not know.
    case vanished(UIDRanges, earlier: Bool)
    /// `* OK [HIGHESTMODSEQ n]` (RFC 7162 §3.1.2.1, §3.2).
    case highestModSeq(ModSeq)

    var isExists: Bool {
        if case .exists = self { return true }
        return false
    }
}
