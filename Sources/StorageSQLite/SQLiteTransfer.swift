import Foundation
import GRDB
import IMAPEngine
import Logging

/// `StoreTransfer` on SQLite: whole accounts out and in, ids kept (`mailadmin migrate`).
extension SQLiteMailStore: StoreTransfer {
    public func transferLogins(logger: Logger) async throws(StoreError) -> [String] {
        // Accounts being imported (`importingLogin`) are not there yet.
        try await read(logger) { db in
            try String.fetchAll(
                db, sql: "SELECT login FROM accounts WHERE substr(login, 1, 1) <> char(1) ORDER BY login")
        }
    }

    public func exportAccount(login: String, logger: Logger) async throws(StoreError) -> AccountExport? {
        try await read(logger) { db in try Self.export(db, login: login) }
    }

    static func export(_ db: Database, login: String) throws -> AccountExport? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT account_id, password_hash, disabled, quota_bytes, quota_messages, created_at,
                        last_uidvalidity
                    FROM accounts WHERE login = ?
                    """, arguments: [login])
        else { return nil }
        let id: Int64 = row[0]
        var export = AccountExport(
            login: login, passwordHash: row[1], disabled: row[2], quotaBytes: row[3], quotaMessages: row[4],
            createdAt: row[5], lastUIDValidity: row[6], mailboxes: [], subscriptions: [], metadata: [], messages: [],
            tombstones: [], contents: [])
        export.mailboxes = try Row.fetchAll(
            db,
            sql: """
                SELECT mailbox_id, name, uidvalidity, uidnext, highestmodseq, first_recent_uid, keywords, special_use,
                    vanished_floor
                FROM mailboxes WHERE account_id = ? ORDER BY mailbox_id
                """, arguments: [id]
        ).map { box in
            .init(
                id: box[0], name: box[1], uidValidity: box[2], uidNext: box[3], highestModSeq: box[4],
                firstRecentUID: box[5], keywords: decode(box[6]).sorted(), specialUse: box[7], vanishedFloor: box[8])
        }
        export.subscriptions = try String.fetchAll(
            db, sql: "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", arguments: [id])
        export.metadata = try Row.fetchAll(
            db, sql: "SELECT mailbox_id, name, value FROM metadata WHERE account_id = ? ORDER BY mailbox_id, name",
            arguments: [id]
        ).map { .init(mailbox: $0[0], name: $0[1], value: Array($0[2] as Data)) }
        export.messages = try Row.fetchAll(
            db,
            sql: """
                SELECT mailbox_id, uid, content_id, flags, keywords, modseq, internal_date, internal_zone, size,
                    saved_at
                FROM messages WHERE account_id = ? ORDER BY mailbox_id, uid
                """, arguments: [id]
        ).map { m in
            .init(
                mailbox: m[0], uid: m[1], contentID: m[2], flags: m[3], keywords: decode(m[4]), modSeq: m[5],
                internalDate: m[6], internalZone: m[7], size: m[8], savedAt: m[9], expungedAt: nil)
        }
        export.tombstones = try Row.fetchAll(
            db,
            sql: """
                SELECT mailbox_id, uid, content_id, flags, keywords, modseq, internal_date, internal_zone, size,
                    expunged_at
                FROM expunged WHERE account_id = ? ORDER BY mailbox_id, uid
                """, arguments: [id]
        ).map { m in
            .init(
                mailbox: m[0], uid: m[1], contentID: m[2], flags: m[3], keywords: decode(m[4]), modSeq: m[5],
                internalDate: m[6], internalZone: m[7], size: m[8], savedAt: nil, expungedAt: m[9])
        }
        export.contents = try Row.fetchAll(
            db,
            sql: "SELECT content_id, size, created_at, sha256 FROM contents WHERE account_id = ? ORDER BY content_id",
            arguments: [id]
        ).map { .init(id: $0[0], size: $0[1], createdAt: $0[2], sha256: Array(($0[3] as Data?) ?? Data())) }
        return export
    }

    public func contentBodies(login: String, ids: [Int64], logger: Logger) async throws(StoreError)
        -> [(Int64, [UInt8])]
    {
        try await read(logger) { db in
            guard let account = try Self.accountRow(db, login: login) else { return [] }
            let statement = try db.cachedStatement(
                sql: "SELECT body FROM contents WHERE content_id = ? AND account_id = ?")
            return try ids.compactMap { id in
                try Data.fetchOne(statement, arguments: [id, account.id]).map { (id, Array($0)) }
            }
        }
    }

    /// The login an account has while it is being imported: invisible to logins and delivery, and removed by the next
    /// import of the same login if the process died half-way.
    static func importingLogin(_ login: String) -> String { "\u{1}importing:" + login }

    /// In several transactions, so that memory holds one batch of contents at a time: the account is written under
    /// `importingLogin` first, then its contents batch by batch, and takes its real login in the last transaction,
    /// with its messages. Until then no session or delivery can find it.
    public func importAccount(
        _ account: AccountExport, bodies: @escaping @Sendable ([Int64]) async throws -> [(Int64, [UInt8])],
        logger: Logger
    ) async throws(StoreError) {
        let hidden = Self.importingLogin(account.login)
        let id = try await write(logger) { db -> Int64 in
            if try Self.accountRow(db, login: account.login) != nil { throw StoreError.alreadyExists }
            if let leftover = try Self.accountRow(db, login: hidden) { try Self.deleteAccount(db, id: leftover.id) }
            for box in account.mailboxes {
                if try Int64.fetchOne(db, sql: "SELECT 1 FROM mailboxes WHERE mailbox_id = ?", arguments: [box.id])
                    != nil
                {
                    throw StoreError.alreadyExists
                }
            }
            try db.execute(
                sql: """
                    INSERT INTO accounts (login, password_hash, disabled, quota_bytes, quota_messages, created_at,
                        last_uidvalidity)
                    VALUES (?, ?, 1, ?, ?, ?, ?)
                    """,
                arguments: [
                    hidden, account.passwordHash, account.quotaBytes, account.quotaMessages, account.createdAt,
                    account.lastUIDValidity,
                ])
            let id = db.lastInsertedRowID
            for box in account.mailboxes {
                try db.execute(
                    sql: """
                        INSERT INTO mailboxes (mailbox_id, account_id, name, uidvalidity, uidnext, highestmodseq,
                            first_recent_uid, keywords, special_use, vanished_floor)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        box.id, id, box.name, box.uidValidity, box.uidNext, box.highestModSeq, box.firstRecentUID,
                        Self.encode(box.keywords), box.specialUse, box.vanishedFloor,
                    ])
            }
            for name in account.subscriptions {
                try db.execute(
                    sql: "INSERT INTO subscriptions (account_id, name) VALUES (?, ?)", arguments: [id, name])
            }
            return id
        }
        let dates = account.firstInternalDates()
        for batch in account.contentBatches() {
            // Read from the source and parsed outside the write transaction (it cannot wait on another store).
            let read: [(Int64, [UInt8])]
            do {
                read = try await bodies(batch.map(\.id))
            } catch let error as StoreError {
                throw error
            } catch {
                throw .unavailable("reading the source failed: \(error)")
            }
            var parsed: [(AccountExport.ContentRef, ContentColumns)] = []
            for (content, body) in read {
                guard let reference = batch.first(where: { $0.id == content }) else { continue }
                let date = dates[content] ?? InternalDate(secondsSinceEpoch: reference.createdAt, zoneMinutes: 0)
                parsed.append((reference, try ContentColumns(ParsedMessage(parsing: body), internalDate: date)))
            }
            let contents = parsed
            try await write(logger) { db in
                for (reference, columns) in contents {
                    if try Int64.fetchOne(
                        db, sql: "SELECT 1 FROM contents WHERE content_id = ?", arguments: [reference.id]) != nil
                    {
                        throw StoreError.alreadyExists
                    }
                    // The content keeps its id (EMAILID) and its age.
                    let inserted = try columns.insert(db, account: AccountID(rawValue: id))
                    try db.execute(
                        sql: "UPDATE contents SET content_id = ?, created_at = ? WHERE content_id = ?",
                        arguments: [reference.id, reference.createdAt, inserted])
                    try db.execute(
                        sql: "UPDATE contents_text SET content_id = ? WHERE content_id = ?",
                        arguments: [reference.id, inserted])
                }
            }
        }
        try await write(logger) { db in
            for message in account.messages { try Self.insertMessageRow(db, message, account: id) }
            for tombstone in account.tombstones {
                try db.execute(
                    sql: """
                        INSERT INTO expunged (mailbox_id, uid, account_id, content_id, flags, keywords, modseq,
                            internal_date, internal_zone, size, expunged_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        tombstone.mailbox, tombstone.uid, id, tombstone.contentID, tombstone.flags,
                        Self.encode(tombstone.keywords), tombstone.modSeq, tombstone.internalDate,
                        tombstone.internalZone, tombstone.size, tombstone.expungedAt ?? 0,
                    ])
            }
            for entry in account.metadata {
                try db.execute(
                    sql: "INSERT INTO metadata (account_id, mailbox_id, name, value) VALUES (?, ?, ?, ?)",
                    arguments: [id, entry.mailbox, entry.name, Data(entry.value)])
            }
            if try Self.accountRow(db, login: account.login) != nil { throw StoreError.alreadyExists }
            try db.execute(
                sql: "UPDATE accounts SET login = ?, disabled = ? WHERE account_id = ?",
                arguments: [account.login, account.disabled, id])
        }
    }

    /// Removes an account and all its mail in the open write transaction.
    static func deleteAccount(_ db: Database, id: Int64) throws {
        // Messages first (their triggers update the account row), then the rest of the account.
        try db.execute(sql: "DELETE FROM messages WHERE account_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM expunged WHERE account_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM mailboxes WHERE account_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM contents WHERE account_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM metadata WHERE account_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM subscriptions WHERE account_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM accounts WHERE account_id = ?", arguments: [id])
    }
}
