import Crypto
import Foundation
import GRDB
import IMAPEngine
import Logging

extension SQLiteMailStore {
    // MARK: selecting and syncing

    public func select(account: AccountID, name: MailboxName, claimRecent: Bool, logger: Logger)
        async throws(StoreError) -> MailboxSnapshot
    {
        let selected = self.selected
        let read: @Sendable (Database, Bool) throws -> MailboxSnapshot = { db, claimRecent in
            guard
                let row = try Row.fetchOne(
                    db.cached(
                        """
                        SELECT mailbox_id, uidvalidity, uidnext, highestmodseq, keywords, first_recent_uid
                        FROM mailboxes WHERE account_id = ? AND name = ?
                        """), arguments: [account.rawValue, name.name])
            else { throw StoreError.mailboxNotFound }
            let id: Int64 = row[0]
            let next: Int64 = row[2]
            let key = SelectedUIDs.Key(mailbox: id, uidValidity: row[1])
            let state = (highestModSeq: row[3] as Int64, uidNext: next)
            let uids: [UID]
            let firstUnseen: Int64?
            if let known = selected.value(key), known.highestModSeq == state.highestModSeq,
                known.uidNext == state.uidNext
            {
                (uids, firstUnseen) = (known.uids, known.firstUnseen)
            } else {
                uids = try Self.integers(db, "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", [id])
                    .map { UID(UInt32(truncatingIfNeeded: $0)) }
                // In key order, stopping at the first match (min() with this filter scans the whole mailbox).
                firstUnseen = try Int64.fetchOne(
                    db.cached("SELECT uid FROM messages WHERE mailbox_id = ? AND flags & 8 = 0 ORDER BY uid LIMIT 1"),
                    arguments: [id])
                selected.store(
                    SelectedUIDs(
                        highestModSeq: state.highestModSeq, uidNext: next, uids: uids, firstUnseen: firstUnseen),
                    at: key
                ) { old, new in old.highestModSeq <= new.highestModSeq }
            }
            let firstRecent: Int64 = row[5]
            // The claim is taken in this write: exactly one session sees a message as \Recent.
            if claimRecent, firstRecent < next {
                try db.cached("UPDATE mailboxes SET first_recent_uid = ? WHERE mailbox_id = ?").execute(arguments: [
                    next, id,
                ])
            }
            let recent = Array(uids[uids.partitionPoint { Int64($0.rawValue) < firstRecent }...])
            return MailboxSnapshot(
                id: MailboxID(rawValue: id), name: name, uidValidity: UInt32(truncatingIfNeeded: row[1] as Int64),
                uidNext: UID(UInt32(truncatingIfNeeded: next)), highestModSeq: ModSeq(row[3] as Int64), uids: uids,
                firstUnseen: firstUnseen.map { UID(UInt32(truncatingIfNeeded: $0)) },
                keywords: Self.decode(row[4]), recent: recent)
        }
        if claimRecent {
            // A claim that changes nothing needs no write: read first, and write only when something is unclaimed.
            let snapshot = try await self.read(logger) { db in try read(db, false) }
            guard !snapshot.recent.isEmpty else { return snapshot }
            return try await write(logger) { db in try read(db, true) }
        }
        // Without a claim (EXAMINE) the session shows what is recent without taking it (as Dovecot does).
        return try await self.read(logger) { db in try read(db, false) }
    }

    public func claimRecent(account: AccountID, mailbox: MailboxID, upTo: UID, logger: Logger)
        async throws(StoreError) -> ClosedRange<UInt32>?
    {
        try await write(logger) { db in
            guard
                let old = try Int64.fetchOne(
                    db.cached("SELECT first_recent_uid FROM mailboxes WHERE mailbox_id = ? AND account_id = ?"),
                    arguments: [mailbox.rawValue, account.rawValue]), old <= Int64(upTo.rawValue)
            else { return nil }
            try db.cached("UPDATE mailboxes SET first_recent_uid = ? WHERE mailbox_id = ?").execute(arguments: [
                Int64(upTo.rawValue) + 1, mailbox.rawValue,
            ])
            return UInt32(truncatingIfNeeded: old)...upTo.rawValue
        }
    }

    public func changes(account: AccountID, mailbox: MailboxID, since: ModSeq, logger: Logger)
        async throws(StoreError) -> MailboxDelta
    {
        try await read(logger) { db in try Self.changes(db, account: account, mailbox: mailbox, since: since) }
    }

    static func changes(_ db: Database, account: AccountID, mailbox: MailboxID, since: ModSeq) throws -> MailboxDelta {
        guard
            let row = try Row.fetchOne(
                db.cached(
                    """
                    SELECT vanished_floor, highestmodseq, first_recent_uid FROM mailboxes
                    WHERE mailbox_id = ? AND account_id = ?
                    """), arguments: [mailbox.rawValue, account.rawValue])
        else { throw StoreError.mailboxNotFound }
        var delta = MailboxDelta(highestModSeq: max(since, ModSeq(row[1] as Int64)))
        delta.firstUnclaimedUID = UID(UInt32(clamping: row[2] as Int64))
        delta.expungedIncomplete = since.rawValue < (row[0] as Int64)
        // The modseq indexes, named: without statistics SQLite prefers the primary key for ORDER BY uid and read
        // every row of the mailbox (and every tombstone) on each call, most of the server's time with ten clients
        // on one busy INBOX.
        for message in try Row.fetchAll(
            db.cached(
                """
                SELECT uid, flags, keywords, modseq FROM messages INDEXED BY messages_modseq
                WHERE mailbox_id = ? AND modseq > ? ORDER BY uid
                """),
            arguments: [mailbox.rawValue, since.rawValue])
        {
            delta.changed.append(
                .init(
                    uid: UID(UInt32(truncatingIfNeeded: message[0] as Int64)), flags: flags(message[1], message[2]),
                    modSeq: ModSeq(message[3] as Int64)))
        }
        for tombstone in try Row.fetchAll(
            db.cached(
                """
                SELECT uid, modseq FROM expunged INDEXED BY expunged_modseq
                WHERE mailbox_id = ? AND modseq > ? ORDER BY uid
                """),
            arguments: [mailbox.rawValue, since.rawValue])
        {
            delta.expunged.append(UID(UInt32(truncatingIfNeeded: tombstone[0] as Int64)))
            let modSeq = ModSeq(tombstone[1] as Int64)
            delta.lowestExpungedModSeq = min(delta.lowestExpungedModSeq ?? modSeq, modSeq)
        }
        return delta
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

    public func append(
        account: AccountID, mailbox: MailboxName, message: ParsedMessage, flags: MessageFlags, date: InternalDate,
        sharing: Int64?, claimRecent: Bool, logger: Logger
    ) async throws(StoreError) -> (result: AppendResult, contentID: Int64) {
        // The content is prepared (parsed columns, digest) before the write lock is taken.
        let content = try ContentColumns(message, internalDate: date)
        do {
            return try await appendOnce(
                account: account, mailbox: mailbox, content: content, flags: flags, date: date, sharing: sharing,
                claimRecent: claimRecent, logger: logger)
        } catch .overQuota {
            // Over the limit counting what the account retains (content of expunged messages, of deleted
            // mailboxes): release that and try once more.
            _ = try await releaseRetainedContent(account: account, logger: logger)
            return try await appendOnce(
                account: account, mailbox: mailbox, content: content, flags: flags, date: date, sharing: sharing,
                claimRecent: claimRecent, logger: logger)
        }
    }

    private func appendOnce(
        account: AccountID, mailbox: MailboxName, content: ContentColumns, flags: MessageFlags, date: InternalDate,
        sharing: Int64?, claimRecent: Bool, logger: Logger
    ) async throws(StoreError) -> (result: AppendResult, contentID: Int64) {
        try await write(logger) { db in
            let stored = try Self.insertMessage(
                db, account: account, mailbox: mailbox, content: content, flags: flags, date: date, sharing: sharing,
                claimRecent: claimRecent)
            try Self.checkQuota(db, account: account)
            return stored
        }
    }

    /// Stores one message in the open write transaction: content (unless `sharing` names content of the account
    /// that still exists), UID and modseq, the message row and the feed row.
    static func insertMessage(
        _ db: Database, account: AccountID, mailbox: MailboxName, content: ContentColumns, flags: MessageFlags,
        date: InternalDate, sharing: Int64?, claimRecent: Bool
    ) throws -> (result: AppendResult, contentID: Int64) {
        guard
            let box = try Row.fetchOne(
                db.cached(
                    """
                    SELECT mailbox_id, uidvalidity, uidnext, highestmodseq, keywords, first_recent_uid
                    FROM mailboxes WHERE account_id = ? AND name = ?
                    """), arguments: [account.rawValue, mailbox.name])
        else { throw StoreError.mailboxNotFound }
        let id: Int64 = box[0]
        let uid: Int64 = box[2]
        let modSeq = (box[3] as Int64) + 1
        guard uid <= Int64(UInt32.max) else { throw StoreError.cannot("The mailbox has no UIDs left") }
        var contentID: Int64
        if let sharing,
            try Int64.fetchOne(
                db.cached("SELECT 1 FROM contents WHERE content_id = ? AND account_id = ?"),
                arguments: [sharing, account.rawValue]) != nil
        {
            contentID = sharing
        } else {
            contentID = try content.insert(db, account: account)
        }
        let keywords = try mergedKeywords(box[4], adding: flags.keywords)
        let firstRecent: Int64 = box[5]
        try db.cached(
            """
            UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, keywords = ?, first_recent_uid = ?
            WHERE mailbox_id = ?
            """
        ).execute(arguments: [uid + 1, modSeq, keywords, claimRecent ? uid + 1 : firstRecent, id])
        try insertMessageRow(
            db,
            AccountExport.Message(
                mailbox: id, uid: uid, contentID: contentID, flags: Int64(flags.system.rawValue),
                keywords: flags.keywords, modSeq: modSeq, internalDate: date.secondsSinceEpoch,
                internalZone: Int64(date.zoneMinutes), size: Int64(content.size), savedAt: now, expungedAt: nil),
            account: account.rawValue)
        try announceChange(db, account: account, mailbox: id, modSeq: modSeq)
        var result = AppendResult(
            uidValidity: UInt32(truncatingIfNeeded: box[1] as Int64), uid: UID(UInt32(truncatingIfNeeded: uid)),
            modSeq: ModSeq(modSeq))
        if claimRecent, firstRecent <= uid {
            result.recent = UInt32(truncatingIfNeeded: firstRecent)...UInt32(truncatingIfNeeded: uid)
        }
        return (result, contentID)
    }

    /// Inserts a message row (`message.expungedAt` is not used) in the open write transaction.
    static func insertMessageRow(_ db: Database, _ message: AccountExport.Message, account: Int64) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO messages (mailbox_id, uid, account_id, content_id, flags, keywords, modseq, internal_date,
                    internal_zone, size, saved_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        try statement.execute(arguments: [
            message.mailbox, message.uid, account, message.contentID, message.flags, encode(message.keywords),
            message.modSeq, message.internalDate, message.internalZone, message.size, message.savedAt,
        ])
    }

    /// The mailbox's keywords (JSON) with `adding` merged in.
    static func mergedKeywords(_ current: String, adding: [String]) throws -> String {
        guard !adding.isEmpty else { return current }
        var keywords = decode(current)
        for keyword in adding where !keywords.contains(keyword) { keywords.append(keyword) }
        return encode(keywords)
    }

    /// Quota (RFC 9208): a write that takes the account past a limit fails as a whole (thrown inside the
    /// transaction). Stored bytes count too: content kept for expunged messages (the caller releases it and tries
    /// again).
    static func checkQuota(_ db: Database, account: AccountID) throws {
        if try Int64.fetchOne(
            db.cached(
                """
                SELECT 1 FROM accounts WHERE account_id = ?
                    AND ((quota_bytes IS NOT NULL AND (used_bytes > quota_bytes OR stored_bytes > quota_bytes))
                        OR (quota_messages IS NOT NULL AND used_messages > quota_messages))
                """), arguments: [account.rawValue]) != nil
        {
            throw StoreError.overQuota
        }
    }

    public func appendAll(
        account: AccountID, mailbox: MailboxName, messages: [(ParsedMessage, MessageFlags, InternalDate)],
        logger: Logger
    ) async throws(StoreError) -> [AppendResult] {
        var prepared: [(ContentColumns, MessageFlags, InternalDate)] = []
        for (message, flags, date) in messages {
            prepared.append((try ContentColumns(message, internalDate: date), flags, date))
        }
        let rows = prepared
        let once: @Sendable (Database) throws -> [AppendResult] = { db in
            var results: [AppendResult] = []
            for (content, flags, date) in rows {
                results.append(
                    try Self.insertMessage(
                        db, account: account, mailbox: mailbox, content: content, flags: flags, date: date,
                        sharing: nil, claimRecent: false
                    ).result)
            }
            try Self.checkQuota(db, account: account)
            return results
        }
        do {
            return try await write(logger, once)
        } catch .overQuota {
            _ = try await releaseRetainedContent(account: account, logger: logger)
            return try await write(logger, once)
        }
    }

    /// Drops the content an account keeps only for expunged messages, and content no message refers to. Returns the
    /// bytes released.
    func releaseRetainedContent(account: AccountID, logger: Logger) async throws(StoreError) -> Int64 {
        let released = try await write(logger) { db -> Int64 in
            let before =
                try Int64.fetchOne(
                    db.cached("SELECT stored_bytes FROM accounts WHERE account_id = ?"), arguments: [account.rawValue])
                ?? 0
            try db.cached("UPDATE expunged SET content_id = NULL WHERE account_id = ? AND content_id IS NOT NULL")
                .execute(arguments: [account.rawValue])
            try db.cached(
                """
                DELETE FROM contents WHERE account_id = ? AND NOT EXISTS (
                    SELECT 1 FROM messages m WHERE m.account_id = contents.account_id
                        AND m.content_id = contents.content_id)
                """
            ).execute(arguments: [account.rawValue])
            let after =
                try Int64.fetchOne(
                    db.cached("SELECT stored_bytes FROM accounts WHERE account_id = ?"), arguments: [account.rawValue])
                ?? 0
            return before - after
        }
        if released > 0 { logger.notice("released retained content for quota", metadata: ["bytes": "\(released)"]) }
        return released
    }

    public func updateFlags(account: AccountID, mailbox: MailboxID, uids: [UID], update: FlagUpdate, logger: Logger)
        async throws(StoreError) -> [StoredFlags]
    {
        var unique: [String] = []
        for keyword in update.flags.keywords where !unique.contains(keyword) { unique.append(keyword) }
        let keywords = unique
        let wanted = Set(uids)
        return try await write(logger) { db in
            guard
                let box = try Row.fetchOne(
                    db.cached("SELECT highestmodseq, keywords FROM mailboxes WHERE mailbox_id = ? AND account_id = ?"),
                    arguments: [mailbox.rawValue, account.rawValue])
            else { throw StoreError.mailboxNotFound }
            let modSeq = (box[0] as Int64) + 1
            let unchangedSince = update.unchangedSince?.rawValue ?? Int64.max
            var result: [StoredFlags] = []
            var changedAny = false
            for row in try Self.rows(
                db, account: account, mailbox: mailbox, uids: uids, columns: "uid, flags, keywords, modseq")
            {
                let uid = UID(UInt32(truncatingIfNeeded: row[0] as Int64))
                guard wanted.contains(uid) else { continue }
                let current = Self.flags(row[1], row[2])
                let currentModSeq: Int64 = row[3]
                guard currentModSeq <= unchangedSince else {
                    result.append(
                        StoredFlags(
                            uid: uid, flags: current, modSeq: ModSeq(currentModSeq), changed: false,
                            conditionFailed: true))
                    continue
                }
                var new = current
                switch update.kind {
                case .replace:
                    new = MessageFlags(system: update.flags.system, keywords: keywords)
                case .add:
                    new.system = SystemFlags(rawValue: current.system.rawValue | update.flags.system.rawValue)
                    new.keywords = current.keywords + keywords.filter { !current.keywords.contains($0) }
                case .remove:
                    new.system = SystemFlags(rawValue: current.system.rawValue & ~update.flags.system.rawValue)
                    new.keywords = current.keywords.filter { !keywords.contains($0) }
                }
                if new == current {
                    result.append(StoredFlags(uid: uid, flags: current, modSeq: ModSeq(currentModSeq), changed: false))
                    continue
                }
                try db.cached(
                    "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?"
                ).execute(arguments: [
                    Int64(new.system.rawValue), Self.encode(new.keywords), modSeq, mailbox.rawValue,
                    Int64(uid.rawValue),
                ])
                changedAny = true
                result.append(StoredFlags(uid: uid, flags: new, modSeq: ModSeq(modSeq), changed: true))
            }
            if changedAny {
                // A modseq is taken only when something changed (STYLE.md §4.8).
                let added = update.kind == .remove ? [] : keywords
                try db.cached("UPDATE mailboxes SET highestmodseq = ?, keywords = ? WHERE mailbox_id = ?").execute(
                    arguments: [modSeq, try Self.mergedKeywords(box[1], adding: added), mailbox.rawValue])
                try Self.announceChange(db, account: account, mailbox: mailbox.rawValue, modSeq: modSeq)
            }
            return result
        }
    }

    /// The message rows of `uids` (ascending, distinct), `columns` selected: by their range when the set fills most
    /// of it, else one lookup per UID.
    /// The UID range to read whole for `uids` when they fill most of it (else nil: one lookup per UID is cheaper).
    static func rangeRead(_ uids: [UID]) -> ClosedRange<UID>? {
        guard let low = uids.min(), let high = uids.max() else { return nil }
        return uids.count * 2 >= Int(high.rawValue - low.rawValue) + 1 ? low...high : nil
    }

    static func rows(
        _ db: Database, account: AccountID, mailbox: MailboxID, uids: [UID], columns: String,
        table: String = "messages"
    ) throws -> [Row] {
        if let range = rangeRead(uids) {
            return try Row.fetchAll(
                // A few fixed column lists and two tables: cached.
                db.cachedStatement(
                    sql: """
                        SELECT \(columns) FROM \(table) WHERE mailbox_id = ? AND account_id = ? AND uid BETWEEN ? AND ?
                        ORDER BY uid
                        """),
                arguments: [
                    mailbox.rawValue, account.rawValue, Int64(range.lowerBound.rawValue),
                    Int64(range.upperBound.rawValue),
                ])
        }
        let statement = try db.cachedStatement(
            sql: "SELECT \(columns) FROM \(table) WHERE mailbox_id = ? AND account_id = ? AND uid = ?")
        var rows: [Row] = []
        for uid in uids.sorted() {
            if let row = try Row.fetchOne(
                statement, arguments: [mailbox.rawValue, account.rawValue, Int64(uid.rawValue)])
            {
                rows.append(row)
            }
        }
        return rows
    }

    public func expunge(account: AccountID, mailbox: MailboxID, uids: [UID]?, logger: Logger)
        async throws(StoreError) -> ExpungeResult
    {
        try await write(logger) { db in
            try Self.expunge(db, account: account, mailbox: mailbox, onlyDeleted: true, uids: uids)
        }
    }

    /// Moves messages into tombstones with one new modseq, in the open write transaction.
    static func expunge(_ db: Database, account: AccountID, mailbox: MailboxID, onlyDeleted: Bool, uids: [UID]?)
        throws -> ExpungeResult
    {
        guard
            let modSeqBefore = try Int64.fetchOne(
                db.cached("SELECT highestmodseq FROM mailboxes WHERE mailbox_id = ? AND account_id = ?"),
                arguments: [mailbox.rawValue, account.rawValue])
        else { throw StoreError.mailboxNotFound }
        let columns = "uid, flags"
        let candidates: [Row]
        if let uids {
            candidates = try rows(db, account: account, mailbox: mailbox, uids: uids, columns: columns)
        } else {
            candidates = try Row.fetchAll(
                db.cached("SELECT uid, flags FROM messages WHERE mailbox_id = ? ORDER BY uid"),
                arguments: [mailbox.rawValue])
        }
        let only = uids.map(Set.init)
        var gone: [Int64] = []
        for row in candidates {
            let uid: Int64 = row[0]
            let flags: Int64 = row[1]
            if onlyDeleted && flags & Int64(SystemFlags.deleted.rawValue) == 0 { continue }
            if let only, !only.contains(UID(UInt32(truncatingIfNeeded: uid))) { continue }
            gone.append(uid)
        }
        guard !gone.isEmpty else { return ExpungeResult(uids: [], modSeq: nil) }
        let modSeq = modSeqBefore + 1
        let now = Self.now
        for uid in gone {
            try db.cached(
                """
                INSERT OR REPLACE INTO expunged (mailbox_id, uid, account_id, modseq, content_id, flags, keywords,
                    internal_date, internal_zone, size, expunged_at)
                SELECT mailbox_id, uid, account_id, ?, content_id, flags, keywords, internal_date, internal_zone,
                    size, ?
                FROM messages WHERE mailbox_id = ? AND uid = ?
                """
            ).execute(arguments: [modSeq, now, mailbox.rawValue, uid])
            try db.cached("DELETE FROM messages WHERE mailbox_id = ? AND uid = ?").execute(arguments: [
                mailbox.rawValue, uid,
            ])
        }
        try db.cached("UPDATE mailboxes SET highestmodseq = ? WHERE mailbox_id = ?").execute(arguments: [
            modSeq, mailbox.rawValue,
        ])
        try announceChange(db, account: account, mailbox: mailbox.rawValue, modSeq: modSeq)
        return ExpungeResult(uids: gone.map { UID(UInt32(truncatingIfNeeded: $0)) }, modSeq: ModSeq(modSeq))
    }

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
    /// originals in the same transaction (RFC 6851 §3.3), exempt from the quota check (it adds and removes the same
    /// messages).
    private func copyOrMove(
        account: AccountID, from: MailboxID, uids: [UID], to: MailboxName, move: Bool, logger: Logger
    ) async throws(StoreError) -> CopyResult {
        let wanted = Set(uids)
        return try await write(logger) { db in
            guard
                let target = try Row.fetchOne(
                    db.cached(
                        """
                        SELECT mailbox_id, uidvalidity, uidnext, highestmodseq, keywords FROM mailboxes
                        WHERE account_id = ? AND name = ?
                        """), arguments: [account.rawValue, to.name])
            else { throw StoreError.mailboxNotFound }
            guard
                try Int64.fetchOne(
                    db.cached("SELECT 1 FROM mailboxes WHERE mailbox_id = ? AND account_id = ?"),
                    arguments: [from.rawValue, account.rawValue]) != nil
            else { throw StoreError.mailboxNotFound }
            let destination: Int64 = target[0]
            let source = try Self.rows(
                db, account: account, mailbox: from, uids: uids,
                columns: "uid, content_id, flags, keywords, internal_date, internal_zone, size"
            ).filter { wanted.contains(UID(UInt32(truncatingIfNeeded: $0[0] as Int64))) }
            guard !source.isEmpty else { return CopyResult(uidValidity: 0, sourceUIDs: [], destinationUIDs: []) }
            var next: Int64 = target[2]
            guard next + Int64(source.count) - 1 <= Int64(UInt32.max) else {
                throw StoreError.cannot("The mailbox has no UIDs left")
            }
            let modSeq = (target[3] as Int64) + 1
            var keywords = Self.decode(target[4])
            var sources: [UID] = []
            var destinations: [UID] = []
            let now = Self.now
            for row in source {
                let messageKeywords = Self.decode(row[3])
                for keyword in messageKeywords where !keywords.contains(keyword) { keywords.append(keyword) }
                try Self.insertMessageRow(
                    db,
                    AccountExport.Message(
                        mailbox: destination, uid: next, contentID: row[1], flags: row[2], keywords: messageKeywords,
                        modSeq: modSeq, internalDate: row[4], internalZone: row[5], size: row[6], savedAt: now,
                        expungedAt: nil),
                    account: account.rawValue)
                sources.append(UID(UInt32(truncatingIfNeeded: row[0] as Int64)))
                destinations.append(UID(UInt32(truncatingIfNeeded: next)))
                next += 1
            }
            try db.cached("UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, keywords = ? WHERE mailbox_id = ?")
                .execute(arguments: [next, modSeq, Self.encode(keywords), destination])
            try Self.announceChange(db, account: account, mailbox: destination, modSeq: modSeq)
            if move {
                _ = try Self.expunge(db, account: account, mailbox: from, onlyDeleted: false, uids: sources)
            } else {
                try Self.checkQuota(db, account: account)
            }
            return CopyResult(
                uidValidity: UInt32(truncatingIfNeeded: target[1] as Int64), sourceUIDs: sources,
                destinationUIDs: destinations)
        }
    }

    // MARK: reading

    public func fetch(
        account: AccountID, mailbox: MailboxID, uids: [UID], columns: FetchColumns, byteBudget: Int?, logger: Logger
    ) async throws(StoreError) -> FetchedBatch {
        try await read(logger) { db in
            try Self.fetch(db, account: account, mailbox: mailbox, uids: uids, columns: columns, budget: byteBudget)
        }
    }

    /// The content columns FETCH may ask for, in the order they are selected and decoded.
    static let contentColumns: [(FetchColumns, String)] = [
        (.envelope, "c.envelope"),
        (.body, "c.body_summary"),
        (.bodyStructure, "c.body_structure"),
        (.parts, "c.parts"),
        // A header over the limit is not read here: FETCH then reads it as a section of the content, in pieces.
        (
            .header,
            "CASE WHEN c.header_length <= \(FetchColumns.headerLimit) THEN substr(c.body, 1, c.header_length) END"
        ),
        (.preview, "c.preview"),
    ]

    static func fetch(
        _ db: Database, account: AccountID, mailbox: MailboxID, uids: [UID], columns: FetchColumns, budget: Int?
    ) throws -> FetchedBatch {
        let readsContent = columns.readsContent
        // Tombstones keep no save date.
        func list(saveDate: String) -> String {
            var list = "x.uid, x.content_id, x.flags, x.keywords, x.internal_date, x.internal_zone, x.size, x.modseq"
            list += columns.contains(.saveDate) ? ", " + saveDate : ", NULL"
            list += readsContent ? ", c.header_length" : ", 0"
            for (column, expression) in contentColumns where columns.contains(column) { list += ", " + expression }
            return list
        }
        let join = readsContent ? " JOIN contents c ON c.content_id = x.content_id" : ""
        let live = try db.cachedStatement(
            sql: """
                SELECT \(list(saveDate: "x.saved_at")) FROM messages x\(join)
                WHERE x.mailbox_id = ? AND x.account_id = ? AND x.uid = ?
                """)
        let gone = try db.cachedStatement(
            sql: """
                SELECT \(list(saveDate: "NULL")) FROM expunged x\(join)
                WHERE x.mailbox_id = ? AND x.account_id = ? AND x.uid = ? AND x.content_id IS NOT NULL
                """)
        // Ascending UIDs that fill most of their range are read with one statement through a cursor (no row copies),
        // merged with the list; others one lookup each. Missing ones are looked for among the tombstones.
        var range: RowCursor?
        if let span = rangeRead(uids), zip(uids, uids.dropFirst()).allSatisfy({ $0.0 < $0.1 }) {
            range = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT \(list(saveDate: "x.saved_at")) FROM messages x\(join)
                        WHERE x.mailbox_id = ? AND x.account_id = ? AND x.uid BETWEEN ? AND ? ORDER BY x.uid
                        """),
                arguments: [
                    mailbox.rawValue, account.rawValue, Int64(span.lowerBound.rawValue),
                    Int64(span.upperBound.rawValue),
                ])
        }
        var pending = try range?.next()
        var records: [MessageRecord] = []
        var used = 0
        var covered = 0
        for uid in uids {
            if let budget, used > budget, !records.isEmpty { break }
            covered += 1
            let arguments: StatementArguments = [mailbox.rawValue, account.rawValue, Int64(uid.rawValue)]
            var found: Row?
            var expunged = false
            if let cursor = range {
                while let row = pending, UInt32(truncatingIfNeeded: row[0] as Int64) < uid.rawValue {
                    pending = try cursor.next()
                }
                if let row = pending, UInt32(truncatingIfNeeded: row[0] as Int64) == uid.rawValue { found = row }
            } else {
                found = try Row.fetchOne(live, arguments: arguments)
            }
            if found == nil {
                found = try Row.fetchOne(gone, arguments: arguments)
                expunged = true
            }
            guard let row = found else { continue }
            // Read out before the cursor moves on (its row is reused).
            let record = try record(row, columns: columns, expunged: expunged)
            if !expunged, let cursor = range { pending = try cursor.next() }
            used += record.envelope.count + record.body.count + record.bodyStructure.count + (record.header?.count ?? 0)
            records.append(record)
        }
        return FetchedBatch(records: records, covered: covered)
    }

    static func record(_ row: Row, columns: FetchColumns, expunged: Bool) throws -> MessageRecord {
        var index = 10
        func next() -> DatabaseValue {
            defer { index += 1 }
            return row[index] as DatabaseValue
        }
        func bytes(_ column: FetchColumns) -> [UInt8]? {
            guard columns.contains(column) else { return nil }
            return Data.fromDatabaseValue(next()).map { Array($0) } ?? []
        }
        let envelope = bytes(.envelope)
        let body = bytes(.body)
        let structure = bytes(.bodyStructure)
        let parts = bytes(.parts)
        let header: [UInt8]? = columns.contains(.header) ? Data.fromDatabaseValue(next()).map { Array($0) } : nil
        let preview: String? = columns.contains(.preview) ? String.fromDatabaseValue(next()) : nil
        var tree: MessagePart?
        if let parts, !parts.isEmpty {
            do {
                tree = try JSONDecoder().decode(MessagePart.self, from: Data(parts))
            } catch {
                throw StoreError.internal("a stored MIME tree does not decode: \(error)")
            }
        }
        return MessageRecord(
            uid: UID(UInt32(truncatingIfNeeded: row[0] as Int64)), contentID: row[1], flags: flags(row[2], row[3]),
            internalDate: InternalDate(secondsSinceEpoch: row[4], zoneMinutes: row[5]), size: row[6],
            headerLength: row[9], modSeq: ModSeq(row[7] as Int64), envelope: envelope ?? [], body: body ?? [],
            bodyStructure: structure ?? [], parts: tree, header: header, isExpunged: expunged,
            saveDate: row[8] as Int64?, preview: preview)
    }

    public func flags(account: AccountID, mailbox: MailboxID, uids: [UID], logger: Logger) async throws(StoreError)
        -> [MessageFlagsRecord]
    {
        try await read(logger) { db in
            var result: [MessageFlagsRecord] = []
            result.reserveCapacity(uids.count)
            var missing: [UID] = []
            if let range = Self.rangeRead(uids) {
                // The range's rows in UID order, read through a cursor (no row copies), merged with the sorted UIDs.
                let sorted = uids.sorted()
                var next = sorted.startIndex
                let cursor = try Row.fetchCursor(
                    db.cached(
                        """
                        SELECT uid, flags, keywords, modseq FROM messages
                        WHERE mailbox_id = ? AND account_id = ? AND uid BETWEEN ? AND ? ORDER BY uid
                        """),
                    arguments: [
                        mailbox.rawValue, account.rawValue, Int64(range.lowerBound.rawValue),
                        Int64(range.upperBound.rawValue),
                    ])
                while let row = try cursor.next() {
                    let uid = UID(UInt32(truncatingIfNeeded: row[0] as Int64))
                    while next < sorted.endIndex, sorted[next] < uid {
                        missing.append(sorted[next])
                        next += 1
                    }
                    guard next < sorted.endIndex, sorted[next] == uid else { continue }
                    next += 1
                    let keywords: String = row[2]
                    result.append(
                        .init(uid: uid, flags: Self.flags(row[1], keywords), modSeq: ModSeq(row[3] as Int64)))
                }
                missing += sorted[next...]
            } else {
                var found = Set<UID>()
                for row in try Self.rows(
                    db, account: account, mailbox: mailbox, uids: uids, columns: "uid, flags, keywords, modseq")
                {
                    let uid = UID(UInt32(truncatingIfNeeded: row[0] as Int64))
                    found.insert(uid)
                    result.append(
                        .init(uid: uid, flags: Self.flags(row[1], row[2]), modSeq: ModSeq(row[3] as Int64)))
                }
                missing = uids.filter { !found.contains($0) }
            }
            if !missing.isEmpty {
                // Expunged elsewhere, still with content: served from the tombstone, as `fetch` does.
                let wanted = Set(missing)
                for row in try Self.rows(
                    db, account: account, mailbox: mailbox, uids: missing,
                    columns: "uid, flags, keywords, modseq, content_id",
                    table: "expunged")
                {
                    let uid = UID(UInt32(truncatingIfNeeded: row[0] as Int64))
                    guard wanted.contains(uid), (row[4] as Int64?) != nil else { continue }
                    result.append(
                        .init(uid: uid, flags: Self.flags(row[1], row[2]), modSeq: ModSeq(row[3] as Int64)))
                }
                result.sort { $0.uid < $1.uid }
            }
            return result
        }
    }

    public func contentBytes(account: AccountID, slices: [ContentSlice], logger: Logger) async throws(StoreError)
        -> [[UInt8]]
    {
        guard !slices.isEmpty else { return [] }
        return try await read(logger) { db in
            let statement = try db.cachedStatement(
                sql: "SELECT substr(body, ?, ?) FROM contents WHERE content_id = ? AND account_id = ?")
            var result: [[UInt8]] = []
            for slice in slices {
                let data = try Data.fetchOne(
                    statement,
                    arguments: [
                        slice.range.lowerBound + 1, slice.range.count, slice.contentID, account.rawValue,
                    ])
                result.append(data.map { Array($0) } ?? [])
            }
            return result
        }
    }
}

extension SQLiteMailStore: DeliveryStore {
    public func contentDigests(account: AccountID, mailbox: MailboxName, logger: Logger) async throws(StoreError)
        -> [[UInt8]: Int]
    {
        try await read(logger) { db in
            var digests: [[UInt8]: Int] = [:]
            for digest in try Data.fetchAll(
                db.cached(
                    """
                    SELECT c.sha256 FROM contents c
                    JOIN messages m ON m.content_id = c.content_id
                    JOIN mailboxes b ON b.mailbox_id = m.mailbox_id
                    WHERE b.account_id = ? AND b.name = ? AND c.sha256 IS NOT NULL
                    """), arguments: [account.rawValue, mailbox.name])
            {
                digests[Array(digest), default: 0] += 1
            }
            return digests
        }
    }
}

extension SQLiteMailStore: CredentialStore {
    public func credentials(login: String, logger: Logger) async throws(StoreError) -> StoreCredentials? {
        try await read(logger) { db in
            guard
                let row = try Row.fetchOne(
                    db.cached("SELECT password_hash, disabled FROM accounts WHERE login = ?"), arguments: [login])
            else { return nil }
            return StoreCredentials(passwordHash: row[0], disabled: row[1])
        }
    }
}

/// A parsed message in the form the `contents` and `contents_text` tables keep it.
struct ContentColumns: Sendable {
    /// The version of the derived keys this code computes (`contents.keys_version`).
    static let keysVersion = 6

    var size: Int
    var headerLength: Int
    var body: Data
    var envelope: Data
    var bodySummary: Data
    var bodyStructure: Data
    var parts: Data
    var sentDay: Int
    var search: SearchText
    var preview: String?
    var sha256: Data
    var sort: SortKeys

    init(_ message: ParsedMessage, internalDate: InternalDate) throws(StoreError) {
        guard message.bytes.count <= Int(Int32.max) else { throw StoreError.cannot("Message too large") }
        size = message.bytes.count
        headerLength = message.headerLength
        body = Data(message.bytes)
        envelope = Data(message.envelope)
        bodySummary = Data(message.body)
        bodyStructure = Data(message.bodyStructure)
        parts = Data(message.root.json)
        // SENTBEFORE/ON/SINCE use the Date: header's day; without one, the internal date's (as Dovecot does).
        sentDay = Int((message.sentDate ?? internalDate.localDate).dayNumber)
        search = message.search
        preview = message.preview
        sha256 = Data(SHA256.hash(data: message.bytes))
        sort = message.sortKeys
    }

    /// Inserts the content and its search text (into `contents_text`, for `SQLiteIndexer` to index); returns its id.
    func insert(_ db: Database, account: AccountID) throws -> Int64 {
        let sort = self.sort
        try db.cached(
            """
            INSERT INTO contents (account_id, size, header_length, body, envelope, body_summary, body_structure,
                parts, sent_day, sha256, sort_subject, sort_from, sort_to, sort_cc, sort_display_from,
                sort_display_to, sent_time, thread_id, thread_refs, thread_reply, preview, keys_version,
                created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).execute(arguments: [
            account.rawValue, size, headerLength, body, envelope, bodySummary, bodyStructure, parts, sentDay,
            sha256, sort.subject, sort.from, sort.to, sort.cc, sort.displayFrom, sort.displayTo, sort.sentTime,
            sort.messageID, sort.references.joined(separator: " "), sort.isReplyOrForward, preview,
            Self.keysVersion, SQLiteMailStore.now,
        ])
        let id = db.lastInsertedRowID
        try db.cached(
            """
            INSERT INTO contents_text (content_id, search_from, search_to, search_cc, search_bcc, search_subject,
                search_headers, search_body)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
        ).execute(arguments: [
            id, search.from, search.to, search.cc, search.bcc, search.subject, search.headers, search.body,
        ])
        return id
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

/// A mailbox's UIDs and first unseen message as `select` last read them. Every change to a mailbox (APPEND, EXPUNGE,
/// a flag, in this process or another) raises its HIGHESTMODSEQ, and a mailbox made again has a new UIDVALIDITY: an
/// entry whose mailbox row still shows its modseq and UIDNEXT, read in the same snapshot, is what reading the rows
/// would give. Reading 5,000 UIDs was most of a SELECT's time.
struct SelectedUIDs: Sendable {
    struct Key: Hashable, Sendable {
        var mailbox: Int64
        var uidValidity: Int64
    }

    /// 4 million UIDs (16 MiB) in all.
    static let capacity = 4_000_000

    var highestModSeq: Int64
    var uidNext: Int64
    var uids: [UID]
    var firstUnseen: Int64?
}
