import Foundation
import IMAPEngine
import Logging
import PostgresNIO

/// The database schema as numbered migrations (DESIGN.md §4). Never edit a released migration: add the next one.
///
/// Rules the schema keeps:
/// - every table has `account_id` first in its primary key and indexes (shardable by account);
/// - message content is stored once (`contents`) and referenced by mailbox entries (`messages`);
/// - `mailboxes.uidnext` and `mailboxes.highestmodseq` are allocated inside the writing transaction, under the
///   mailbox row lock, so UID and modseq order equal commit order (STYLE.md §4.8);
/// - expunged messages leave a tombstone (`expunged`) with their modseq, for `changes(since:)`, and keep their content
///   for a while so sessions that were not told yet can still fetch them.
public enum PostgresSchema {
    public static let migrations: [String] = [
        // 1: the initial schema.
        """
        CREATE EXTENSION IF NOT EXISTS pg_trgm;

        CREATE SEQUENCE mailbox_ids;
        CREATE SEQUENCE content_ids;

        CREATE TABLE accounts (
            account_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            login text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            disabled boolean NOT NULL DEFAULT false,
            password_hash text,
            quota_bytes bigint,
            quota_messages bigint,
            last_uidvalidity bigint NOT NULL DEFAULT 0
        );

        CREATE TABLE mailboxes (
            account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
            mailbox_id bigint NOT NULL DEFAULT nextval('mailbox_ids'),
            name text NOT NULL,
            uidvalidity bigint NOT NULL,
            uidnext bigint NOT NULL DEFAULT 1,
            highestmodseq bigint NOT NULL DEFAULT 1,
            first_recent_uid bigint NOT NULL DEFAULT 1,
            keywords text[] NOT NULL DEFAULT '{}',
            special_use text,
            PRIMARY KEY (account_id, mailbox_id),
            UNIQUE (account_id, name)
        );

        CREATE TABLE subscriptions (
            account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
            name text NOT NULL,
            PRIMARY KEY (account_id, name)
        );

        CREATE TABLE contents (
            account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
            content_id bigint NOT NULL DEFAULT nextval('content_ids'),
            size integer NOT NULL,
            header_length integer NOT NULL,
            body bytea NOT NULL,
            envelope bytea NOT NULL,
            body_summary bytea NOT NULL,
            body_structure bytea NOT NULL,
            parts bytea NOT NULL,
            sent_day integer,
            search_from text NOT NULL,
            search_to text NOT NULL,
            search_cc text NOT NULL,
            search_bcc text NOT NULL,
            search_subject text NOT NULL,
            search_headers text NOT NULL,
            search_body text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, content_id)
        );
        CREATE INDEX contents_subject_trgm ON contents USING gin (search_subject gin_trgm_ops);
        CREATE INDEX contents_from_trgm ON contents USING gin (search_from gin_trgm_ops);
        CREATE INDEX contents_to_trgm ON contents USING gin (search_to gin_trgm_ops);
        CREATE INDEX contents_body_trgm ON contents USING gin (search_body gin_trgm_ops);

        CREATE TABLE messages (
            account_id bigint NOT NULL,
            mailbox_id bigint NOT NULL,
            uid bigint NOT NULL,
            content_id bigint NOT NULL,
            flags smallint NOT NULL DEFAULT 0,
            keywords text[] NOT NULL DEFAULT '{}',
            modseq bigint NOT NULL,
            internal_date bigint NOT NULL,
            internal_zone smallint NOT NULL DEFAULT 0,
            size integer NOT NULL,
            PRIMARY KEY (account_id, mailbox_id, uid),
            FOREIGN KEY (account_id, mailbox_id) REFERENCES mailboxes ON DELETE CASCADE,
            FOREIGN KEY (account_id, content_id) REFERENCES contents
        );
        CREATE INDEX messages_modseq ON messages (account_id, mailbox_id, modseq);
        CREATE INDEX messages_unseen ON messages (account_id, mailbox_id, uid) WHERE flags & 8 = 0;
        CREATE INDEX messages_content ON messages (account_id, content_id);

        CREATE TABLE expunged (
            account_id bigint NOT NULL,
            mailbox_id bigint NOT NULL,
            uid bigint NOT NULL,
            modseq bigint NOT NULL,
            content_id bigint,
            flags smallint NOT NULL,
            keywords text[] NOT NULL,
            internal_date bigint NOT NULL,
            internal_zone smallint NOT NULL,
            size integer NOT NULL,
            expunged_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, mailbox_id, uid),
            FOREIGN KEY (account_id, mailbox_id) REFERENCES mailboxes ON DELETE CASCADE
        );
        CREATE INDEX expunged_modseq ON expunged (account_id, mailbox_id, modseq);
        CREATE INDEX expunged_content ON expunged (account_id, content_id) WHERE content_id IS NOT NULL;
        """,
        // 2: quota usage counters kept by triggers, and content digests so imports can skip what they already stored.
        """
        ALTER TABLE accounts ADD COLUMN used_bytes bigint NOT NULL DEFAULT 0,
            ADD COLUMN used_messages bigint NOT NULL DEFAULT 0;

        UPDATE accounts a SET used_bytes = s.bytes, used_messages = s.messages
        FROM (SELECT account_id, sum(size)::bigint AS bytes, count(*) AS messages FROM messages GROUP BY account_id) s
        WHERE a.account_id = s.account_id;

        ALTER TABLE contents ADD COLUMN sha256 bytea;

        CREATE INDEX contents_sha256 ON contents (account_id, sha256) WHERE sha256 IS NOT NULL;

        CREATE FUNCTION mailhost_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE accounts a SET used_bytes = a.used_bytes + d.bytes, used_messages = a.used_messages + d.messages
            FROM (SELECT account_id, sum(size)::bigint AS bytes, count(*) AS messages FROM added GROUP BY account_id) d
            WHERE a.account_id = d.account_id;
            -- Quota (RFC 9208): a write that takes an account past its limits fails as a whole. MOVE within an
            -- account sets mailhost.skip_quota, since it adds and removes the same messages.
            IF current_setting('mailhost.skip_quota', true) IS DISTINCT FROM 'on' AND EXISTS (
                SELECT 1 FROM accounts a JOIN (SELECT DISTINCT account_id FROM added) d USING (account_id)
                WHERE (a.quota_bytes IS NOT NULL AND a.used_bytes > a.quota_bytes)
                    OR (a.quota_messages IS NOT NULL AND a.used_messages > a.quota_messages))
            THEN
                RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'MH001';
            END IF;
            RETURN NULL;
        END
        $$;

        CREATE FUNCTION mailhost_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE accounts a SET used_bytes = a.used_bytes - d.bytes, used_messages = a.used_messages - d.messages
            FROM (SELECT account_id, sum(size)::bigint AS bytes, count(*) AS messages FROM removed GROUP BY account_id) d
            WHERE a.account_id = d.account_id;
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER messages_count_added AFTER INSERT ON messages REFERENCING NEW TABLE AS added
            FOR EACH STATEMENT EXECUTE FUNCTION mailhost_count_added();

        CREATE TRIGGER messages_count_removed AFTER DELETE ON messages REFERENCING OLD TABLE AS removed
            FOR EACH STATEMENT EXECUTE FUNCTION mailhost_count_removed();
        """,
        // 3: quota counts what an account really occupies. `stored_bytes` is the size of its stored contents, kept
        // by triggers: besides what its messages reference, it includes content kept for expunged messages (for 24
        // hours, for sessions not yet told) and content of deleted mailboxes not yet collected. A write fails when
        // either the messages or the stored bytes pass the limit; the store then releases what it retains and tries
        // again, so an APPEND/EXPUNGE loop cannot fill the disk and a user who deletes mail can store again at once.
        """
        ALTER TABLE accounts ADD COLUMN stored_bytes bigint NOT NULL DEFAULT 0;

        UPDATE accounts a SET stored_bytes = s.bytes
        FROM (SELECT account_id, sum(size)::bigint AS bytes FROM contents GROUP BY account_id) s
        WHERE a.account_id = s.account_id;

        CREATE FUNCTION mailhost_contents_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE accounts a SET stored_bytes = a.stored_bytes + d.bytes
            FROM (SELECT account_id, sum(size)::bigint AS bytes FROM added GROUP BY account_id) d
            WHERE a.account_id = d.account_id;
            RETURN NULL;
        END
        $$;

        CREATE FUNCTION mailhost_contents_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE accounts a SET stored_bytes = a.stored_bytes - d.bytes
            FROM (SELECT account_id, sum(size)::bigint AS bytes FROM removed GROUP BY account_id) d
            WHERE a.account_id = d.account_id;
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER contents_count_added AFTER INSERT ON contents REFERENCING NEW TABLE AS added
            FOR EACH STATEMENT EXECUTE FUNCTION mailhost_contents_added();

        CREATE TRIGGER contents_count_removed AFTER DELETE ON contents REFERENCING OLD TABLE AS removed
            FOR EACH STATEMENT EXECUTE FUNCTION mailhost_contents_removed();

        CREATE OR REPLACE FUNCTION mailhost_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE accounts a SET used_bytes = a.used_bytes + d.bytes, used_messages = a.used_messages + d.messages
            FROM (SELECT account_id, sum(size)::bigint AS bytes, count(*) AS messages FROM added GROUP BY account_id) d
            WHERE a.account_id = d.account_id;
            IF current_setting('mailhost.skip_quota', true) IS DISTINCT FROM 'on' AND EXISTS (
                SELECT 1 FROM accounts a JOIN (SELECT DISTINCT account_id FROM added) d USING (account_id)
                WHERE (a.quota_bytes IS NOT NULL AND (a.used_bytes > a.quota_bytes OR a.stored_bytes > a.quota_bytes))
                    OR (a.quota_messages IS NOT NULL AND a.used_messages > a.quota_messages))
            THEN
                RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'MH001';
            END IF;
            RETURN NULL;
        END
        $$;
        """,
        // 4: expunge tombstones are kept for `qresync-retention` (QRESYNC's exact resync), then removed by the
        // garbage collector, which records in `vanished_floor` the highest modseq it removed: a client that asks for
        // changes since a modseq below it gets every UID that is not there as possibly expunged (RFC 7162 §3.2.5.2).
        """
        ALTER TABLE mailboxes ADD COLUMN vanished_floor bigint NOT NULL DEFAULT 0;
        CREATE INDEX expunged_age ON expunged (expunged_at);
        """,
        // 5: SORT and THREAD keys (RFC 5256, RFC 5957), computed at ingest (`SortKeys`): sorting and threading read
        // them, parse nothing. Contents stored before this migration have NULL keys: they sort as empty strings / by
        // internal date and thread by subject only.
        """
        ALTER TABLE contents ADD COLUMN sort_subject text, ADD COLUMN sort_from text, ADD COLUMN sort_to text,
            ADD COLUMN sort_cc text, ADD COLUMN sort_display_from text, ADD COLUMN sort_display_to text,
            ADD COLUMN sent_time bigint, ADD COLUMN thread_id text, ADD COLUMN thread_refs text[],
            ADD COLUMN thread_reply boolean;
        -- RFC 6154: one mailbox per special use (CREATE-SPECIAL-USE checks it; this settles races).
        CREATE UNIQUE INDEX mailboxes_special_use ON mailboxes (account_id, special_use) WHERE special_use IS NOT NULL;
        """,
        // 6: the mailboxes every new account gets beside INBOX, with their special uses (RFC 6154), subscribed. One
        // table for every instance, LMTP and mailadmin alike (`mailadmin mailbox defaults`); emptied, new accounts
        // get INBOX only. Accounts that exist already are left as they are. Also SAVEDATE and PREVIEW columns.
        """
        CREATE TABLE default_mailboxes (
            position integer PRIMARY KEY,
            name text NOT NULL UNIQUE,
            special_use text UNIQUE
        );
        INSERT INTO default_mailboxes (position, name, special_use) VALUES
            (1, 'Drafts', '\\Drafts'), (2, 'Sent', '\\Sent'), (3, 'Trash', '\\Trash'), (4, 'Junk', '\\Junk'),
            (5, 'Archive', '\\Archive');
        -- RFC 8514 SAVEDATE: when the message was stored in its mailbox (APPEND, delivery, COPY and MOVE insert rows).
        -- Rows stored before this migration have none (FETCH SAVEDATE answers NIL for them).
        ALTER TABLE messages ADD COLUMN saved_at bigint;
        ALTER TABLE messages ALTER COLUMN saved_at SET DEFAULT extract(epoch FROM now())::bigint;
        -- RFC 8970 PREVIEW text, computed at ingest (`Preview`); NULL for contents stored before.
        ALTER TABLE contents ADD COLUMN preview text;
        -- Which version of the keys computed at ingest (sort, thread, preview) a content row has: NULL for rows
        -- stored before this migration, which `mailadmin db backfill` brings up to date.
        ALTER TABLE contents ADD COLUMN keys_version smallint;
        CREATE INDEX contents_keys_pending ON contents (account_id, content_id) WHERE keys_version IS NULL;
        -- RFC 5464 METADATA: entries of a mailbox, or of the server for this account (mailbox_id NULL); names are
        -- stored lower-cased (they are case-insensitive). A mailbox's entries go with it; RENAME keeps them.
        CREATE TABLE metadata (
            account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
            mailbox_id bigint,
            name text NOT NULL,
            value bytea NOT NULL,
            FOREIGN KEY (account_id, mailbox_id) REFERENCES mailboxes ON DELETE CASCADE
        );
        CREATE UNIQUE INDEX metadata_entry ON metadata (account_id, coalesce(mailbox_id, 0), name);
        """,
        // 7: the planner learns that a mailbox belongs to one account. Without it, it multiplies the selectivities
        // of account_id and mailbox_id, expects about one row per mailbox, and a prepared (generic) plan may then
        // probe each UID of a FETCH through messages_modseq, filtering the whole mailbox per UID: measured 3.2 s
        // instead of 31 ms for FETCH 1:* (ENVELOPE) of 5,000 messages, once autovacuum had analysed a store of many
        // small mailboxes and one large one.
        // The trigram indexes go: SEARCH now evaluates its text conditions on the mailbox's own messages, each
        // contents row looked up by its key (`searchStatement`), so no plan uses them, and every APPEND paid for
        // four GIN insertions under the mailbox row lock (APPEND of 4 KB, 10 connections: 517 -> 672 msg/s).
        """
        CREATE STATISTICS messages_mailbox_stats (dependencies, ndistinct) ON account_id, mailbox_id FROM messages;
        CREATE STATISTICS expunged_mailbox_stats (dependencies, ndistinct) ON account_id, mailbox_id FROM expunged;
        ANALYZE messages, expunged;
        DROP INDEX IF EXISTS contents_subject_trgm;
        DROP INDEX IF EXISTS contents_from_trgm;
        DROP INDEX IF EXISTS contents_to_trgm;
        DROP INDEX IF EXISTS contents_body_trgm;
        """,
        // 8: the header fields message lists ask for (`HeaderFilter.summary`), kept with the content row: a header
        // download (HEADER.FIELDS of those names) reads them instead of the header, which lives in the compressed,
        // usually out-of-line body (HEADER.FIELDS (From To Subject Date) of 5,000 messages: 17 ms per statement of
        // 2,000 rows -> 11, the whole FETCH 67-69 ms -> 46-48).
        // Compressed in the row, not moved out of it unless nothing else makes the row fit (STORAGE MAIN). NULL for
        // contents stored before, until `mailadmin db backfill` stores theirs; empty for a summary over
        // FetchColumns.headerLimit. FETCH reads the header for both, as before.
        """
        ALTER TABLE contents ADD COLUMN summary_header bytea;
        ALTER TABLE contents ALTER COLUMN summary_header SET STORAGE MAIN;
        """,
    ]

    public static var latestVersion: Int { migrations.count }

    /// A migration's statements: SQL text with one statement per `;` at the end of a line; a `$$ … $$` function
    /// body stays whole.
    static func statements(of migration: String) -> [String] {
        var statements: [String] = []
        var current: [Substring] = []
        var insideBody = false
        for line in migration.split(separator: "\n", omittingEmptySubsequences: false) {
            current.append(line)
            if line.components(separatedBy: "$$").count % 2 == 0 { insideBody.toggle() }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !insideBody, trimmed.hasSuffix(";") {
                var statement = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
                statement.removeLast()
                statements.append(statement)
                current = []
            }
        }
        let rest = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return statements
    }

    /// Serialises concurrent `migrate` runs (two instances starting on an empty database).
    static let advisoryLock: Int64 = 0x4D61_696C_486F_7374  // "MailHost"

    public typealias SchemaState = IMAPEngine.SchemaState

    /// The schema version of the database: nil when MailHost has never run there (no `schema_migrations` table),
    /// 0 when the table exists but no migration completed.
    public static func currentVersion(_ connection: PostgresConnection, logger: Logger) async throws -> Int? {
        let exists = try await connection.query(
            "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger
        ).collect()
        guard let row = exists.first, try row.decode(Bool.self) else { return nil }
        let rows = try await connection.query(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations", logger: logger
        ).collect()
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    public static func state(_ connection: PostgresConnection, logger: Logger) async throws -> SchemaState {
        guard let version = try await currentVersion(connection, logger: logger) else { return .empty }
        if version == latestVersion { return .current }
        if version < latestVersion { return .behind(current: version, latest: latestVersion) }
        return .ahead(current: version, latest: latestVersion)
    }

    /// Runs `body` holding the migration lock (a session-level advisory lock: `migrate` inside takes it again, which
    /// PostgreSQL allows), so that checking the schema and creating it are one step among instances starting at once.
    public static func withMigrationLock<T>(
        _ connection: PostgresConnection, logger: Logger, _ body: () async throws -> T
    ) async throws -> T {
        try await connection.query("SELECT pg_advisory_lock(\(advisoryLock))", logger: logger)
        do {
            let result = try await body()
            try await connection.query("SELECT pg_advisory_unlock(\(advisoryLock))", logger: logger)
            return result
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(advisoryLock))", logger: logger)
            throw error
        }
    }

    /// Applies pending migrations, each in its own transaction, under an advisory lock. Idempotent.
    /// Returns the versions applied.
    @discardableResult
    public static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.query("SELECT pg_advisory_lock(\(advisoryLock))", logger: logger)
        do {
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                """, logger: logger)
            let current = try await currentVersion(connection, logger: logger) ?? 0
            guard current <= latestVersion else {
                throw MigrationError.newerSchema(current: current, latest: latestVersion)
            }
            var applied: [Int] = []
            for version in (current + 1)..<(latestVersion + 1) {
                try await connection.query("BEGIN", logger: logger)
                do {
                    // The extended query protocol takes one statement at a time.
                    for statement in statements(of: migrations[version - 1]) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO schema_migrations (version) VALUES (\(version))", logger: logger)
                    try await connection.query("COMMIT", logger: logger)
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
                applied.append(version)
            }
            try await connection.query("SELECT pg_advisory_unlock(\(advisoryLock))", logger: logger)
            return applied
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(advisoryLock))", logger: logger)
            throw error
        }
    }

    public enum MigrationError: Error, CustomStringConvertible {
        case newerSchema(current: Int, latest: Int)
        public var description: String {
            switch self {
            case .newerSchema(let current, let latest):
                "the database schema is at version \(current), newer than this build knows (\(latest)); upgrade MailHost"
            }
        }
    }
}
