/// A SEARCH criterion (RFC 9051 §6.4.4 `search-key`). A parenthesised list becomes `.and`.
public indirect enum SearchKey: Hashable, Sendable {
    case all
    case answered, deleted, draft, flagged, seen, recent, new, old
    case unanswered, undeleted, undraft, unflagged, unseen
    case keyword(String), unkeyword(String)
    case bcc(String), cc(String), from(String), to(String), subject(String), body(String), text(String)
    case header(String, String)
    case before(IMAPDate), on(IMAPDate), since(IMAPDate)
    case sentBefore(IMAPDate), sentOn(IMAPDate), sentSince(IMAPDate)
    case larger(Int64), smaller(Int64)
    case uid(NumberSet)
    /// RFC 7162 §3.1.5 `MODSEQ [entry-name entry-type] n`: messages whose modseq is at least n (the entry is
    /// accepted and ignored: flags have no modseq of their own here).
    case modSeq(ModSeq)
    /// RFC 5032 WITHIN: internal date more than / at most this many seconds before now.
    case older(Int64), younger(Int64)
    /// RFC 8474 §6: messages with this EMAILID or THREADID.
    case emailID(String), threadID(String)
    /// RFC 8514: the save date's day, and SAVEDATESUPPORTED (every mailbox has save dates).
    case savedBefore(IMAPDate), savedOn(IMAPDate), savedSince(IMAPDate), saveDateSupported
    case sequence(NumberSet)
    case not(SearchKey)
    case or(SearchKey, SearchKey)
    case and([SearchKey])
}

/// What ESEARCH should return (RFC 4731, RFC 9051 §6.4.4.1).
public struct SearchReturnOptions: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let min = SearchReturnOptions(rawValue: 1)
    public static let max = SearchReturnOptions(rawValue: 2)
    public static let all = SearchReturnOptions(rawValue: 4)
    public static let count = SearchReturnOptions(rawValue: 8)
    /// RFC 5182 SEARCHRES.
    public static let save = SearchReturnOptions(rawValue: 16)
    /// RFC 5267 §4.3: notify changes to the result (ADDTO/REMOVEFROM) until CANCELUPDATE or the mailbox is left.
    public static let update = SearchReturnOptions(rawValue: 32)
    /// RFC 5267 §4.4: the results at these positions (`SearchCommand.partial` / `SortCommand.partial`).
    public static let partial = SearchReturnOptions(rawValue: 64)
}

/// `RETURN (…)` parsed: the options, and PARTIAL's range (positions, low to high).
public struct SearchReturn: Hashable, Sendable {
    public var options: SearchReturnOptions
    public var partial: ClosedRange<UInt32>?
}

/// SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO, RFC 5267 ESORT return options).
public struct SortCommand: Hashable, Sendable {
    public var returnOptions: SearchReturnOptions?
    public var criteria: [SortCriterion]
    public var charset: String
    public var key: SearchKey
    /// RFC 5267 PARTIAL: the positions asked for.
    public var partial: ClosedRange<UInt32>?
    public init(
        returnOptions: SearchReturnOptions?, criteria: [SortCriterion], charset: String, key: SearchKey,
        partial: ClosedRange<UInt32>? = nil
    ) {
        self.partial = partial
        self.returnOptions = returnOptions
        self.criteria = criteria
        self.charset = charset
        self.key = key
    }
}

/// THREAD (RFC 5256 §3): `THREAD algorithm charset search-criteria`.
public struct ThreadCommand: Hashable, Sendable {
    public enum Algorithm: String, Hashable, Sendable {
        case orderedSubject = "ORDEREDSUBJECT", references = "REFERENCES"
        /// REFERENCES without gathering by subject, threads ordered by their latest message (THREAD=REFS, as
        /// Dovecot offers it from draft-ietf-morg-inthread).
        case refs = "REFS"
    }
    public var algorithm: Algorithm
    public var charset: String
    public var key: SearchKey
    public init(algorithm: Algorithm, charset: String, key: SearchKey) {
        self.algorithm = algorithm
        self.charset = charset
        self.key = key
    }
}

public struct SearchCommand: Hashable, Sendable {
    /// nil: plain SEARCH (an untagged SEARCH, or ESEARCH ALL under IMAP4rev2); otherwise `RETURN (…)`, where an empty
    /// list means ALL (RFC 4731 §3.1).
    public var returnOptions: SearchReturnOptions?
    public var charset: String?
    public var key: SearchKey
    /// RFC 5267 PARTIAL: the positions asked for.
    public var partial: ClosedRange<UInt32>?

    public init(
        returnOptions: SearchReturnOptions?, charset: String?, key: SearchKey, partial: ClosedRange<UInt32>? = nil
    ) {
        self.partial = partial
        self.returnOptions = returnOptions
        self.charset = charset
        self.key = key
    }
}
