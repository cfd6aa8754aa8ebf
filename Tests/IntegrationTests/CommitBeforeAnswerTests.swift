import Foundation
import IMAPEngine
import PostgresNIO
import StoragePostgres
import Testing

/// A write outside BEGIN/COMMIT is committed by PostgreSQL at the Sync that follows it, after the statement's rows
/// and CommandComplete are already in the server's output buffer. When the server dies in that moment (an immediate
/// shutdown, or the restart after any backend crashes), each backend's last words flush that buffer: the client gets
/// CommandComplete for a transaction that never commits. PostgresNIO ends the query there, before ReadyForQuery, so
/// a store that answered at that point would tell the client "done" (APPENDUID, flags, EXPUNGE) and lose it.
///
/// Here each write is parked exactly in that moment: a deferred constraint trigger runs at commit, after
/// CommandComplete, and waits for an advisory lock the test holds. Then PostgreSQL is stopped with `-m immediate` and
/// started again. A write the store reported as done must be there.
@Suite(
    .enabled(if: TestEnvironment.readyOnPostgres && PrivatePostgres.available, TestEnvironment.postgresSkipReason),
    .serialized)
struct CommitBeforeAnswerTests {
    static let lock: Int64 = 4242

    @Test func aWriteIsReportedDoneOnlyOnceCommitted() async throws {
        let postgres = try await PrivatePostgres.start()
        defer { Task { await postgres.remove() } }
        let server = try await TestServer.start(
            on: TestStorage(backend: .postgres(postgres.configuration)), operationTimeout: .seconds(10))
        do {
            try await Self.check(server, postgres)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    static func check(_ server: TestServer, _ postgres: PrivatePostgres) async throws {
        let logger = TestEnvironment.logger
        let database = postgres.configuration
        let store = server.store
        let account = try await server.account()
        let inboxName = MailboxName(normalizing: "INBOX")
        let seeded = try #require(try await server.seed(messages: [testMessage(subject: "seed")]).first)
        let inbox = try await store.select(account: account, name: inboxName, claimRecent: false, logger: logger).id
        try await database.withConnection(logger: logger) { connection in
            try await connection.query(
                """
                CREATE FUNCTION park_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_advisory_xact_lock(\(unescaped: String(Self.lock))); RETURN NULL; END $$
                """, logger: logger)
            try await connection.query(
                """
                CREATE CONSTRAINT TRIGGER park_commit AFTER INSERT OR UPDATE OR DELETE ON messages
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION park_commit()
                """, logger: logger)
        }
        func row(_ sql: PostgresQuery) async throws -> PostgresRow? {
            try await database.withConnection(logger: logger) { try await $0.query(sql, logger: logger).collect() }
                .first
        }

        // APPEND (one statement).
        let appended = await Self.crashWhileCommitting(postgres) { () async throws(StoreError) in
            try await store.append(
                account: account, mailbox: inboxName,
                message: ParsedMessage(parsing: Array("Subject: a\r\n\r\nb\r\n".utf8)),
                flags: MessageFlags(), date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0),
                logger: logger)
        }
        if case .success(let result) = appended {
            #expect(
                try await row("SELECT 1 FROM messages WHERE uid = \(Int64(result.uid.rawValue))") != nil,
                "APPEND reported UID \(result.uid.rawValue), which the database does not have")
        }

        // STORE (one statement).
        let flagged = await Self.crashWhileCommitting(postgres) { () async throws(StoreError) in
            try await store.updateFlags(
                account: account, mailbox: inbox, uids: [seeded],
                update: FlagUpdate(kind: .add, flags: MessageFlags(system: .flagged)), logger: logger)
        }
        if case .success = flagged {
            let flags = try await row("SELECT flags FROM messages WHERE uid = \(Int64(seeded.rawValue))")
            #expect(
                try flags.map { try $0.decode(Int16.self) & Int16(SystemFlags.flagged.rawValue) != 0 } == true,
                "STORE reported \\Flagged, which the database does not have")
        }

        // COPY (a transaction: its COMMIT waits).
        try await store.createMailbox(
            account: account, name: MailboxName(normalizing: "Other"), specialUse: nil, logger: logger)
        let copied = await Self.crashWhileCommitting(postgres) { () async throws(StoreError) in
            try await store.copy(
                account: account, from: inbox, uids: [seeded], to: MailboxName(normalizing: "Other"), logger: logger)
        }
        if case .success(let result) = copied, !result.destinationUIDs.isEmpty {
            #expect(
                try await row(
                    "SELECT 1 FROM messages m JOIN mailboxes b USING (account_id, mailbox_id) WHERE b.name = 'Other'")
                    != nil, "COPY reported a copy, which the database does not have")
        }

        // EXPUNGE (one statement), of a message marked \Deleted beforehand.
        _ = try await store.updateFlags(
            account: account, mailbox: inbox, uids: [seeded],
            update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: logger)
        let expunged = await Self.crashWhileCommitting(postgres) { () async throws(StoreError) in
            try await store.expunge(account: account, mailbox: inbox, uids: nil, logger: logger)
        }
        if case .success(let result) = expunged, !result.uids.isEmpty {
            #expect(
                try await row("SELECT 1 FROM messages WHERE uid = \(Int64(seeded.rawValue))") == nil,
                "EXPUNGE reported UID \(seeded.rawValue) gone, which the database still has")
        }

        // Each crash struck while the write was committing, so none of them may have been reported as done.
        #expect(appended.failure != nil, "APPEND was reported done, but its commit never completed")
        #expect(flagged.failure != nil, "STORE was reported done, but its commit never completed")
        #expect(copied.failure != nil, "COPY was reported done, but its commit never completed")
        #expect(expunged.failure != nil, "EXPUNGE was reported done, but its commit never completed")
    }

    /// Runs `operation` while the test holds the advisory lock, waits until its commit waits for the lock (so its
    /// CommandComplete is written and its commit not done), stops PostgreSQL immediately and starts it again.
    static func crashWhileCommitting<T: Sendable>(
        _ postgres: PrivatePostgres, _ operation: @escaping @Sendable () async throws(StoreError) -> T
    ) async -> Result<T, StoreError> {
        let logger = TestEnvironment.logger
        do {
            let holder = try await PostgresConnection.connect(
                configuration: postgres.configuration.connectionConfiguration, id: 99, logger: logger)
            try await holder.query("SELECT pg_advisory_lock(\(Self.lock))", logger: logger)
            let write = Task { () async -> Result<T, StoreError> in
                do throws(StoreError) { return .success(try await operation()) } catch { return .failure(error) }
            }
            try await waitUntil("the write waits in its commit") {
                let rows = try await holder.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'",
                    logger: logger
                ).collect()
                return try rows.first?.decode(Int64.self) ?? 0 > 0
            }
            try await postgres.stopImmediately()
            let outcome = await write.value
            try? await holder.close()
            try await postgres.startServer()
            return outcome
        } catch {
            Issue.record("crash during commit: \(error)")
            return .failure(.internal("test setup: \(error)"))
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
