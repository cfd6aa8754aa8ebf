import Foundation
import GRDB
import IMAPEngine
import Logging

extension SQLiteMailStore {
    public func search(account: AccountID, mailbox: MailboxID, query: SearchQuery, maxUID: UID, logger: Logger)
        async throws(StoreError) -> [UID]
    {
        let (sql, arguments) = Self.searchStatement(
            account: account, mailbox: mailbox, query: query, maxUID: maxUID, columns: "m.uid", order: "m.uid")
        return try await read(logger) { db in
            try Self.integers(db, sql, arguments, cached: false).map { UID(UInt32(truncatingIfNeeded: $0)) }
        }
    }

    public func sort(
        account: AccountID, mailbox: MailboxID, query: SearchQuery, criteria: [SortCriterion], maxUID: UID,
        logger: Logger
    ) async throws(StoreError) -> [UID] {
        var order: [String] = []
        for criterion in criteria {
            // Keys are i;ascii-casemapped text compared as bytes: SQLite's default BINARY collation.
            let expression =
                switch criterion.key {
                case .arrival: "m.internal_date"
                case .date: "coalesce(c.sent_time, m.internal_date)"
                case .size: "m.size"
                case .subject: "coalesce(c.sort_subject, '')"
                case .from: "coalesce(c.sort_from, '')"
                case .to: "coalesce(c.sort_to, '')"
                case .cc: "coalesce(c.sort_cc, '')"
                case .displayFrom: "coalesce(c.sort_display_from, '')"
                case .displayTo: "coalesce(c.sort_display_to, '')"
                }
            order.append(expression + (criterion.reverse ? " DESC" : " ASC"))
        }
        order.append("m.uid")
        let needsContent = criteria.contains { $0.key != .arrival && $0.key != .size }
        let (sql, arguments) = Self.searchStatement(
            account: account, mailbox: mailbox, query: query, maxUID: maxUID, columns: "m.uid",
            order: order.joined(separator: ", "),
            needsContent: needsContent)
        return try await read(logger) { db in
            try Self.integers(db, sql, arguments, cached: false).map { UID(UInt32(truncatingIfNeeded: $0)) }
        }
    }

    public func messageKeys(account: AccountID, mailbox: MailboxID, uids: UIDRanges, logger: Logger)
        async throws(StoreError) -> [MessageKeys]
    {
        guard let last = uids.ranges.last?.upperBound else { return [] }
        let (sql, arguments) = Self.searchStatement(
            account: account, mailbox: mailbox, query: .uids(uids), maxUID: UID(last),
            columns: """
                m.uid, coalesce(c.sent_time, m.internal_date), m.internal_date, m.size, coalesce(c.thread_reply, 0),
                c.keys_version IS NOT NULL, coalesce(c.sort_subject, ''), c.thread_id, coalesce(c.thread_refs, '')
                """, order: "m.uid", needsContent: true)
        return try await read(logger) { db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                let id: String? = row[7]
                let references: String = row[8]
                return MessageKeys(
                    uid: UID(UInt32(truncatingIfNeeded: row[0] as Int64)),
                    thread: Threading.Message(
                        messageID: id.flatMap { $0.isEmpty ? nil : $0 },
                        references: references.split(separator: " ").map(String.init), subject: row[6],
                        isReplyOrForward: row[4], date: row[1]),
                    arrival: row[2], size: row[3], isFinal: row[5])
            }
        }
    }

    /// `SELECT <columns> FROM messages m [JOIN contents c] WHERE <the query> ORDER BY <order>`, every value an
    /// argument.
    static func searchStatement(
        account: AccountID, mailbox: MailboxID, query: SearchQuery, maxUID: UID, columns: String, order: String,
        needsContent: Bool = false
    ) -> (String, StatementArguments) {
        var compiler = SQLiteSearchCompiler()
        compiler.arguments += [mailbox.rawValue, account.rawValue, Int64(maxUID.rawValue)]
        let condition = compiler.compile(query)
        let join = compiler.needsContent || needsContent ? " JOIN contents c ON c.content_id = m.content_id" : ""
        return (
            "SELECT \(columns) FROM messages m\(join) "
                + "WHERE m.mailbox_id = ? AND m.account_id = ? AND m.uid <= ? AND (\(condition)) "
                + "ORDER BY \(order)",
            compiler.arguments
        )
    }

    /// `mh_header_match(headers, name, value)`: whether the decoded, lower-cased header text has a line
    /// `name: …value…` (SEARCH HEADER; `name` and `value` lower-cased by the caller).
    static let headerMatch = DatabaseFunction("mh_header_match", argumentCount: 3, pure: true) { values in
        guard let headers = String.fromDatabaseValue(values[0]), let name = String.fromDatabaseValue(values[1]),
            let value = String.fromDatabaseValue(values[2])
        else { return false }
        let prefix = name + ":"
        for line in headers.split(separator: "\n", omittingEmptySubsequences: true) where line.hasPrefix(prefix) {
            if value.isEmpty || line.dropFirst(prefix.count).contains(value) { return true }
        }
        return false
    }
}

/// Compiles a `SearchQuery` into a parameterised SQLite condition over `messages m` (and `contents c`). Every value
/// from the client is an argument; only fixed SQL text is generated. Text keys are substring matches on the
/// lower-cased text kept at ingest, through the trigram FTS5 table.
struct SQLiteSearchCompiler {
    var arguments = StatementArguments()
    private(set) var needsContent = false

    private mutating func bind(_ value: some DatabaseValueConvertible) -> String {
        arguments += [value]
        return "?"
    }

    /// The contents whose `column` contains `text` (case-insensitive): from the trigram index, and from the text
    /// not indexed yet (`contents_text`, scanned).
    private mutating func contains(_ column: String, _ text: String) -> String {
        let lowered = text.lowercased()
        // FTS5 answers LIKE from its trigram index only without an ESCAPE clause: text with a wildcard character
        // in it is escaped and matched by a scan of the table instead.
        let escape = lowered.contains(where: { $0 == "%" || $0 == "_" || $0 == "\\" })
        let pattern = "%" + (escape ? SQLiteMailStore.likeEscape(lowered) : lowered) + "%"
        let clause = escape ? " ESCAPE '\\'" : ""
        return "(m.content_id IN (SELECT rowid FROM contents_search WHERE \(column) LIKE \(bind(pattern))\(clause))"
            + " OR m.content_id IN (SELECT content_id FROM contents_text WHERE \(column) LIKE \(bind(pattern))"
            + "\(clause)))"
    }

    mutating func compile(_ query: SearchQuery) -> String {
        switch query {
        case .all:
            return "1"
        case .none:
            return "0"
        case .systemFlag(let flag, let present):
            return "(m.flags & \(flag.rawValue)) \(present ? "<>" : "=") 0"
        case .keyword(let name, let present):
            return "\(present ? "" : "NOT ")EXISTS (SELECT 1 FROM json_each(m.keywords) WHERE value = \(bind(name)))"
        case .uids(let ranges):
            if ranges.isEmpty { return "0" }
            return "("
                + ranges.ranges.map {
                    "m.uid BETWEEN \(bind(Int64($0.lowerBound))) AND \(bind(Int64($0.upperBound)))"
                }.joined(separator: " OR ") + ")"
        case .address(let field, let text):
            return contains("search_\(field.rawValue)", text)
        case .subject(let text):
            return contains("search_subject", text)
        case .header(let name, let value):
            let (lowerName, lowerValue) = (name.lowercased(), value.lowercased())
            return
                "(m.content_id IN (SELECT rowid FROM contents_search WHERE mh_header_match(search_headers, "
                + "\(bind(lowerName)), \(bind(lowerValue)))) OR m.content_id IN (SELECT content_id FROM contents_text "
                + "WHERE mh_header_match(search_headers, \(bind(lowerName)), \(bind(lowerValue)))))"
        case .body(let text):
            return contains("search_body", text)
        case .text(let text):
            return "(\(contains("search_headers", text)) OR \(contains("search_body", text)))"
        case .internalDate(let comparison, let date):
            return "\(Self.day("m.internal_date + m.internal_zone * 60")) \(Self.operator(comparison)) "
                + bind(date.dayNumber)
        case .sentDate(let comparison, let date):
            needsContent = true
            return "c.sent_day \(Self.operator(comparison)) \(bind(date.dayNumber))"
        case .larger(let size):
            return "m.size > \(bind(size))"
        case .smaller(let size):
            return "m.size < \(bind(size))"
        case .modSeq(let least):
            return "m.modseq >= \(bind(least.rawValue))"
        case .arrivedBefore(let instant):
            return "m.internal_date < \(bind(instant))"
        case .arrivedSince(let instant):
            return "m.internal_date >= \(bind(instant))"
        case .contentID(let id):
            return "m.content_id = \(bind(id))"
        case .saveDate(let comparison, let date):
            return "\(Self.day("m.saved_at")) \(Self.operator(comparison)) \(bind(date.dayNumber))"
        case .not(let inner):
            return "NOT (\(compile(inner)))"
        case .or(let a, let b):
            return "((\(compile(a))) OR (\(compile(b))))"
        case .and(let keys):
            if keys.isEmpty { return "1" }
            return keys.map { "(\(compile($0)))" }.joined(separator: " AND ")
        }
    }

    /// The day number (days since 1970, rounded down) of a seconds expression, negative ones included.
    static func day(_ seconds: String) -> String {
        "(((\(seconds)) - ((((\(seconds)) % 86400) + 86400) % 86400)) / 86400)"
    }

    static func `operator`(_ comparison: SearchQuery.DateComparison) -> String {
        switch comparison {
        case .before: "<"
        case .on: "="
        case .since: ">="
        }
    }
}
