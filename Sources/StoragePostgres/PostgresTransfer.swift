import Foundation
import IMAPEngine
import Logging
import PostgresNIO

/// `StoreTransfer` on PostgreSQL: whole accounts out and in, ids kept (`mailadmin migrate`).
extension PostgresMailStore: StoreTransfer {
    public func transferLogins(logger: Logger) async throws(StoreError) -> [String] {
        let client = self.client
        return try await run(logger) {
            try await client.query("SELECT login FROM accounts ORDER BY login", logger: logger).collect().map {
                try $0.decode(String.self)
            }
        }
    }

    public func exportAccount(login: String, logger: Logger) async throws(StoreError) -> AccountExport? {
        let client = self.client
        return try await run(logger, timeout: Self.maintenanceTimeout) {
            // One snapshot: REPEATABLE READ, so the rows of every table are of one moment.
            try await client.withConnection { connection in
                try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
                do {
                    let export = try await Self.export(connection, login: login, logger: logger)
                    try await connection.query("COMMIT", logger: logger)
                    return export
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }

    private static func export(_ connection: PostgresConnection, login: String, logger: Logger) async throws
        -> AccountExport?
    {
        let accounts = try await connection.query(
            """
            SELECT account_id, password_hash, disabled, quota_bytes, quota_messages,
                extract(epoch FROM created_at)::bigint, last_uidvalidity
            FROM accounts WHERE login = \(login)
            """, logger: logger
        ).collect()
        guard let row = accounts.first else { return nil }
        let (id, hash, disabled, quotaBytes, quotaMessages, created, lastValidity) = try row.decode(
            (Int64, String?, Bool, Int64?, Int64?, Int64, Int64).self)
        var export = AccountExport(
            login: login, passwordHash: hash, disabled: disabled, quotaBytes: quotaBytes, quotaMessages: quotaMessages,
            createdAt: created, lastUIDValidity: lastValidity, mailboxes: [], subscriptions: [], metadata: [],
            messages: [], tombstones: [], contents: [])
        for row in try await connection.query(
            """
            SELECT mailbox_id, name, uidvalidity, uidnext, highestmodseq, first_recent_uid, keywords, special_use,
                vanished_floor
            FROM mailboxes WHERE account_id = \(id) ORDER BY mailbox_id
            """, logger: logger
        ).collect() {
            let (mailbox, name, validity, next, modseq, recent, keywords, use, floor) = try row.decode(
                (Int64, String, Int64, Int64, Int64, Int64, [String], String?, Int64).self)
            export.mailboxes.append(
                .init(
                    id: mailbox, name: name, uidValidity: validity, uidNext: next, highestModSeq: modseq,
                    firstRecentUID: recent, keywords: keywords.sorted(), specialUse: use, vanishedFloor: floor))
        }
        export.subscriptions = try await connection.query(
            "SELECT name FROM subscriptions WHERE account_id = \(id) ORDER BY name", logger: logger
        ).collect().map { try $0.decode(String.self) }
        for row in try await connection.query(
            """
            SELECT coalesce(mailbox_id, 0), name, value FROM metadata WHERE account_id = \(id)
            ORDER BY coalesce(mailbox_id, 0), name
            """, logger: logger
        ).collect() {
            let (mailbox, name, value) = try row.decode((Int64, String, ByteBuffer).self)
            export.metadata.append(.init(mailbox: mailbox, name: name, value: Array(value.readableBytesView)))
        }
        for row in try await connection.query(
            """
            SELECT mailbox_id, uid, content_id, flags, keywords, modseq, internal_date, internal_zone, size, saved_at
            FROM messages WHERE account_id = \(id) ORDER BY mailbox_id, uid
            """, logger: logger
        ).collect() {
            let (mailbox, uid, content, flags, keywords, modseq, date, zone, size, saved) = try row.decode(
                (Int64, Int64, Int64, Int16, [String], Int64, Int64, Int16, Int32, Int64?).self)
            export.messages.append(
                .init(
                    mailbox: mailbox, uid: uid, contentID: content, flags: Int64(flags), keywords: keywords,
                    modSeq: modseq, internalDate: date, internalZone: Int64(zone), size: Int64(size), savedAt: saved,
                    expungedAt: nil))
        }
        for row in try await connection.query(
            """
            SELECT mailbox_id, uid, content_id, flags, keywords, modseq, internal_date, internal_zone, size,
                extract(epoch FROM expunged_at)::bigint
            FROM expunged WHERE account_id = \(id) ORDER BY mailbox_id, uid
            """, logger: logger
        ).collect() {
            let (mailbox, uid, content, flags, keywords, modseq, date, zone, size, expunged) = try row.decode(
                (Int64, Int64, Int64?, Int16, [String], Int64, Int64, Int16, Int32, Int64).self)
            export.tombstones.append(
                .init(
                    mailbox: mailbox, uid: uid, contentID: content, flags: Int64(flags), keywords: keywords,
                    modSeq: modseq, internalDate: date, internalZone: Int64(zone), size: Int64(size), savedAt: nil,
                    expungedAt: expunged))
        }
        for row in try await connection.query(
            """
            SELECT content_id, size, extract(epoch FROM created_at)::bigint, coalesce(sha256, sha256(body))
            FROM contents WHERE account_id = \(id) ORDER BY content_id
            """, logger: logger
        ).collect() {
            let (content, size, created, digest) = try row.decode((Int64, Int32, Int64, ByteBuffer).self)
            export.contents.append(
                .init(id: content, size: Int64(size), createdAt: created, sha256: Array(digest.readableBytesView)))
        }
        return export
    }

    public func contentBodies(login: String, ids: [Int64], logger: Logger) async throws(StoreError)
        -> [(Int64, [UInt8])]
    {
        let client = self.client
        return try await run(logger, timeout: Self.maintenanceTimeout) {
            var found: [Int64: [UInt8]] = [:]
            for row in try await client.query(
                """
                SELECT c.content_id, c.body FROM contents c JOIN accounts a ON a.account_id = c.account_id
                WHERE a.login = \(login) AND c.content_id = ANY(\(ids)::bigint[])
                """, logger: logger
            ).collect() {
                let (id, body) = try row.decode((Int64, ByteBuffer).self)
                found[id] = Array(body.readableBytesView)
            }
            return ids.compactMap { id in found[id].map { (id, $0) } }
        }
    }

    public func importAccount(
        _ account: AccountExport, bodies: @escaping @Sendable ([Int64]) async throws -> [(Int64, [UInt8])],
        logger: Logger
    ) async throws(StoreError) {
        let client = self.client
        do {
            try await run(logger, timeout: Self.maintenanceTimeout) {
                try await client.withConnection { connection in
                    // No statement timeout while a large account is copied (RESET gives the pool's back).
                    try await connection.query("SET statement_timeout = 0", logger: logger)
                    do {
                        try await connection.withTransaction(logger: logger) { connection in
                            try await Self.importAccount(connection, account, bodies: bodies, logger: logger)
                        }
                        try await connection.query("RESET statement_timeout", logger: logger)
                    } catch {
                        _ = try? await connection.query("RESET statement_timeout", logger: logger)
                        throw error
                    }
                }
            }
        } catch .internal(let detail) where detail.hasPrefix("23505") {
            throw .alreadyExists
        }
    }

    private static func importAccount(
        _ connection: PostgresConnection, _ account: AccountExport,
        bodies: @Sendable ([Int64]) async throws -> [(Int64, [UInt8])], logger: Logger
    ) async throws {
        // The account may be above a lowered quota: it is copied as it is.
        try await connection.query("SET LOCAL mailhost.skip_quota = 'on'", logger: logger)
        let inserted = try await connection.query(
            """
            INSERT INTO accounts (login, password_hash, disabled, quota_bytes, quota_messages, created_at,
                last_uidvalidity)
            VALUES (\(account.login), \(account.passwordHash), \(account.disabled), \(account.quotaBytes),
                \(account.quotaMessages), to_timestamp(\(account.createdAt)), \(account.lastUIDValidity))
            ON CONFLICT (login) DO NOTHING RETURNING account_id
            """, logger: logger
        ).collect()
        guard let id = try inserted.first?.decode(Int64.self) else { throw StoreError.alreadyExists }
        for box in account.mailboxes {
            try await connection.query(
                """
                INSERT INTO mailboxes (account_id, mailbox_id, name, uidvalidity, uidnext, highestmodseq,
                    first_recent_uid, keywords, special_use, vanished_floor)
                VALUES (\(id), \(box.id), \(box.name), \(box.uidValidity), \(box.uidNext), \(box.highestModSeq),
                    \(box.firstRecentUID), \(box.keywords)::text[], \(box.specialUse), \(box.vanishedFloor))
                """, logger: logger)
        }
        for name in account.subscriptions {
            try await connection.query(
                "INSERT INTO subscriptions (account_id, name) VALUES (\(id), \(name))", logger: logger)
        }
        // Contents in batches of bytes; each is parsed again here (envelope, structure, search text, keys).
        let dates = account.firstInternalDates()
        for batch in account.contentBatches() {
            for (content, body) in try await bodies(batch.map(\.id)) {
                guard let reference = batch.first(where: { $0.id == content }) else { continue }
                let date = dates[content] ?? InternalDate(secondsSinceEpoch: reference.createdAt, zoneMinutes: 0)
                let row = try ContentRow(ParsedMessage(parsing: body), internalDate: date)
                try await connection.query(
                    """
                    INSERT INTO contents (account_id, content_id, size, header_length, body, envelope, body_summary,
                        body_structure, parts, sent_day, search_from, search_to, search_cc, search_bcc,
                        search_subject, search_headers, search_body, sha256, sort_subject, sort_from, sort_to,
                        sort_cc, sort_display_from, sort_display_to, sent_time, thread_id, thread_refs, thread_reply,
                        preview, keys_version, created_at, summary_header)
                    VALUES (\(id), \(content), \(row.size), \(row.headerLength), \(row.body), \(row.envelope),
                        \(row.bodySummary), \(row.bodyStructure), \(row.parts), \(row.sentDay), \(row.from),
                        \(row.to), \(row.cc), \(row.bcc), \(row.subject), \(row.headers), \(row.text), \(row.sha256),
                        \(row.sort.subject), \(row.sort.from), \(row.sort.to), \(row.sort.cc),
                        \(row.sort.displayFrom), \(row.sort.displayTo), \(row.sort.sentTime), \(row.sort.messageID),
                        \(row.sort.references), \(row.sort.isReplyOrForward), \(row.preview), \(ContentRow.keysVersion),
                        to_timestamp(\(reference.createdAt)), \(row.summaryHeader))
                    """, logger: logger)
            }
        }
        for message in account.messages {
            try await connection.query(
                """
                INSERT INTO messages (account_id, mailbox_id, uid, content_id, flags, keywords, modseq, internal_date,
                    internal_zone, size, saved_at)
                VALUES (\(id), \(message.mailbox), \(message.uid), \(message.contentID), \(Int16(truncatingIfNeeded: message.flags)),
                    \(message.keywords)::text[], \(message.modSeq), \(message.internalDate),
                    \(Int16(truncatingIfNeeded: message.internalZone)), \(Int32(truncatingIfNeeded: message.size)),
                    \(message.savedAt))
                """, logger: logger)
        }
        for tombstone in account.tombstones {
            try await connection.query(
                """
                INSERT INTO expunged (account_id, mailbox_id, uid, content_id, flags, keywords, modseq, internal_date,
                    internal_zone, size, expunged_at)
                VALUES (\(id), \(tombstone.mailbox), \(tombstone.uid), \(tombstone.contentID),
                    \(Int16(truncatingIfNeeded: tombstone.flags)), \(tombstone.keywords)::text[], \(tombstone.modSeq),
                    \(tombstone.internalDate), \(Int16(truncatingIfNeeded: tombstone.internalZone)),
                    \(Int32(truncatingIfNeeded: tombstone.size)), to_timestamp(\(tombstone.expungedAt ?? 0)))
                """, logger: logger)
        }
        for entry in account.metadata {
            let owner: Int64? = entry.mailbox == 0 ? nil : entry.mailbox
            try await connection.query(
                """
                INSERT INTO metadata (account_id, mailbox_id, name, value)
                VALUES (\(id), \(owner), \(entry.name), \(ByteBuffer(bytes: entry.value)))
                """, logger: logger)
        }
        // The sequences continue above the ids copied in.
        try await connection.query(
            """
            SELECT setval('mailbox_ids', greatest((SELECT max(mailbox_id) FROM mailboxes), 1)),
                setval('content_ids', greatest((SELECT max(content_id) FROM contents), 1))
            """, logger: logger)
    }
}
