import Crypto
import Foundation
import IMAPEngine
import Logging
import NIOCore
import PostgresNIO

extension PostgresMailStore {
    // MARK: selecting and syncing

    public func select(account: AccountID, name: MailboxName, claimRecent: Bool, logger: Logger)
        async throws(StoreError) -> MailboxSnapshot
    {
        let client = self.client
        let key = SelectCache.Key(account: account, name: name.name)
        let cached = selectCache.entry(key)
        // One statement, one snapshot: the UID list and HIGHESTMODSEQ agree (STYLE.md §4.5). With the UIDs this
        // instance last read for the mailbox, only what changed since is read.
        var snapshot = try await run(logger) {
            if let cached,
                let snapshot = try await Self.selectChanges(
                    client, account: account, name: name, since: cached, logger: logger)
            {
                return snapshot
            }
            return try await Self.selectWhole(client, account: account, name: name, logger: logger)
        }
        selectCache.store(
            SelectCache.Entry(
                mailbox: snapshot.id, uidValidity: snapshot.uidValidity, uidNext: snapshot.uidNext,
                highestModSeq: snapshot.highestModSeq, uids: snapshot.uids, firstUnseen: snapshot.firstUnseen),
            at: key)
        if claimRecent {
            // Nothing unclaimed in the snapshot (the common case): no UPDATE.
            let unclaimed = !snapshot.recent.isEmpty
            snapshot.recent = []
            if unclaimed, let last = snapshot.uids.last,
                let claimed = try await self.claimRecent(
                    account: account, mailbox: snapshot.id, upTo: last, logger: logger)
            {
                let start = snapshot.uids.partitionPoint { $0.rawValue < claimed.lowerBound }
                snapshot.recent = Array(snapshot.uids[start...].prefix { $0.rawValue <= claimed.upperBound })
            }
        }
        return snapshot
    }

    /// SELECT's snapshot with every UID of the mailbox: the same statement as `selectChanges`, from nothing.
    static func selectWhole(_ client: GuardedClient, account: AccountID, name: MailboxName, logger: Logger)
        async throws -> MailboxSnapshot
    {
        guard let snapshot = try await selectChanges(client, account: account, name: name, since: nil, logger: logger)
        else { throw StoreError.internal("a whole SELECT read was refused") }
        return snapshot
    }

    /// SELECT's snapshot from `since`, an earlier one of this mailbox: the UIDs added since (at or above its UIDNEXT)
    /// and the tombstones of those expunged since (above its HIGHESTMODSEQ), in one statement; with no `since`, every
    /// UID. Nil when `since` cannot be built on: another mailbox of that name, tombstones it needs collected, or a
    /// database that went back in time.
    static func selectChanges(
        _ client: GuardedClient, account: AccountID, name: MailboxName, since: SelectCache.Entry?, logger: Logger
    ) async throws -> MailboxSnapshot? {
        let fromUID = Int64(since?.uidNext.rawValue ?? 0)
        let fromModSeq = since?.highestModSeq.rawValue ?? Int64.max
        // Unchanged since `since` (same HIGHESTMODSEQ and UIDNEXT: every append, expunge and flag change moves one of
        // them), the subqueries are not run at all and the earlier first unseen UID stands.
        //
        // The subqueries' bounds are themselves scalar subqueries, whose values the planner does not see. With them in
        // sight, the plans made for given values (PostgreSQL's first five executions) always looked cheaper than the
        // generic one, so it never switched: every SELECT was planned afresh, 0.4 ms of planning for 0.02 ms of
        // execution. Hidden, both cost the same and the generic plan is kept (PlannerTests). A server's command pools
        // plan generically from the start anyway (`commandPoolConnectionConfiguration`); this is for the pools that
        // leave the choice to PostgreSQL (tools, stores on a `PostgresClient`).
        let rows = try await client.prepared(
            """
            SELECT b.mailbox_id, b.uidvalidity, b.uidnext, b.highestmodseq, b.keywords, b.first_recent_uid,
                b.vanished_floor, b.highestmodseq = \(fromModSeq) AND b.uidnext = \(fromUID),
                CASE WHEN b.highestmodseq = \(fromModSeq) AND b.uidnext = \(fromUID) THEN NULL
                ELSE (SELECT min(uid) FROM messages m
                      WHERE m.account_id = b.account_id AND m.mailbox_id = b.mailbox_id AND m.flags & 8 = 0) END,
                CASE WHEN b.highestmodseq = \(fromModSeq) AND b.uidnext = \(fromUID) THEN '{}'::bigint[]
                ELSE array(SELECT uid FROM messages m
                           WHERE m.account_id = b.account_id AND m.mailbox_id = b.mailbox_id
                               AND m.uid >= (SELECT \(fromUID)::bigint)
                           ORDER BY uid) END,
                CASE WHEN b.highestmodseq = \(fromModSeq) AND b.uidnext = \(fromUID) THEN '{}'::bigint[]
                ELSE array(SELECT uid FROM expunged e
                           WHERE e.account_id = b.account_id AND e.mailbox_id = b.mailbox_id
                               AND e.modseq > (SELECT \(fromModSeq)::bigint)) END
            FROM mailboxes b WHERE b.account_id = \(account.rawValue) AND b.name = \(name.name)
            """, logger: logger
        ).collect()
        guard let row = rows.first else { throw StoreError.mailboxNotFound }
        let (id, validity, next, modseq, keywords, firstRecent, floor, unchanged, firstUnseen, added, expunged) =
            try row.decode((Int64, Int64, Int64, Int64, [String], Int64, Int64, Bool, Int64?, [Int64], [Int64]).self)
        if let since {
            guard id == since.mailbox.rawValue, UInt32(truncatingIfNeeded: validity) == since.uidValidity,
                floor <= since.highestModSeq.rawValue, modseq >= since.highestModSeq.rawValue,
                next >= Int64(since.uidNext.rawValue)
            else { return nil }
        }
        let uids = SelectCache.apply(
            since?.uids ?? [], expunged: expunged.map { UID(UInt32(truncatingIfNeeded: $0)) },
            added: added.map { UID(UInt32(truncatingIfNeeded: $0)) })
        return snapshot(
            id: id, name: name, validity: validity, next: next, modseq: modseq, keywords: keywords,
            firstRecent: firstRecent,
            firstUnseen: unchanged ? since?.firstUnseen.map { Int64($0.rawValue) } : firstUnseen, uids: uids)
    }

    private static func snapshot(
        id: Int64, name: MailboxName, validity: Int64, next: Int64, modseq: Int64, keywords: [String],
        firstRecent: Int64, firstUnseen: Int64?, uids: [UID]
    ) -> MailboxSnapshot {
        // Without a claim (EXAMINE) the session shows what is recent without taking it (as Dovecot does).
        let recentStart = uids.partitionPoint { Int64($0.rawValue) < firstRecent }
        return MailboxSnapshot(
            id: MailboxID(rawValue: id), name: name, uidValidity: UInt32(truncatingIfNeeded: validity),
            uidNext: UID(UInt32(truncatingIfNeeded: next)), highestModSeq: ModSeq(modseq), uids: uids,
            firstUnseen: firstUnseen.map { UID(UInt32(truncatingIfNeeded: $0)) }, keywords: keywords,
            recent: Array(uids[recentStart...]))
    }

    /// Moves `first_recent_uid` past `upTo` and returns the UIDs that became this session's `\Recent`
    /// (DESIGN.md §3: exactly one session sees a message as recent, across instances).
    public func claimRecent(account: AccountID, mailbox: MailboxID, upTo: UID, logger: Logger)
        async throws(StoreError) -> ClosedRange<UInt32>?
    {
        let client = self.client
        return try await run(logger) {
            // Every session told of new mail asks; only the first gets them. The condition inside the locking
            // subquery lets the others return at once when the UIDs are already claimed, instead of queueing for
            // the mailbox row lock (re-checked on the latest row version when they do wait).
            let rows = try await client.prepared(
                """
                UPDATE mailboxes b SET first_recent_uid = \(Int64(upTo.rawValue) + 1)
                FROM (SELECT first_recent_uid AS old FROM mailboxes
                      WHERE account_id = \(account.rawValue) AND mailbox_id = \(mailbox.rawValue)
                          AND first_recent_uid <= \(Int64(upTo.rawValue))
                      FOR UPDATE) o
                WHERE b.account_id = \(account.rawValue) AND b.mailbox_id = \(mailbox.rawValue)
                RETURNING o.old
                """, logger: logger
            ).collect()
            guard let old = try rows.first?.decode(Int64.self) else { return nil }
            return UInt32(truncatingIfNeeded: old)...upTo.rawValue
        }
    }

    /// What changed in a mailbox since `since`, in one statement: the mailbox row (existence and HIGHESTMODSEQ),
    /// changed messages and tombstones in one snapshot, so nothing committed in between is skipped.
    ///
    /// The values are hidden from the planner (see `selectChanges`), which plans it once: with them, it planned every
    /// NOOP anew, and for a large mailbox took modseqs of other mailboxes for this one's, expected most of it above
    /// `since` and read all of it (1.3 ms for a NOOP on 5,000 messages instead of 0.05). Hidden, `modseq > since` is
    /// guessed to keep a third of the mailbox; where one mailbox is most of the table (a new or small store), a third
    /// of it looked cheaper to read by a sequential scan of the whole table than through the index, and every NOOP
    /// did so (0.7 ms on 5,000 messages, growing with the table). Ordered by modseq with a limit the planner cannot
    /// see (and that cuts nothing), each part is planned for its first rows, which only the modseq index gives in
    /// that order (PlannerTests).
    static func changesStatement(account: AccountID, mailbox: MailboxID, since: ModSeq) -> PostgresQuery {
        """
        SELECT 0 AS kind, vanished_floor, 0::smallint, '{}'::text[], highestmodseq, first_recent_uid
            FROM mailboxes
            WHERE account_id = (SELECT \(account.rawValue)::bigint)
                AND mailbox_id = (SELECT \(mailbox.rawValue)::bigint)
        UNION ALL
        (SELECT 1, uid, flags, keywords, modseq, 0 FROM messages
            WHERE account_id = (SELECT \(account.rawValue)::bigint)
                AND mailbox_id = (SELECT \(mailbox.rawValue)::bigint)
                AND modseq > (SELECT \(since.rawValue)::bigint)
            ORDER BY modseq LIMIT (SELECT \(Int64.max)::bigint))
        UNION ALL
        (SELECT 2, uid, 0::smallint, '{}'::text[], modseq, 0 FROM expunged
            WHERE account_id = (SELECT \(account.rawValue)::bigint)
                AND mailbox_id = (SELECT \(mailbox.rawValue)::bigint)
                AND modseq > (SELECT \(since.rawValue)::bigint)
            ORDER BY modseq LIMIT (SELECT \(Int64.max)::bigint))
        """
    }

    public func changes(account: AccountID, mailbox: MailboxID, since: ModSeq, logger: Logger)
        async throws(StoreError) -> MailboxDelta
    {
        let client = self.client
        return try await run(logger) {
            let rows = try await client.prepared(
                Self.changesStatement(account: account, mailbox: mailbox, since: since), logger: logger)
            var exists = false
            var delta = MailboxDelta(highestModSeq: since)
            for try await row in rows {
                let (kind, uid, flags, keywords, modseq, firstRecent) = try row.decode(
                    (Int32, Int64, Int16, [String], Int64, Int64).self)
                switch kind {
                case 0:
                    exists = true
                    delta.firstUnclaimedUID = UID(UInt32(clamping: firstRecent))
                    delta.highestModSeq = max(delta.highestModSeq, ModSeq(modseq))
                    // `uid` is the mailbox's vanished_floor here: tombstones up to it were removed.
                    delta.expungedIncomplete = since.rawValue < uid
                case 1:
                    delta.changed.append(
                        .init(
                            uid: UID(UInt32(truncatingIfNeeded: uid)),
                            flags: MessageFlags(system: SystemFlags(rawValue: flags), keywords: keywords),
                            modSeq: ModSeq(modseq)))
                default:
                    delta.expunged.append(UID(UInt32(truncatingIfNeeded: uid)))
                    delta.lowestExpungedModSeq = min(delta.lowestExpungedModSeq ?? ModSeq(modseq), ModSeq(modseq))
                }
            }
            guard exists else { throw StoreError.mailboxNotFound }
            delta.changed.sort { $0.uid < $1.uid }
            delta.expunged.sort()
            return delta
        }
    }

    // MARK: writing

    public func append(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        claimRecent: Bool, logger: Logger
    ) async throws(StoreError) -> AppendResult {
        try await append(
            account: account, mailbox: mailbox, message: message, flags: flags, date: date, sharing: nil,
            claimRecent: claimRecent, logger: logger
        ).result
    }

    /// APPEND that can reuse content this account already stores: `sharing` is the `contentID` of an earlier append
    /// of the same `message` to the same account (one LMTP transaction's recipients `user` and `user+folder`), so the
    /// bytes are stored once per account (DESIGN.md §4: content never crosses accounts). When that content is gone,
    /// the message is stored anew. The garbage collector leaves contents younger than ten minutes alone, and the
    /// foreign key stops it from removing one that a message row references.
    public func append(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        sharing: Int64?, claimRecent: Bool = false, logger: Logger
    ) async throws(StoreError) -> (result: AppendResult, contentID: Int64) {
        do {
            return try await appendOnce(
                account: account, mailbox: mailbox, message: message, flags: flags, date: date, sharing: sharing,
                claimRecent: claimRecent, logger: logger)
        } catch .overQuota {
            // Over the limit counting what the account retains (content of expunged messages, of deleted
            // mailboxes): release that at once and try again. Only what the messages themselves need counts then.
            // (Tried again even when nothing was released here: a concurrent append may have released it.)
            _ = try await releaseRetainedContent(account: account, logger: logger)
            return try await appendOnce(
                account: account, mailbox: mailbox, message: message, flags: flags, date: date, sharing: sharing,
                claimRecent: claimRecent, logger: logger)
        }
    }

    /// The one statement that stores a message (content, unless `sharing` names content already stored; UID and
    /// modseq under the mailbox row lock; the message row; NOTIFY): nil when the mailbox does not exist or the shared
    /// content is gone.
    static func insertMessage(
        _ connection: PostgresConnection, account: AccountID, mailbox: MailboxName, content: ContentRow?, size: Int32,
        flags: MessageFlags, date: InternalDate, sharing: Int64?, claimRecent: Bool = false, logger: Logger
    ) async throws -> (AppendResult, Int64)? {
        // One statement: content, UID and modseq allocation (mailbox row lock), message row and NOTIFY commit
        // together or not at all.
        let rows = try await connection.prepared(
            """
            WITH b AS (
                UPDATE mailboxes x SET uidnext = x.uidnext + 1, highestmodseq = x.highestmodseq + 1,
                    keywords = CASE WHEN x.keywords @> \(flags.keywords)::text[] THEN x.keywords
                               ELSE array(SELECT DISTINCT unnest(x.keywords || \(flags.keywords)::text[])) END,
                    first_recent_uid = CASE WHEN \(claimRecent) THEN x.uidnext + 1 ELSE x.first_recent_uid END
                FROM (SELECT first_recent_uid AS old FROM mailboxes
                      WHERE account_id = \(account.rawValue) AND name = \(mailbox.name) FOR UPDATE) o
                WHERE x.account_id = \(account.rawValue) AND x.name = \(mailbox.name)
                    AND (\(sharing)::bigint IS NULL OR EXISTS (SELECT 1 FROM contents
                         WHERE account_id = \(account.rawValue) AND content_id = \(sharing)::bigint))
                RETURNING x.account_id, x.mailbox_id, x.uidvalidity, x.uidnext - 1 AS uid, x.highestmodseq,
                    x.first_recent_uid, o.old AS claimed_from),
            fresh AS (
                INSERT INTO contents (account_id, size, header_length, body, envelope, body_summary, body_structure,
                    parts, sent_day, search_from, search_to, search_cc, search_bcc, search_subject, search_headers,
                    search_body, sha256, sort_subject, sort_from, sort_to, sort_cc, sort_display_from,
                    sort_display_to, sent_time, thread_id, thread_refs, thread_reply, preview, keys_version,
                    summary_header)
                SELECT \(account.rawValue), \(size), \(content?.headerLength), \(content?.body),
                    \(content?.envelope), \(content?.bodySummary), \(content?.bodyStructure), \(content?.parts),
                    \(content?.sentDay), \(content?.from), \(content?.to), \(content?.cc), \(content?.bcc),
                    \(content?.subject), \(content?.headers), \(content?.text), \(content?.sha256),
                    \(content?.sort.subject), \(content?.sort.from), \(content?.sort.to), \(content?.sort.cc),
                    \(content?.sort.displayFrom), \(content?.sort.displayTo), \(content?.sort.sentTime),
                    \(content?.sort.messageID), \(content?.sort.references), \(content?.sort.isReplyOrForward),
                    \(content?.preview), \(ContentRow.keysVersion), \(content?.summaryHeader)
                FROM b WHERE \(sharing)::bigint IS NULL
                RETURNING content_id),
            c AS (
                SELECT content_id FROM fresh
                UNION ALL SELECT \(sharing)::bigint FROM b WHERE \(sharing)::bigint IS NOT NULL),
            m AS (
                INSERT INTO messages (account_id, mailbox_id, uid, content_id, flags, keywords, modseq,
                    internal_date, internal_zone, size)
                SELECT \(account.rawValue), b.mailbox_id, b.uid, c.content_id, \(flags.system.rawValue),
                    \(flags.keywords)::text[], b.highestmodseq, \(date.secondsSinceEpoch), \(Int16(date.zoneMinutes)),
                    \(size)
                FROM b, c
                RETURNING uid, content_id, flags, keywords)
            SELECT b.uidvalidity, m.uid, m.content_id, b.highestmodseq, b.claimed_from,
                \(unescaped: Self.appendNotice)
            FROM b, m
            """, logger: logger
        ).collect()
        guard let row = rows.first else { return nil }
        let (validity, uid, contentID, modSeq, claimedFrom, _) = try row.decode(
            (Int64, Int64, Int64, Int64, Int64, String).self)
        var result = AppendResult(
            uidValidity: UInt32(truncatingIfNeeded: validity), uid: UID(UInt32(truncatingIfNeeded: uid)),
            modSeq: ModSeq(modSeq))
        if claimRecent, claimedFrom <= uid {
            result.recent = UInt32(truncatingIfNeeded: claimedFrom)...UInt32(truncatingIfNeeded: uid)
        }
        return (result, contentID)
    }

    static let appendNotice = changeNotice(
        account: "b.account_id", mailbox: "b.mailbox_id", modSeq: "b.highestmodseq",
        details: "json_build_object('r', b.first_recent_uid, 'c', json_build_array(json_build_array(m.uid, m.flags, "
            + "m.keywords)))")

    /// MULTIAPPEND (RFC 3502): every message in one transaction, so all are stored or none; over quota, what the
    /// account retains is released and it is tried once more, as for one message.
    public func appendAll(
        account: AccountID, mailbox: MailboxName, messages: [(ParsedMessage, MessageFlags, InternalDate)],
        logger: Logger
    ) async throws(StoreError) -> [AppendResult] {
        do {
            return try await appendAllOnce(account: account, mailbox: mailbox, messages: messages, logger: logger)
        } catch .overQuota {
            _ = try await releaseRetainedContent(account: account, logger: logger)
            return try await appendAllOnce(account: account, mailbox: mailbox, messages: messages, logger: logger)
        }
    }

    private func appendAllOnce(
        account: AccountID, mailbox: MailboxName, messages: [(ParsedMessage, MessageFlags, InternalDate)],
        logger: Logger
    ) async throws(StoreError) -> [AppendResult] {
        var rows: [(ContentRow, Int32, MessageFlags, InternalDate)] = []
        for (message, flags, date) in messages {
            guard message.bytes.count <= Int(Int32.max) else { throw StoreError.cannot("Message too large") }
            rows.append((try ContentRow(message, internalDate: date), Int32(message.bytes.count), flags, date))
        }
        let prepared = rows
        return try await writeTransaction(logger) { connection in
            var results: [AppendResult] = []
            for (content, size, flags, date) in prepared {
                guard
                    let (result, _) = try await Self.insertMessage(
                        connection, account: account, mailbox: mailbox, content: content, size: size,
                        flags: flags, date: date, sharing: nil, logger: logger)
                else { throw StoreError.mailboxNotFound }
                results.append(result)
            }
            return results
        }
    }

    /// Drops the content an account keeps only for expunged messages (sessions not yet told of the expunge then get
    /// NO [EXPUNGEISSUED] for them) and content no message refers to any more. Returns the bytes released.
    func releaseRetainedContent(account: AccountID, logger: Logger) async throws(StoreError) -> Int64 {
        let client = self.client
        return try await run(logger) {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    UPDATE expunged SET content_id = NULL
                    WHERE account_id = \(account.rawValue) AND content_id IS NOT NULL
                    """, logger: logger)
                let rows = try await connection.query(
                    """
                    WITH gone AS (
                        DELETE FROM contents c
                        WHERE c.account_id = \(account.rawValue)
                            AND NOT EXISTS (SELECT 1 FROM messages m
                                            WHERE m.account_id = c.account_id AND m.content_id = c.content_id)
                        RETURNING size)
                    SELECT coalesce(sum(size), 0)::bigint FROM gone
                    """, logger: logger
                ).collect()
                let released = try rows.first?.decode(Int64.self) ?? 0
                if released > 0 {
                    logger.notice("released retained content for quota", metadata: ["bytes": "\(released)"])
                }
                return released
            }
        }
    }

    private func appendOnce(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        sharing: Int64?, claimRecent: Bool, logger: Logger
    ) async throws(StoreError) -> (result: AppendResult, contentID: Int64) {
        guard message.bytes.count <= Int(Int32.max) else { throw StoreError.cannot("Message too large") }
        let size = Int32(message.bytes.count)
        // With shared content the content columns are bound as NULL and the INSERT into contents does not run.
        let content = sharing == nil ? try ContentRow(message, internalDate: date) : nil
        let outcome: Result<(AppendResult, Int64)?, StoreError>
        do {
            outcome = .success(
                try await write(logger) { connection -> (AppendResult, Int64)? in
                    try await Self.insertMessage(
                        connection, account: account, mailbox: mailbox, content: content, size: size, flags: flags,
                        date: date, sharing: sharing, claimRecent: claimRecent, logger: logger)
                })
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let stored?):
            return (result: stored.0, contentID: stored.1)
        case .success(nil) where sharing == nil:
            throw StoreError.mailboxNotFound
        case .success(nil):
            // No row: the mailbox does not exist, or the shared content is gone (then store it anew).
            break
        case .failure(.internal(let detail)) where sharing != nil && detail.hasPrefix("23503"):
            // The shared content was released (quota) between the check and the insert: store it anew.
            break
        case .failure(let error):
            throw error
        }
        return try await appendOnce(
            account: account, mailbox: mailbox, message: message, flags: flags, date: date, sharing: nil,
            claimRecent: claimRecent, logger: logger)
    }

    public func updateFlags(account: AccountID, mailbox: MailboxID, uids: [UID], update: FlagUpdate, logger: Logger)
        async throws(StoreError) -> [StoredFlags]
    {
        let uidList = uids.map { Int64($0.rawValue) }
        var unique: [String] = []
        for keyword in update.flags.keywords where !unique.contains(keyword) { unique.append(keyword) }
        let keywords = unique
        // The new flags of a message row `m`, from the update's flags `p.f` and keywords `p.k`; keywords keep the
        // order they were set in.
        let (newFlags, newKeywords): (String, String) =
            switch update.kind {
            case .replace: ("p.f", "p.k")
            case .add:
                (
                    "m.flags | p.f",
                    "m.keywords || array(SELECT k FROM unnest(p.k) WITH ORDINALITY u(k, i) "
                        + "WHERE NOT k = ANY(m.keywords) ORDER BY i)"
                )
            case .remove:
                (
                    "m.flags & ~p.f",
                    "array(SELECT k FROM unnest(m.keywords) WITH ORDINALITY u(k, i) WHERE NOT k = ANY(p.k) ORDER BY i)"
                )
            }
        // The mailbox keeps the keywords in use, for FLAGS and PERMANENTFLAGS at SELECT.
        let added = update.kind == .remove ? [] : keywords
        let unchangedSince = update.unchangedSince?.rawValue ?? Int64.max
        return try await write(logger) { connection in
            // One statement, so no lock is held across a round trip to this process. The mailbox row is locked
            // first (`l` feeds `cur`), then the message rows, as COPY, MOVE and EXPUNGE lock them: no deadlock.
            // `cur` reads the latest committed flags (FOR UPDATE), and a modseq is taken only when something
            // changes (STYLE.md §4.8). `u`, like every data-modifying CTE, runs whether or not the query reads it.
            let rows = try await connection.prepared(
                """
                WITH p AS (SELECT \(update.flags.system.rawValue)::smallint AS f, \(keywords)::text[] AS k),
                l AS (
                    SELECT mailbox_id FROM mailboxes
                    WHERE account_id = \(account.rawValue) AND mailbox_id = \(mailbox.rawValue) FOR UPDATE),
                cur AS (
                    SELECT m.uid, m.flags, m.keywords, m.modseq, m.modseq <= \(unchangedSince) AS passes,
                        \(unescaped: newFlags) AS new_flags, \(unescaped: newKeywords) AS new_keywords
                    FROM l, p, messages m
                    WHERE m.account_id = \(account.rawValue) AND m.mailbox_id = l.mailbox_id
                        AND m.uid >= \(uidList.min() ?? 0) AND m.uid <= \(uidList.max() ?? -1)
                        AND m.uid IN (SELECT unnest(\(uidList)::bigint[]))
                    FOR UPDATE OF m),
                ch AS (SELECT uid, new_flags, new_keywords FROM cur
                       WHERE passes AND (new_flags <> flags OR new_keywords <> keywords)),
                b AS (
                    UPDATE mailboxes SET highestmodseq = highestmodseq + 1,
                        keywords = CASE WHEN keywords @> \(added)::text[] THEN keywords
                                   ELSE array(SELECT DISTINCT unnest(keywords || \(added)::text[])) END
                    WHERE account_id = \(account.rawValue) AND mailbox_id = \(mailbox.rawValue)
                        AND EXISTS (SELECT 1 FROM ch)
                    RETURNING highestmodseq, \(unescaped: Self.storeNotice)),
                u AS (
                    UPDATE messages m SET flags = ch.new_flags, keywords = ch.new_keywords, modseq = b.highestmodseq
                    FROM ch, b
                    WHERE m.account_id = \(account.rawValue) AND m.mailbox_id = \(mailbox.rawValue) AND m.uid = ch.uid)
                SELECT cur.uid, CASE WHEN cur.passes THEN cur.new_flags ELSE cur.flags END,
                    CASE WHEN cur.passes THEN cur.new_keywords ELSE cur.keywords END,
                    coalesce(b.highestmodseq, cur.modseq), ch.uid IS NOT NULL, NOT coalesce(cur.passes, true)
                FROM l LEFT JOIN cur ON true LEFT JOIN ch ON ch.uid = cur.uid LEFT JOIN b ON ch.uid IS NOT NULL
                ORDER BY cur.uid
                """, logger: logger
            ).collect()
            guard !rows.isEmpty else { throw StoreError.mailboxNotFound }
            var result: [StoredFlags] = []
            for row in rows {
                let (uid, flags, keywords, modseq, changed, failed) = try row.decode(
                    (Int64?, Int16?, [String]?, Int64?, Bool, Bool).self)
                guard let uid, let flags, let keywords, let modseq else { continue }  // no message: `l` alone
                result.append(
                    StoredFlags(
                        uid: UID(UInt32(truncatingIfNeeded: uid)),
                        flags: MessageFlags(system: SystemFlags(rawValue: flags), keywords: keywords),
                        modSeq: ModSeq(modseq), changed: changed, conditionFailed: failed))
            }
            return result
        }
    }

    static let storeNotice = changeNotice(
        account: "account_id", mailbox: "mailbox_id", modSeq: "highestmodseq",
        details:
            "CASE WHEN (SELECT count(*) FROM ch) <= \(noticeMessages) THEN json_build_object('r', first_recent_uid, "
            + "'c', (SELECT json_agg(json_build_array(uid, new_flags, new_keywords) ORDER BY uid) FROM ch)) END")

    public func expunge(account: AccountID, mailbox: MailboxID, uids: [UID]?, logger: Logger)
        async throws(StoreError) -> ExpungeResult
    {
        let only = uids.map { $0.map { Int64($0.rawValue) } }
        return try await write(logger) { connection in
            // One statement that takes the mailbox row lock itself: no lock held across a round trip.
            try await Self.expungeLocked(
                connection, account: account, mailbox: mailbox.rawValue, onlyDeleted: true, uids: only,
                logger: logger)
        }
    }

    /// Deletes messages into tombstones with one new modseq, in one statement that locks the mailbox row before the
    /// message rows (`l` feeds `gone`), as STORE and MOVE do; within MOVE's transaction the lock is already held.
    ///
    /// The lock is taken only when the statement's snapshot holds a message to remove. The DELETE scans that same
    /// snapshot (a row it does not match there is never re-checked), so without one it removes nothing whether it
    /// waits for the lock or not; an EXPUNGE with nothing `\Deleted` then does not queue behind the mailbox's writers.
    static func expungeLocked(
        _ connection: PostgresConnection, account: AccountID, mailbox: Int64, onlyDeleted: Bool, uids: [Int64]?,
        logger: Logger
    ) async throws -> ExpungeResult {
        let low = uids?.min() ?? 0
        let high = uids?.max() ?? Int64.max
        let rows = try await connection.prepared(
            """
            WITH l AS (
                SELECT mailbox_id FROM mailboxes
                WHERE account_id = \(account.rawValue) AND mailbox_id = \(mailbox)
                    AND EXISTS (SELECT 1 FROM messages
                        WHERE account_id = \(account.rawValue) AND mailbox_id = \(mailbox)
                            AND (NOT \(onlyDeleted) OR flags & 4 <> 0) AND uid >= \(low) AND uid <= \(high)
                            AND (\(uids == nil) OR uid IN (SELECT unnest(\(uids ?? [])::bigint[]))))
                FOR UPDATE),
            gone AS (
                DELETE FROM messages USING l
                WHERE messages.account_id = \(account.rawValue) AND messages.mailbox_id = l.mailbox_id
                    AND (NOT \(onlyDeleted) OR flags & 4 <> 0)
                    AND uid >= \(low) AND uid <= \(high)
                    AND (\(uids == nil) OR uid IN (SELECT unnest(\(uids ?? [])::bigint[])))
                RETURNING messages.*),
            b AS (
                UPDATE mailboxes SET highestmodseq = highestmodseq + 1
                WHERE account_id = \(account.rawValue) AND mailbox_id = \(mailbox) AND EXISTS (SELECT 1 FROM gone)
                RETURNING highestmodseq, first_recent_uid),
            t AS (
                INSERT INTO expunged (account_id, mailbox_id, uid, modseq, content_id, flags, keywords, internal_date,
                    internal_zone, size)
                SELECT gone.account_id, gone.mailbox_id, gone.uid, b.highestmodseq, gone.content_id, gone.flags,
                    gone.keywords, gone.internal_date, gone.internal_zone, gone.size
                FROM gone, b
                RETURNING account_id, mailbox_id, uid, modseq)
            SELECT uid, modseq, \(unescaped: Self.expungeNotice)
            FROM t ORDER BY uid
            """, logger: logger)
        var expunged = ExpungeResult(uids: [], modSeq: nil)
        for try await row in rows {
            let (uid, modSeq, _) = try row.decode((Int64, Int64, String).self)
            expunged.uids.append(UID(UInt32(truncatingIfNeeded: uid)))
            expunged.modSeq = ModSeq(modSeq)
        }
        return expunged
    }

    /// The same for every row: PostgreSQL sends it once.
    static let expungeNotice = changeNotice(
        account: "account_id", mailbox: "mailbox_id", modSeq: "modseq",
        details: "CASE WHEN (SELECT count(*) FROM t) <= \(noticeMessages) THEN json_build_object('r', "
            + "(SELECT first_recent_uid FROM b), 'x', (SELECT json_agg(uid ORDER BY uid) FROM t)) END")

    public func copy(account: AccountID, from: MailboxID, uids: [UID], to: MailboxName, logger: Logger)
        async throws(StoreError) -> CopyResult
    {
        try await copyOrMove(account: account, from: from, uids: uids, to: to, move: false, logger: logger)
    }

    public func move(account: AccountID, from: MailboxID, uids: [UID], to: MailboxName, logger: Logger)
        async throws(StoreError) -> CopyResult
    {
        try await copyOrMove(account: account, from: from, uids: uids, to: to, move: true, logger: logger)
    }

    /// COPY never copies bytes: new rows reference the same content (DESIGN.md §4). MOVE is COPY plus EXPUNGE of the
    /// originals in the same transaction (RFC 6851 §3.3).
    private func copyOrMove(
        account: AccountID, from: MailboxID, uids: [UID], to: MailboxName, move: Bool, logger: Logger
    ) async throws(StoreError) -> CopyResult {
        let uidList = uids.map { Int64($0.rawValue) }
        return try await writeTransaction(logger) { connection in
            let target = try await connection.query(
                "SELECT mailbox_id FROM mailboxes WHERE account_id = \(account.rawValue) AND name = \(to.name)",
                logger: logger
            ).collect()
            guard let destination = try target.first?.decode(Int64.self) else { throw StoreError.mailboxNotFound }
            if move {
                // A move adds and removes the same messages: the quota trigger must not count the copy alone.
                try await connection.query("SET LOCAL mailhost.skip_quota = 'on'", logger: logger)
            }
            // Both rows locked in id order, so concurrent COPYs in opposite directions cannot deadlock.
            let locked = try await connection.query(
                """
                SELECT mailbox_id FROM mailboxes
                WHERE account_id = \(account.rawValue) AND mailbox_id IN (\(from.rawValue), \(destination))
                ORDER BY mailbox_id FOR UPDATE
                """, logger: logger
            ).collect()
            guard locked.count == (destination == from.rawValue ? 1 : 2) else { throw StoreError.mailboxNotFound }

            let rows = try await connection.query(
                """
                WITH src AS (
                    SELECT * FROM messages
                    WHERE account_id = \(account.rawValue) AND mailbox_id = \(from.rawValue)
                        AND uid = ANY(\(uidList)::bigint[])),
                n AS (SELECT count(*) AS n FROM src),
                b AS (
                    UPDATE mailboxes SET uidnext = uidnext + n.n, highestmodseq = highestmodseq + 1,
                        keywords = array(SELECT DISTINCT k FROM (
                            SELECT unnest(keywords) AS k UNION SELECT unnest(keywords) FROM src) x)
                    FROM n
                    WHERE account_id = \(account.rawValue) AND mailbox_id = \(destination) AND n.n > 0
                    RETURNING account_id, mailbox_id, uidvalidity, uidnext - n.n AS first_uid, highestmodseq,
                        first_recent_uid),
                ins AS (
                    INSERT INTO messages (account_id, mailbox_id, uid, content_id, flags, keywords, modseq,
                        internal_date, internal_zone, size)
                    SELECT src.account_id, \(destination), b.first_uid + row_number() OVER (ORDER BY src.uid) - 1,
                        src.content_id, src.flags, src.keywords, b.highestmodseq, src.internal_date,
                        src.internal_zone, src.size
                    FROM src, b
                    RETURNING uid, flags, keywords)
                SELECT b.uidvalidity, array(SELECT uid FROM src ORDER BY uid), array(SELECT uid FROM ins ORDER BY uid),
                    \(unescaped: Self.copyNotice)
                FROM b
                """, logger: logger
            ).collect()
            guard let row = rows.first else {
                return CopyResult(uidValidity: 0, sourceUIDs: [], destinationUIDs: [])
            }
            let (validity, sources, destinations, _) = try row.decode((Int64, [Int64], [Int64], String).self)
            if move {
                _ = try await Self.expungeLocked(
                    connection, account: account, mailbox: from.rawValue, onlyDeleted: false, uids: sources,
                    logger: logger)
            }
            return CopyResult(
                uidValidity: UInt32(truncatingIfNeeded: validity),
                sourceUIDs: sources.map { UID(UInt32(truncatingIfNeeded: $0)) },
                destinationUIDs: destinations.map { UID(UInt32(truncatingIfNeeded: $0)) })
        }
    }

    static let copyNotice = changeNotice(
        account: "b.account_id", mailbox: "b.mailbox_id", modSeq: "b.highestmodseq",
        details: "CASE WHEN (SELECT count(*) FROM ins) <= \(noticeMessages) THEN json_build_object('r', "
            + "b.first_recent_uid, 'c', (SELECT json_agg(json_build_array(uid, flags, keywords) ORDER BY uid) FROM ins)) END"
    )

    // MARK: reading

    public func fetch(
        account: AccountID, mailbox: MailboxID, uids: [UID], columns: FetchColumns, byteBudget: Int?, logger: Logger
    ) async throws(StoreError) -> FetchedBatch {
        let client = self.client
        let uidList = uids.map { Int64($0.rawValue) }
        // Flags-only FETCHes (the bulk of a client's resync) read the message rows alone.
        let readsContent = columns.readsContent
        let join =
            readsContent ? "JOIN contents c ON c.account_id = x.account_id AND c.content_id = x.content_id" : ""
        // Only the asked-for content columns are read, in the order `record(_:columns:)` decodes them.
        var list = "SELECT x.uid, x.content_id, x.flags, x.keywords, x.internal_date, x.internal_zone, x.size, "
        list += "x.modseq, x.expunged"
        if columns.contains(.saveDate) { list += ", x.saved_at" }
        if readsContent { list += ", c.header_length" }
        var sizes: [String] = []
        for (column, expression, size) in Self.contentColumns where columns.contains(column) {
            if column == .header, columns.contains(.headerSummary) {
                // The header's summary when the content has one: a few hundred bytes stored with the row, instead of
                // the header read out of the compressed message (4 more buffers per message, and its decompression).
                // NULL (stored before schema migration 8, not yet backfilled) and empty (too long to keep) mean none.
                list += ", coalesce(nullif(c.summary_header, ''::bytea), " + expression + ")"
                sizes.append("coalesce(nullif(octet_length(c.summary_header), 0), " + size + ")")
                continue
            }
            list += ", " + expression
            sizes.append(size)
        }
        // A budget cuts the batch after the row that takes the running total of the content columns past it
        // (octet_length reads the stored length, nothing is detoasted for rows left out). The last row's `upto`
        // says whether rows may have been left out: at or past the budget. (A `count(*) OVER ()` would say it
        // exactly, but holds every row of the batch before the first is sent: a quarter of the statement's time.)
        let budgeted = byteBudget != nil && !sizes.isEmpty
        if budgeted {
            let size = sizes.joined(separator: " + ")
            list +=
                ", sum(\(size)) OVER (ORDER BY x.uid) AS upto, sum(\(size)) OVER (ORDER BY x.uid) - (\(size)) AS before"
        }
        let select = list
        let budget = Int64(byteBudget ?? Int.max)
        // The statements are prepared (planned once, generically), so the UIDs are found by their range, which an
        // index scan can use whatever the values: a `uid = ANY($n)` alone would make the generic plan read the whole
        // mailbox. A set that fills most of its range is read by the range alone and filtered here (a budget then
        // also counts the rows of its holes, which only cuts earlier); a sparse one looks each UID of the list up in
        // the index. The lookup is a LATERAL subquery (kept apart by OFFSET 0) so that even the generic plan walks
        // the list and probes the index (through the primary key: schema migration 7, PlannerTests): `uid IN
        // (SELECT unnest(…))` got a generic plan that unnested the whole list once per message of the range, 2,000
        // UIDs × 2,000 messages per batch (430 ms for 2,000 envelopes instead of 15). The UIDs are distinct.
        @Sendable func query(_ source: String, _ uids: [Int64], cut: Bool) -> (PostgresQuery, filter: Set<Int64>?) {
            let (low, high) = (uids.min() ?? 0, uids.max() ?? -1)
            let byRange = uids.count * 2 >= high - low + 1
            var binds = PostgresBindings(capacity: 6)
            binds.append(account.rawValue)
            binds.append(mailbox.rawValue)
            binds.append(low)
            binds.append(high)
            let where_ = "account_id = $1 AND mailbox_id = $2 AND uid >= $3 AND uid <= $4"
            var sql: String
            if byRange {
                sql = select + " FROM (" + source + " WHERE " + where_ + ") x " + join
            } else {
                binds.append(uids)
                sql =
                    select + " FROM unnest($5::bigint[]) AS u(uid) CROSS JOIN LATERAL (" + source
                    + " WHERE uid = u.uid AND " + where_ + " OFFSET 0) x " + join
            }
            if cut {
                binds.append(budget)
                sql = "SELECT * FROM (" + sql + ") y WHERE y.before < $\(binds.count)"
            }
            let filter = byRange && uids.count < high - low + 1 ? Set(uids) : nil
            return (PostgresQuery(unsafeSQL: sql + " ORDER BY uid", binds: binds), filter)
        }
        // Streamed on one guarded connection: a batch's rows can be megabytes, read as they arrive.
        return try await run(logger) {
            try await client.withConnection { connection in
                var records: [MessageRecord] = []
                records.reserveCapacity(uids.count)
                var (lastRow, lastRead): (PostgresRow?, Int64) = (nil, 0)
                let (liveQuery, liveFilter) = query(
                    "SELECT *, false AS expunged FROM messages", uidList, cut: budgeted)
                let live = try await connection.prepared(liveQuery, logger: logger)
                for try await row in live {
                    let record = try Self.record(row, columns: columns)
                    (lastRow, lastRead) = (row, Int64(record.uid.rawValue))
                    if let liveFilter, !liveFilter.contains(lastRead) { continue }
                    records.append(record)
                }
                // Perhaps cut by the budget: the batch covers the UIDs (ascending) up to its last row, which may be one of
                // a hole's. (When nothing was left out after all, the next batch finds no row and covers the rest.)
                var covered = uidList.count
                if budgeted, let lastRow, try PostgresRandomAccessRow(lastRow)["upto"].decode(Int64.self) >= budget {
                    covered = uidList.firstIndex { $0 > lastRead } ?? uidList.count
                }
                if records.count < covered {
                    // Messages expunged elsewhere that this session has not been told about: served from the tombstone
                    // while the content exists (STYLE.md §4.6).
                    let found = Set(records.map { Int64($0.uid.rawValue) })
                    let missing = uidList.prefix(covered).filter { !found.contains($0) }
                    let (goneQuery, goneFilter) = query(
                        """
                        SELECT * FROM (
                            SELECT account_id, mailbox_id, uid, content_id, flags, keywords, internal_date, internal_zone,
                                size, modseq, NULL::bigint AS saved_at, true AS expunged FROM expunged
                            WHERE content_id IS NOT NULL) e
                        """, missing, cut: false)
                    for try await row in try await connection.prepared(goneQuery, logger: logger) {
                        let record = try Self.record(row, columns: columns)
                        if let goneFilter, !goneFilter.contains(Int64(record.uid.rawValue)) { continue }
                        records.append(record)
                    }
                    records.sort { $0.uid < $1.uid }
                }
                return FetchedBatch(records: records, covered: covered)
            }
        }
    }

    /// Sets smaller than this are read directly; larger ones through the flags cache.
    static let flagsCacheThreshold = 64

    /// A flags-only FETCH: from the flags cache, brought up to date by the changes since its entry (one statement
    /// that reads only what changed), or read whole the first time. UIDs the picture lacks (expunged elsewhere, that
    /// this session has not been told of) are served from their tombstones as `fetch` does.
    public func flags(account: AccountID, mailbox: MailboxID, uids: [UID], logger: Logger) async throws(StoreError)
        -> [MessageFlagsRecord]
    {
        let key = FlagsCache.Key(account: account, mailbox: mailbox)
        let cached = uids.count >= Self.flagsCacheThreshold ? flagsCache.entry(key) : nil
        // Small sets, and mailboxes too large to keep, are read from their rows (in the caller's batches).
        guard uids.count >= Self.flagsCacheThreshold, cached?.oversized != true else {
            return try await flagsFromRows(account: account, mailbox: mailbox, uids: uids, logger: logger)
        }
        var entry: FlagsCache.Entry
        let delta = try await changes(
            account: account, mailbox: mailbox, since: cached?.highestModSeq ?? ModSeq(0), logger: logger)
        if let cached, !delta.expungedIncomplete {
            entry = cached.applying(delta)
        } else {
            // Read whole: every message has a modseq above 0 (tombstones are of no use to an empty picture).
            let whole =
                cached == nil
                ? delta
                : try await changes(
                    account: account, mailbox: mailbox, since: ModSeq(0), logger: logger)
            entry = FlagsCache.Entry(highestModSeq: ModSeq(0)).applying(
                MailboxDelta(changed: whole.changed, highestModSeq: whole.highestModSeq))
        }
        if entry.highestModSeq != cached?.highestModSeq { flagsCache.store(entry, at: key) }
        var result: [MessageFlagsRecord] = []
        result.reserveCapacity(uids.count)
        var absent: [UID] = []
        for uid in uids {
            if let i = entry.index(of: uid) {
                result.append(entry.records[i])
            } else {
                absent.append(uid)
            }
        }
        if !absent.isEmpty {
            result += try await flagsFromRows(account: account, mailbox: mailbox, uids: absent, logger: logger)
            result.sort { $0.uid < $1.uid }
        }
        return result
    }

    /// The content columns FETCH may ask for, in the order they are selected and decoded, with their stored sizes.
    static let contentColumns: [(FetchColumns, String, String)] = [
        (.envelope, "c.envelope", "octet_length(c.envelope)"),
        (.body, "c.body_summary", "octet_length(c.body_summary)"),
        (.bodyStructure, "c.body_structure", "octet_length(c.body_structure)"),
        (.parts, "c.parts", "octet_length(c.parts)"),
        // A header over the limit is not read here: FETCH then reads it as a section of the content, in pieces.
        (
            .header,
            "CASE WHEN c.header_length <= \(FetchColumns.headerLimit) THEN substring(c.body FROM 1 FOR c.header_length) END",
            "least(c.header_length, \(FetchColumns.headerLimit))"
        ),
        (.preview, "c.preview", "coalesce(octet_length(c.preview), 0)"),
    ]

    static func record(_ row: PostgresRow, columns: FetchColumns) throws -> MessageRecord {
        // Cell by cell with concrete types: decoding a 15-tuple through `row.decode(_:)` instantiated generic
        // metadata for every row and was 40 % of the CPU time of `UID FETCH 1:* (UID FLAGS)`.
        var cells = CellReader(row)
        let uid = try cells.next(Int64.self)
        let contentID = try cells.next(Int64.self)
        let flags = try cells.next(Int16.self)
        let keywords = try cells.next([String].self)
        let date = try cells.next(Int64.self)
        let zone = try cells.next(Int16.self)
        let size = try cells.next(Int32.self)
        let modseq = try cells.next(Int64.self)
        let expunged = try cells.next(Bool.self)
        let saved = columns.contains(.saveDate) ? try cells.next(Int64?.self) : nil
        let headerLength = columns.readsContent ? try cells.next(Int32.self) : 0
        func column(_ column: FetchColumns) throws -> ByteBuffer? {
            columns.contains(column) ? try cells.next(ByteBuffer.self) : nil
        }
        let envelope = try column(.envelope)
        let body = try column(.body)
        let structure = try column(.bodyStructure)
        let parts = try column(.parts)
        let header = columns.contains(.header) ? try cells.next(ByteBuffer?.self) : nil
        let preview = columns.contains(.preview) ? try cells.next(String?.self) : nil
        var tree: MessagePart? = nil
        if let parts, parts.readableBytes > 0 {
            tree = try JSONDecoder().decode(MessagePart.self, from: Data(parts.readableBytesView))
        }
        func bytes(_ buffer: ByteBuffer?) -> [UInt8] { buffer.map { Array($0.readableBytesView) } ?? [] }
        return MessageRecord(
            uid: UID(UInt32(truncatingIfNeeded: uid)), contentID: contentID,
            flags: MessageFlags(system: SystemFlags(rawValue: flags), keywords: keywords),
            internalDate: InternalDate(secondsSinceEpoch: date, zoneMinutes: Int(zone)), size: Int(size),
            headerLength: Int(headerLength), modSeq: ModSeq(modseq), envelope: bytes(envelope), body: bytes(body),
            bodyStructure: bytes(structure), parts: tree, header: header.map(bytes), isExpunged: expunged,
            saveDate: saved, preview: preview)
    }

    public func contentBytes(account: AccountID, slices: [ContentSlice], logger: Logger) async throws(StoreError)
        -> [[UInt8]]
    {
        guard !slices.isEmpty else { return [] }
        let client = self.client
        let ids = slices.map(\.contentID)
        let offsets = slices.map { Int64($0.range.lowerBound) + 1 }
        let lengths = slices.map { Int64($0.range.count) }
        return try await run(logger) {
            var result = [[UInt8]](repeating: [], count: slices.count)
            // The arrays are hidden from the planner (see `selectChanges`), which otherwise plans for their length.
            let rows = try await client.prepared(
                """
                SELECT s.i, substring(c.body FROM s.off::int FOR s.len::int)
                FROM unnest((SELECT \(ids)::bigint[]), (SELECT \(offsets)::bigint[]), (SELECT \(lengths)::bigint[]))
                    WITH ORDINALITY AS s(content_id, off, len, i)
                JOIN contents c ON c.account_id = \(account.rawValue) AND c.content_id = s.content_id
                """, logger: logger)
            for try await row in rows {
                let (index, bytes) = try row.decode((Int64, ByteBuffer).self)
                let i = Int(index) - 1
                if i >= 0 && i < result.count { result[i] = Array(bytes.readableBytesView) }
            }
            return result
        }
    }
}

/// A parsed message in the form the `contents` table keeps it.
/// Reads a row's cells in order, each decoded as a concrete type.
struct CellReader {
    var cells: PostgresRow.Iterator

    init(_ row: PostgresRow) { cells = row.makeIterator() }

    mutating func next<T: PostgresDecodable>(_ type: T.Type) throws -> T {
        guard let cell = cells.next() else { throw StoreError.internal("the row has fewer columns than expected") }
        return try cell.decode(T.self)
    }
}

struct ContentRow: Sendable {
    /// The version of the derived keys this code computes (`contents.keys_version`).
    static let keysVersion: Int16 = 6

    var size: Int32
    var headerLength: Int32
    var body: ByteBuffer
    var envelope: ByteBuffer
    var bodySummary: ByteBuffer
    var bodyStructure: ByteBuffer
    var parts: ByteBuffer
    var sentDay: Int32?
    var from, to, cc, bcc, subject, headers, text: String
    var preview: String?
    /// SHA-256 of the stored bytes: lets an import recognise a message it already stored.
    var sha256: ByteBuffer
    var sort: SortKeys
    /// The header's summary as stored (`summary(ofHeader:)`).
    var summaryHeader: ByteBuffer

    init(_ message: ParsedMessage, internalDate: InternalDate) throws(StoreError) {
        guard message.bytes.count <= Int(Int32.max) else { throw StoreError.cannot("Message too large") }
        size = Int32(message.bytes.count)
        headerLength = Int32(message.headerLength)
        body = ByteBuffer(bytes: message.bytes)
        envelope = ByteBuffer(bytes: message.envelope)
        bodySummary = ByteBuffer(bytes: message.body)
        bodyStructure = ByteBuffer(bytes: message.bodyStructure)
        parts = ByteBuffer(bytes: message.root.json)
        // SENTBEFORE/ON/SINCE use the Date: header's day; without one, the internal date's (as Dovecot does).
        let sent = message.sentDate ?? internalDate.localDate
        sentDay = Int32(truncatingIfNeeded: sent.dayNumber)
        let clean = Self.clean
        from = clean(message.search.from)
        to = clean(message.search.to)
        cc = clean(message.search.cc)
        bcc = clean(message.search.bcc)
        subject = clean(message.search.subject)
        headers = clean(message.search.headers)
        text = clean(message.search.body)
        preview = message.preview.map(clean)
        sha256 = ByteBuffer(bytes: Array(SHA256.hash(data: message.bytes)))
        sort = Self.cleaned(message.sortKeys)
        summaryHeader = Self.summary(ofHeader: message.bytes.prefix(message.headerLength))
    }

    /// A header's `HeaderFilter.summary` as stored: empty when longer than `FetchColumns.headerLimit` (the most a FETCH
    /// reads of a header with the row; beyond it, HEADER.FIELDS reads the header in pieces). A summary is never empty
    /// otherwise: it always ends with the blank line.
    static func summary(ofHeader header: some Collection<UInt8>) -> ByteBuffer {
        let summary = HeaderFilter.summary(header)
        return summary.count <= FetchColumns.headerLimit ? ByteBuffer(bytes: summary) : ByteBuffer()
    }

    /// PostgreSQL text cannot hold NUL.
    static func clean(_ s: String) -> String {
        // A byte scan (memchr): Foundation's `contains` on a String is a locale-aware search, a tenth of an APPEND's
        // CPU, and even a loop over the UTF-8 view was a hundredth.
        let hasNUL =
            s.utf8.withContiguousStorageIfAvailable { bytes in
                bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false
            } ?? s.utf8.contains(0)
        guard hasNUL else { return s }
        return String(decoding: s.utf8.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }

    /// The sort and thread keys as text columns can hold them.
    static func cleaned(_ keys: SortKeys) -> SortKeys {
        var sort = keys
        sort.subject = clean(sort.subject)
        sort.from = clean(sort.from)
        sort.to = clean(sort.to)
        sort.cc = clean(sort.cc)
        sort.displayFrom = clean(sort.displayFrom)
        sort.displayTo = clean(sort.displayTo)
        sort.messageID = sort.messageID.map(clean)
        sort.references = sort.references.map(clean)
        return sort
    }
}

extension Array {
    /// First index whose element fails `belongsBefore` (binary search on an array sorted by what it tests).
    func partitionPoint(_ belongsBefore: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if belongsBefore(self[mid]) { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

extension PostgresMailStore {
    /// Quota use and limits of an account (RFC 9208): counters kept by triggers, limits set by the administrator.
    public func quota(account: AccountID, logger: Logger) async throws(StoreError) -> QuotaUsage {
        let client = self.client
        return try await run(logger) {
            let rows = try await client.query(
                """
                SELECT used_bytes, used_messages, quota_bytes, quota_messages FROM accounts
                WHERE account_id = \(account.rawValue)
                """, logger: logger
            ).collect()
            guard let row = rows.first else { throw StoreError.accountNotFound }
            let (bytes, messages, byteLimit, messageLimit) = try row.decode((Int64, Int64, Int64?, Int64?).self)
            return QuotaUsage(
                usedBytes: bytes, usedMessages: messages, byteLimit: byteLimit, messageLimit: messageLimit)
        }
    }

    /// How many messages of `mailbox` have each SHA-256 digest (an import skips bytes it already stored).
    public func contentDigests(account: AccountID, mailbox: MailboxName, logger: Logger) async throws(StoreError)
        -> [[UInt8]: Int]
    {
        let client = self.client
        return try await run(logger) {
            var digests: [[UInt8]: Int] = [:]
            let rows = try await client.query(
                """
                SELECT c.sha256 FROM contents c
                JOIN messages m ON m.account_id = c.account_id AND m.content_id = c.content_id
                JOIN mailboxes b ON b.account_id = m.account_id AND b.mailbox_id = m.mailbox_id
                WHERE c.account_id = \(account.rawValue) AND b.name = \(mailbox.name) AND c.sha256 IS NOT NULL
                """, logger: logger)
            for try await digest in rows.decode(ByteBuffer.self) {
                digests[Array(digest.readableBytesView), default: 0] += 1
            }
            return digests
        }
    }

    /// The digest `contentDigests` reports for a parsed message.
    public static func digest(of message: ParsedMessage) -> [UInt8] { Array(SHA256.hash(data: message.bytes)) }
}
