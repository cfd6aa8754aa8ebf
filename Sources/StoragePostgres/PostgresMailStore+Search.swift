import IMAPEngine
import Logging
import PostgresNIO

extension PostgresMailStore {
    public func search(account: AccountID, mailbox: MailboxID, query: SearchQuery, maxUID: UID, logger: Logger)
        async throws(StoreError) -> [UID]
    {
        try await uids(
            Self.searchStatement(
                account: account, mailbox: mailbox, query: query, maxUID: maxUID, columns: Self.packedUIDs("m.uid")),
            logger: logger)
    }

    /// One bytea of 4-byte big-endian UIDs in `order`, instead of a row per message: PostgresNIO's per-row cost was
    /// most of the time of a SEARCH or SORT that matches 100,000 messages.
    static func packedUIDs(_ order: String) -> String {
        "coalesce(string_agg(int4send(m.uid::int4), ''::bytea ORDER BY \(order)), ''::bytea)"
    }

    /// `SELECT <columns> FROM messages m [JOIN contents c] WHERE <the query>`, every value a bind. The columns are one
    /// aggregate that carries its own order (`packedUIDs`, THREAD's packed keys): one row, no ORDER BY.
    /// `contents` is joined when the condition or the columns need it.
    static func searchStatement(
        account: AccountID, mailbox: MailboxID, query: SearchQuery, maxUID: UID, columns: String,
        needsContent: Bool = false
    ) -> PostgresQuery {
        var compiler = SearchCompiler()
        compiler.binds.append(account.rawValue)
        compiler.binds.append(mailbox.rawValue)
        compiler.binds.append(Int64(maxUID.rawValue))
        let condition = compiler.compile(query)
        let join =
            compiler.needsContent || needsContent
            ? " JOIN contents c ON c.account_id = m.account_id AND c.content_id = m.content_id" : ""
        let sql = """
            SELECT \(columns) FROM messages m\(join)
            WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid <= $3 AND (\(condition))
            """
        return PostgresQuery(unsafeSQL: sql, binds: compiler.binds)
    }

    /// The UIDs a statement selects as packed UIDs (`packedUIDs`), in its order, on the SEARCH pool.
    func uids(_ statement: PostgresQuery, logger: Logger) async throws(StoreError) -> [UID] {
        let client = self.searchClient
        return try await run(logger) {
            var result: [UID] = []
            let rows = try await client.query(statement, logger: logger)
            for try await packed in rows.decode(ByteBuffer.self) {
                var packed = packed
                result.reserveCapacity(packed.readableBytes / 4)
                while let uid = packed.readInteger(endianness: .big, as: UInt32.self) { result.append(UID(uid)) }
            }
            return result
        }
    }
}

extension PostgresMailStore {
    /// SORT: the search's condition, ordered by the keys stored at ingest (bytes of i;ascii-casemapped text, so
    /// `COLLATE "C"`), then by UID.
    public func sort(
        account: AccountID, mailbox: MailboxID, query: SearchQuery, criteria: [SortCriterion], maxUID: UID,
        logger: Logger
    ) async throws(StoreError) -> [UID] {
        var order: [String] = []
        for criterion in criteria {
            let expression =
                switch criterion.key {
                case .arrival: "m.internal_date"
                case .date: "coalesce(c.sent_time, m.internal_date)"
                case .size: "m.size"
                case .subject: "coalesce(c.sort_subject, '') COLLATE \"C\""
                case .from: "coalesce(c.sort_from, '') COLLATE \"C\""
                case .to: "coalesce(c.sort_to, '') COLLATE \"C\""
                case .cc: "coalesce(c.sort_cc, '') COLLATE \"C\""
                case .displayFrom: "coalesce(c.sort_display_from, '') COLLATE \"C\""
                case .displayTo: "coalesce(c.sort_display_to, '') COLLATE \"C\""
                }
            order.append(expression + (criterion.reverse ? " DESC" : " ASC"))
        }
        order.append("m.uid")
        // ARRIVAL and SIZE are the message row's: only other keys need the contents row.
        let needsContent = criteria.contains { $0.key != .arrival && $0.key != .size }
        return try await uids(
            Self.searchStatement(
                account: account, mailbox: mailbox, query: query, maxUID: maxUID,
                columns: Self.packedUIDs(order.joined(separator: ", ")), needsContent: needsContent),
            logger: logger)
    }
}

extension PostgresMailStore {
    /// THREAD's keys for the messages the search matches, in UID order. One text value for them all (records split
    /// by U+001E, fields by U+001F; References joined by spaces, as normalised msg-ids have none): a row per message
    /// cost more in decoding than the query itself.
    public func threadMessages(
        account: AccountID, mailbox: MailboxID, query: SearchQuery, maxUID: UID, logger: Logger
    ) async throws(StoreError) -> [(uid: UID, message: Threading.Message)] {
        let statement = Self.searchStatement(
            account: account, mailbox: mailbox, query: query, maxUID: maxUID,
            columns: """
                coalesce(string_agg(concat_ws(E'\\x1f', m.uid::text,
                    translate(coalesce(c.thread_id, ''), E'\\x1e\\x1f ', ''),
                    translate(array_to_string(coalesce(c.thread_refs, '{}'), ' '), E'\\x1e\\x1f', ''),
                    translate(coalesce(c.sort_subject, ''), E'\\x1e\\x1f', '  '),
                    CASE WHEN coalesce(c.thread_reply, false) THEN '1' ELSE '0' END,
                    coalesce(c.sent_time, m.internal_date)::text), E'\\x1e' ORDER BY m.uid), '')
                """, needsContent: true)
        let client = self.searchClient
        return try await run(logger) {
            var result: [(uid: UID, message: Threading.Message)] = []
            let rows = try await client.query(statement, logger: logger)
            for try await packed in rows.decode(String.self) {
                for record in packed.utf8.split(separator: 0x1E, omittingEmptySubsequences: true) {
                    let fields = record.split(separator: 0x1F, maxSplits: 5, omittingEmptySubsequences: false)
                    guard fields.count == 6, let uid = UInt32(Substring(fields[0])),
                        let date = Int64(Substring(fields[5]))
                    else { continue }
                    let id = String(Substring(fields[1]))
                    let references = fields[2].split(separator: 0x20).map { String(Substring($0)) }
                    result.append(
                        (
                            UID(uid),
                            Threading.Message(
                                messageID: id.isEmpty ? nil : id, references: references,
                                subject: String(Substring(fields[3])), isReplyOrForward: fields[4].first == 0x31,
                                date: date)
                        ))
                }
            }
            return result
        }
    }
}

/// Compiles a `SearchQuery` into a parameterised SQL condition over `messages m` (and `contents c` when needed)
/// (DESIGN.md §4). Every value from the client is a bind; only fixed SQL text is generated.
///
/// Text keys compare against the lower-cased decoded text kept at ingest, with LIKE (pg_trgm indexes assist);
/// dates compare day numbers in the message's own zone (RFC 9051 §6.4.4: "disregarding time and timezone").
struct SearchCompiler {
    var binds = PostgresBindings()
    private(set) var needsContent = false

    private mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    private mutating func contains(_ column: String, _ text: String) -> String {
        needsContent = true
        return "\(column) LIKE \(bind("%" + PostgresMailStore.likeEscape(text.lowercased()) + "%"))"
    }

    mutating func compile(_ query: SearchQuery) -> String {
        switch query {
        case .all:
            return "TRUE"
        case .none:
            return "FALSE"
        case .systemFlag(let flag, let present):
            return "(m.flags & \(flag.rawValue)) \(present ? "<>" : "=") 0"
        case .keyword(let name, let present):
            return "\(present ? "" : "NOT ")(\(bind(name))::text = ANY(m.keywords))"
        case .uids(let ranges):
            if ranges.isEmpty { return "FALSE" }
            if ranges.ranges.count == 1, let range = ranges.ranges.first {
                return "m.uid BETWEEN \(bind(Int64(range.lowerBound))) AND \(bind(Int64(range.upperBound)))"
            }
            let lows = bind(ranges.ranges.map { Int64($0.lowerBound) })
            let highs = bind(ranges.ranges.map { Int64($0.upperBound) })
            return
                "EXISTS (SELECT 1 FROM unnest(\(lows)::bigint[], \(highs)::bigint[]) r(lo, hi) WHERE m.uid BETWEEN r.lo AND r.hi)"
        case .address(let field, let text):
            return contains("c.search_\(field.rawValue)", text)
        case .subject(let text):
            return contains("c.search_subject", text)
        case .header(let name, let value):
            needsContent = true
            // "\nname: …value…" within one line of the decoded header text.
            let pattern =
                "\n" + Self.regexEscape(name.lowercased()) + ": [^\n]*" + Self.regexEscape(value.lowercased())
            return "c.search_headers ~ \(bind(pattern))"
        case .body(let text):
            return contains("c.search_body", text)
        case .text(let text):
            let headers = contains("c.search_headers", text)
            let body = contains("c.search_body", text)
            return "(\(headers) OR \(body))"
        case .internalDate(let comparison, let date):
            let day = "floor((m.internal_date + m.internal_zone * 60) / 86400.0)"
            return "\(day) \(Self.operator(comparison)) \(bind(date.dayNumber))"
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
            return "floor(m.saved_at / 86400.0) \(Self.operator(comparison)) \(bind(date.dayNumber))"
        case .not(let inner):
            return "NOT (\(compile(inner)))"
        case .or(let a, let b):
            return "((\(compile(a))) OR (\(compile(b))))"
        case .and(let keys):
            if keys.isEmpty { return "TRUE" }
            return keys.map { "(\(compile($0)))" }.joined(separator: " AND ")
        }
    }

    static func `operator`(_ comparison: SearchQuery.DateComparison) -> String {
        switch comparison {
        case .before: "<"
        case .on: "="
        case .since: ">="
        }
    }

    /// Escapes POSIX regular expression metacharacters (PostgreSQL ARE syntax).
    static func regexEscape(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\^$.|?*+()[]{}".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
