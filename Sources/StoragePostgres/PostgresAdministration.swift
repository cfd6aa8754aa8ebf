import Foundation
import IMAPEngine
import Logging
import PostgresNIO

/// What `mailadmin` does to accounts beyond the IMAP `MailStore` port: create, list, disable, rename, delete,
/// passwords and quotas. Changes that affect running sessions (disabling, deleting) are announced on the change
/// feed, so servers close those sessions with BYE.
public struct PostgresAdministration: StoreAdministration {
    public let store: PostgresMailStore
    var client: GuardedClient { store.client }

    public init(store: PostgresMailStore) { self.store = store }

    public typealias AdminError = AdministrationError

    private func run<T: Sendable>(_ logger: Logger, _ body: @escaping @Sendable () async throws -> T)
        async throws(AdminError) -> T
    {
        do {
            return try await store.run(logger, body)
        } catch {
            throw .store(error)
        }
    }

    /// Accounts with their usage, one login or all.
    public func accounts(login: String?, logger: Logger) async throws(AdminError) -> [AccountSummary] {
        let client = self.client
        let result = try await run(logger) {
            var result: [AccountSummary] = []
            let rows = try await client.query(
                """
                SELECT a.login, a.disabled,
                    to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                    (SELECT count(*) FROM mailboxes b WHERE b.account_id = a.account_id),
                    a.used_messages, a.used_bytes, a.quota_bytes, a.quota_messages, a.password_hash IS NOT NULL
                FROM accounts a WHERE \(login == nil) OR a.login = \(login ?? "")
                ORDER BY a.login
                """, logger: logger)
            for try await (name, disabled, created, mailboxes, messages, bytes, quotaBytes, quotaMessages, password)
                in rows.decode((String, Bool, String, Int64, Int64, Int64, Int64?, Int64?, Bool).self)
            {
                result.append(
                    AccountSummary(
                        login: name, disabled: disabled, created: created, mailboxes: mailboxes, messages: messages,
                        bytes: bytes, quotaBytes: quotaBytes, quotaMessages: quotaMessages, hasPassword: password))
            }
            return result
        }
        if let login, result.isEmpty { throw .noSuchUser(login) }
        return result
    }

    /// The mailboxes every new account gets beside INBOX (`default_mailboxes`), in order: name and special use.
    public func defaultMailboxes(logger: Logger) async throws(AdminError) -> [DefaultMailbox] {
        let client = self.client
        return try await run(logger) {
            var result: [DefaultMailbox] = []
            let rows = try await client.query(
                "SELECT name, special_use FROM default_mailboxes ORDER BY position", logger: logger)
            for try await (name, use) in rows.decode((String, String?).self) {
                result.append(DefaultMailbox(name: name, specialUse: use))
            }
            return result
        }
    }

    /// Replaces the default mailboxes (names already validated and normalised; uses among RFC 6154's).
    public func setDefaultMailboxes(_ mailboxes: [DefaultMailbox], logger: Logger)
        async throws(AdminError)
    {
        let client = self.client
        try await run(logger) {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query("DELETE FROM default_mailboxes", logger: logger)
                for (position, mailbox) in mailboxes.enumerated() {
                    try await connection.query(
                        """
                        INSERT INTO default_mailboxes (position, name, special_use)
                        VALUES (\(position + 1), \(mailbox.name), \(mailbox.specialUse))
                        """, logger: logger)
                }
            }
        }
    }

    /// Creates a store account with its INBOX and the default mailboxes.
    public func addAccount(
        login: String, passwordHash: String?, quotaBytes: Int64?, quotaMessages: Int64?, logger: Logger
    ) async throws(AdminError) {
        let client = self.client
        let created = try await run(logger) {
            try await client.withTransaction(logger: logger) { connection -> Bool in
                let rows = try await connection.query(
                    """
                    INSERT INTO accounts (login, password_hash, quota_bytes, quota_messages)
                    VALUES (\(login), \(passwordHash), \(quotaBytes), \(quotaMessages))
                    ON CONFLICT (login) DO NOTHING RETURNING account_id
                    """, logger: logger
                ).collect()
                guard let row = rows.first else { return false }
                let id = AccountID(rawValue: try row.decode(Int64.self))
                try await PostgresMailStore.provisionMailboxes(connection, account: id, logger: logger)
                return true
            }
        }
        if !created { throw .userExists(login) }
    }

    /// The account of a login, or `.noSuchUser`.
    public func accountID(_ login: String, logger: Logger) async throws(AdminError) -> AccountID {
        let failure: StoreError
        do {
            return try await store.account(login: login, create: false, logger: logger)
        } catch {
            failure = error
        }
        switch failure {
        case .accountNotFound:
            throw .noSuchUser(login)
        case .cannot:
            // A disabled account is still administered.
            let client = self.client
            let id = try await run(logger) { () -> Int64? in
                let rows = try await client.query(
                    "SELECT account_id FROM accounts WHERE login = \(login)", logger: logger
                ).collect()
                return try rows.first?.decode(Int64.self)
            }
            guard let id else { throw .noSuchUser(login) }
            return AccountID(rawValue: id)
        default:
            throw .store(failure)
        }
    }

    public func setPassword(login: String, hash: String, logger: Logger) async throws(AdminError) {
        try await updateOne(login, logger) { connection in
            try await connection.query(
                "UPDATE accounts SET password_hash = \(hash) WHERE login = \(login) RETURNING account_id",
                logger: logger
            ).collect()
        }
    }

    /// Disabling closes the account's open sessions: every server listening on the change feed says BYE.
    public func setDisabled(login: String, disabled: Bool, logger: Logger) async throws(AdminError) {
        try await updateOne(login, logger) { connection in
            try await connection.query(
                """
                WITH a AS (UPDATE accounts SET disabled = \(disabled) WHERE login = \(login) RETURNING account_id)
                SELECT account_id, pg_notify(\(PostgresMailStore.notifyChannel), account_id::text || ':disabled')::text
                FROM a WHERE \(disabled)
                UNION ALL SELECT account_id, '' FROM a WHERE NOT \(disabled)
                """, logger: logger
            ).collect()
        }
    }

    public func rename(login: String, to newLogin: String, logger: Logger) async throws(AdminError) {
        let outcome: Int
        do {
            outcome = try await store.write(logger) { connection -> Int in
                do {
                    let rows = try await connection.query(
                        "UPDATE accounts SET login = \(newLogin) WHERE login = \(login) RETURNING account_id",
                        logger: logger
                    ).collect()
                    return rows.isEmpty ? 0 : 1
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                    return -1
                }
            }
        } catch {
            throw .store(error)
        }
        if outcome == 0 { throw .noSuchUser(login) }
        if outcome < 0 { throw .userExists(newLogin) }
    }

    /// Removes the account and all its mail (content goes with it: every table cascades from `accounts`).
    public func delete(login: String, logger: Logger) async throws(AdminError) {
        try await updateOne(login, logger) { connection in
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    "SELECT account_id FROM accounts WHERE login = \(login) FOR UPDATE", logger: logger
                ).collect()
                guard let id = try rows.first?.decode(Int64.self) else { return [] }
                // Entries first (their triggers update the account row), then the account and its contents.
                try await connection.query("DELETE FROM messages WHERE account_id = \(id)", logger: logger)
                try await connection.query("DELETE FROM expunged WHERE account_id = \(id)", logger: logger)
                try await connection.query("DELETE FROM mailboxes WHERE account_id = \(id)", logger: logger)
                try await connection.query("DELETE FROM contents WHERE account_id = \(id)", logger: logger)
                return try await connection.query(
                    """
                    WITH a AS (DELETE FROM accounts WHERE account_id = \(id) RETURNING account_id)
                    SELECT account_id, pg_notify(\(PostgresMailStore.notifyChannel), account_id::text || ':disabled')::text
                    FROM a
                    """, logger: logger
                ).collect()
            }
        }
    }

    /// Sets or clears (nil) the limits; usage may exceed a lowered limit, after which only deletions succeed.
    public func setQuota(login: String, bytes: Int64?, messages: Int64?, logger: Logger) async throws(AdminError) {
        try await updateOne(login, logger) { connection in
            try await connection.query(
                """
                UPDATE accounts SET quota_bytes = \(bytes), quota_messages = \(messages)
                WHERE login = \(login) RETURNING account_id
                """, logger: logger
            ).collect()
        }
    }

    private func updateOne(
        _ login: String, _ logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> [PostgresRow]
    ) async throws(AdminError) {
        let rows: Int
        do {
            rows = try await store.write(logger) { try await body($0).count }
        } catch {
            throw .store(error)
        }
        if rows == 0 { throw .noSuchUser(login) }
    }

    public func statistics(logger: Logger) async throws(AdminError) -> StoreStatistics {
        let client = self.client
        return try await run(logger) {
            let rows = try await client.query(
                """
                SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM mailboxes),
                    (SELECT coalesce(sum(used_messages), 0)::bigint FROM accounts),
                    (SELECT coalesce(sum(used_bytes), 0)::bigint FROM accounts),
                    (SELECT count(*) FROM contents), (SELECT coalesce(sum(size), 0)::bigint FROM contents)
                """, logger: logger
            ).collect()
            guard let row = rows.first else { throw StoreError.internal("no statistics row") }
            let (accounts, mailboxes, messages, bytes, contents, contentBytes) = try row.decode(
                (Int64, Int64, Int64, Int64, Int64, Int64).self)
            return StoreStatistics(
                accounts: accounts, mailboxes: mailboxes, messages: messages, bytes: bytes,
                storedContents: contents, storedBytes: contentBytes)
        }
    }
}

// MARK: backfill of keys computed at ingest

extension PostgresAdministration {
    /// Contents stored before the sort, thread and preview keys existed (schema migrations 5 and 6) sort as empty
    /// strings, thread by subject only and have no preview. This computes their keys from the stored message, `batch`
    /// rows per transaction; returns how many rows it brought up to date and how many are left. Resumable and
    /// idempotent: run it until nothing is left (`mailadmin db backfill`).
    public func backfillKeys(batch: Int, logger: Logger) async throws(AdminError) -> (done: Int, left: Int) {
        let client = self.client
        return try await run(logger) {
            let done = try await client.withTransaction(logger: logger) { connection -> Int in
                // The ids first, collected: a second query on the connection cannot start while rows of the first
                // are still arriving. Then one message at a time, so memory holds one message, whatever its size.
                // NO KEY: the foreign-key checks of COPY, MOVE and shared deliveries (KEY SHARE) do not wait for it.
                let pending = try await connection.query(
                    """
                    SELECT account_id, content_id FROM contents WHERE keys_version IS NULL
                    ORDER BY account_id, content_id LIMIT \(batch) FOR NO KEY UPDATE SKIP LOCKED
                    """, logger: logger
                ).collect().map { try $0.decode((Int64, Int64).self) }
                for (account, content) in pending {
                    let body =
                        try await connection.query(
                            "SELECT body FROM contents WHERE account_id = \(account) AND content_id = \(content)",
                            logger: logger
                        ).collect().first?.decode(ByteBuffer.self) ?? ByteBuffer()
                    let message = ParsedMessage(parsing: Array(body.readableBytesView))
                    let sort = ContentRow.cleaned(message.sortKeys)
                    try await connection.query(
                        """
                        UPDATE contents SET sort_subject = \(sort.subject), sort_from = \(sort.from),
                            sort_to = \(sort.to), sort_cc = \(sort.cc), sort_display_from = \(sort.displayFrom),
                            sort_display_to = \(sort.displayTo), sent_time = \(sort.sentTime),
                            thread_id = \(sort.messageID), thread_refs = \(sort.references),
                            thread_reply = \(sort.isReplyOrForward), preview = \(message.preview.map(ContentRow.clean)),
                            keys_version = \(ContentRow.keysVersion)
                        WHERE account_id = \(account) AND content_id = \(content)
                        """, logger: logger)
                }
                return pending.count
            }
            let left =
                try await client.query(
                    "SELECT count(*) FROM contents WHERE keys_version IS NULL", logger: logger
                ).collect().first?.decode(Int64.self) ?? 0
            return (done, Int(left))
        }
    }

    /// Contents stored before schema migration 8 have no header summary: HEADER.FIELDS reads their header instead,
    /// correct but slower. This stores the summaries of up to `batch` of them after `after` in key order, one
    /// transaction; `next` is where to go on from, nil when none is left after `after`. A run walks the table's key
    /// once (contents stored since have their summary and are only stepped over).
    public func backfillHeaderSummaries(after: ContentKey?, batch: Int, logger: Logger) async throws(AdminError)
        -> (done: Int, next: ContentKey?)
    {
        let client = self.client
        let start = after ?? ContentKey(account: Int64.min, content: Int64.min)
        return try await run(logger) {
            try await client.withTransaction(logger: logger) { connection -> (Int, ContentKey?) in
                // The keys first, collected (see `backfillKeys`); then each header, so memory holds one at a time.
                // NO KEY: the foreign-key checks of COPY, MOVE and shared deliveries (KEY SHARE) do not wait for it.
                let pending = try await connection.query(
                    """
                    SELECT account_id, content_id FROM contents
                    WHERE (account_id, content_id) > (\(start.account), \(start.content)) AND summary_header IS NULL
                    ORDER BY account_id, content_id LIMIT \(batch) FOR NO KEY UPDATE SKIP LOCKED
                    """, logger: logger
                ).collect().map { try $0.decode((Int64, Int64).self) }
                for (account, content) in pending {
                    let header =
                        try await connection.query(
                            """
                            SELECT substring(body FROM 1 FOR header_length) FROM contents
                            WHERE account_id = \(account) AND content_id = \(content)
                            """, logger: logger
                        ).collect().first?.decode(ByteBuffer.self) ?? ByteBuffer()
                    try await connection.query(
                        """
                        UPDATE contents SET summary_header = \(ContentRow.summary(ofHeader: header.readableBytesView))
                        WHERE account_id = \(account) AND content_id = \(content)
                        """, logger: logger)
                }
                return (pending.count, pending.last.map { ContentKey(account: $0.0, content: $0.1) })
            }
        }
    }
}
