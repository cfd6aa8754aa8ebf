import GRDB
import IMAPEngine

/// The SQLite store's schema as numbered migrations (docs/storage.md). Never edit a released migration: add the
/// next one. The same rules as PostgreSQL's (DESIGN.md §4): content stored once per account and referenced by
/// message rows; UIDNEXT and HIGHESTMODSEQ allocated inside the writing transaction (SQLite has one writer at a time,
/// so allocation order is commit order); expunges leave tombstones with their modseq.
enum SQLiteSchema {
    static let migrations: [String] = [
        // 1: the initial schema.
        """
        CREATE TABLE accounts (
            account_id INTEGER PRIMARY KEY,
            login TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            password_hash TEXT,
            quota_bytes INTEGER,
            quota_messages INTEGER,
            last_uidvalidity INTEGER NOT NULL DEFAULT 0,
            -- Quota counters, kept by the triggers below: what the messages reference, and what the account's
            -- stored contents take (including content kept for expunged messages until collected).
            used_bytes INTEGER NOT NULL DEFAULT 0,
            used_messages INTEGER NOT NULL DEFAULT 0,
            stored_bytes INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE mailboxes (
            mailbox_id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts ON DELETE CASCADE,
            name TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            uidnext INTEGER NOT NULL DEFAULT 1,
            highestmodseq INTEGER NOT NULL DEFAULT 1,
            first_recent_uid INTEGER NOT NULL DEFAULT 1,
            -- Keywords in use (FLAGS, PERMANENTFLAGS): a JSON array of strings.
            keywords TEXT NOT NULL DEFAULT '[]',
            special_use TEXT,
            -- The highest modseq of tombstones garbage collection removed (RFC 7162 §3.2.5.2).
            vanished_floor INTEGER NOT NULL DEFAULT 0,
            UNIQUE (account_id, name)
        );
        CREATE UNIQUE INDEX mailboxes_special_use ON mailboxes (account_id, special_use)
            WHERE special_use IS NOT NULL;

        CREATE TABLE subscriptions (
            account_id INTEGER NOT NULL REFERENCES accounts ON DELETE CASCADE,
            name TEXT NOT NULL,
            PRIMARY KEY (account_id, name)
        ) WITHOUT ROWID;

        CREATE TABLE contents (
            content_id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts ON DELETE CASCADE,
            size INTEGER NOT NULL,
            header_length INTEGER NOT NULL,
            body BLOB NOT NULL,
            envelope BLOB NOT NULL,
            body_summary BLOB NOT NULL,
            body_structure BLOB NOT NULL,
            parts BLOB NOT NULL,
            sent_day INTEGER,
            sha256 BLOB,
            sort_subject TEXT, sort_from TEXT, sort_to TEXT, sort_cc TEXT, sort_display_from TEXT,
            sort_display_to TEXT, sent_time INTEGER, thread_id TEXT,
            -- Space-joined message ids.
            thread_refs TEXT,
            thread_reply INTEGER,
            preview TEXT,
            keys_version INTEGER,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX contents_account ON contents (account_id, sha256);
        CREATE INDEX contents_age ON contents (created_at);

        -- SEARCH text (lower-cased at ingest), one row per content (rowid = content_id). The trigram tokenizer
        -- indexes every three characters, so LIKE '%text%' of three or more characters is answered from the index.
        CREATE VIRTUAL TABLE contents_search USING fts5(
            search_from, search_to, search_cc, search_bcc, search_subject, search_headers, search_body,
            tokenize = 'trigram');

        CREATE TABLE messages (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            account_id INTEGER NOT NULL,
            content_id INTEGER NOT NULL REFERENCES contents,
            flags INTEGER NOT NULL DEFAULT 0,
            keywords TEXT NOT NULL DEFAULT '[]',
            modseq INTEGER NOT NULL,
            internal_date INTEGER NOT NULL,
            internal_zone INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL,
            saved_at INTEGER,
            PRIMARY KEY (mailbox_id, uid)
        ) WITHOUT ROWID;
        CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
        CREATE INDEX messages_content ON messages (account_id, content_id);

        CREATE TABLE expunged (
            mailbox_id INTEGER NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            account_id INTEGER NOT NULL,
            modseq INTEGER NOT NULL,
            content_id INTEGER,
            flags INTEGER NOT NULL,
            keywords TEXT NOT NULL,
            internal_date INTEGER NOT NULL,
            internal_zone INTEGER NOT NULL,
            size INTEGER NOT NULL,
            expunged_at INTEGER NOT NULL,
            PRIMARY KEY (mailbox_id, uid)
        ) WITHOUT ROWID;
        CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
        CREATE INDEX expunged_content ON expunged (account_id, content_id) WHERE content_id IS NOT NULL;
        CREATE INDEX expunged_age ON expunged (expunged_at);

        CREATE TABLE default_mailboxes (
            position INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            special_use TEXT UNIQUE
        );
        INSERT INTO default_mailboxes (position, name, special_use) VALUES
            (1, 'Drafts', '\\Drafts'), (2, 'Sent', '\\Sent'), (3, 'Trash', '\\Trash'), (4, 'Junk', '\\Junk'),
            (5, 'Archive', '\\Archive');

        -- RFC 5464 METADATA: a mailbox's entries (mailbox_id 0: the server's, for this account); names lower-cased.
        CREATE TABLE metadata (
            account_id INTEGER NOT NULL REFERENCES accounts ON DELETE CASCADE,
            mailbox_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (account_id, mailbox_id, name)
        ) WITHOUT ROWID;

        -- The change feed (docs/storage.md): every write appends what it changed in its own transaction; each
        -- serving process reads the rows after its last one (its own writes wake it at once, other processes' are
        -- found within the poll interval) and publishes them to its sessions.
        CREATE TABLE feed (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            account_id INTEGER NOT NULL,
            event TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );

        CREATE TRIGGER messages_added AFTER INSERT ON messages BEGIN
            UPDATE accounts SET used_bytes = used_bytes + NEW.size, used_messages = used_messages + 1
            WHERE account_id = NEW.account_id;
        END;
        CREATE TRIGGER messages_removed AFTER DELETE ON messages BEGIN
            UPDATE accounts SET used_bytes = used_bytes - OLD.size, used_messages = used_messages - 1
            WHERE account_id = OLD.account_id;
        END;
        CREATE TRIGGER contents_added AFTER INSERT ON contents BEGIN
            UPDATE accounts SET stored_bytes = stored_bytes + NEW.size WHERE account_id = NEW.account_id;
        END;
        CREATE TRIGGER contents_removed AFTER DELETE ON contents BEGIN
            UPDATE accounts SET stored_bytes = stored_bytes - OLD.size WHERE account_id = OLD.account_id;
            DELETE FROM contents_search WHERE rowid = OLD.content_id;
        END;
        """,
        // 2: the trigram index is built behind the writes. Indexing a 4 KB body took 2.5-3.5 ms, five times the rest
        // of an APPEND; the search text now goes into `contents_text` in the APPEND's transaction, and the serving
        // process moves it into `contents_search` in small batches (`SQLiteIndexer`). SEARCH reads both.
        """
        CREATE TABLE contents_text (
            content_id INTEGER PRIMARY KEY,
            search_from TEXT NOT NULL, search_to TEXT NOT NULL, search_cc TEXT NOT NULL, search_bcc TEXT NOT NULL,
            search_subject TEXT NOT NULL, search_headers TEXT NOT NULL, search_body TEXT NOT NULL
        );
        DROP TRIGGER contents_removed;
        CREATE TRIGGER contents_removed AFTER DELETE ON contents BEGIN
            UPDATE accounts SET stored_bytes = stored_bytes - OLD.size WHERE account_id = OLD.account_id;
            DELETE FROM contents_search WHERE rowid = OLD.content_id;
            DELETE FROM contents_text WHERE content_id = OLD.content_id;
        END;
        """,
    ]

    static var latestVersion: Int { migrations.count }

    /// The version of the file: nil when MailHost never ran there (no `schema_migrations`), 0 when the table exists
    /// but no migration completed.
    static func currentVersion(_ db: Database) throws -> Int? {
        guard try db.tableExists("schema_migrations") else { return nil }
        return try Int.fetchOne(db, sql: "SELECT coalesce(max(version), 0) FROM schema_migrations") ?? 0
    }

    /// Applies pending migrations, each in its own transaction (the caller holds none); returns the versions applied.
    static func migrate(_ db: Database) throws -> [Int] {
        var applied: [Int] = []
        try db.inTransaction(.immediate) {
            try db.execute(
                sql: "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)")
            return .commit
        }
        let current = try currentVersion(db) ?? 0
        guard current <= latestVersion else { return [] }
        for version in (current + 1)...max(current + 1, latestVersion) where version <= latestVersion {
            try db.inTransaction(.immediate) {
                // Checked again inside the transaction: another process may have applied it meanwhile.
                if try Int.fetchOne(
                    db, sql: "SELECT 1 FROM schema_migrations WHERE version = ?", arguments: [version]) != nil
                {
                    return .commit
                }
                try db.execute(sql: migrations[version - 1])
                try db.execute(
                    sql: "INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%s', 'now'))",
                    arguments: [version])
                applied.append(version)
                return .commit
            }
        }
        return applied
    }

    static func state(_ db: Database) throws -> SchemaState {
        guard let version = try currentVersion(db) else { return .empty }
        if version == latestVersion { return .current }
        if version < latestVersion { return .behind(current: version, latest: latestVersion) }
        return .ahead(current: version, latest: latestVersion)
    }
}
