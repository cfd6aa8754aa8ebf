import Foundation
import GRDB
import IMAPEngine
import Logging
import Testing

@testable import StorageSQLite

/// The SQLite store indexes search text behind the writes (`SQLiteIndexer`): SEARCH finds a message the same before
/// and after its text moved into the trigram index, for every text key.
@Suite struct SQLiteIndexerTests {
    @Test func searchFindsMessagesBeforeAndAfterIndexing() async throws {
        // A backend of the test's own that does not run (its indexer would race the test).
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-index-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let backend = try SQLiteBackend(
            path: directory.appendingPathComponent("mail.db").path, serving: false, operationTimeout: .seconds(10),
            logger: logger)
        _ = try await backend.schema.prepare(logger: logger)
        let account = try await backend.mail.account(login: "ann", create: true, logger: logger)
        do {
            let f = (store: backend.mail, account: account, logger: logger)
            let text = """
                From: Zoë Example <zoe@example.org>\r\nTo: team@example.net\r\nSubject: Quarterly numbers\r\n\
                X-Ticket: ABC-1234\r\n\r\nThe forecast_rate is 100% confirmed.\r\n
                """
            let appended = try await f.store.append(
                account: f.account, mailbox: .inbox, message: ParsedMessage(parsing: Array(text.utf8)),
                flags: MessageFlags(), date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0),
                logger: f.logger)
            _ = try await f.store.append(
                account: f.account, mailbox: .inbox,
                message: ParsedMessage(parsing: Array("Subject: other\r\n\r\nx\r\n".utf8)),
                flags: MessageFlags(), date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0),
                logger: f.logger)
            let inbox = try await f.store.select(account: f.account, name: .inbox, claimRecent: false, logger: f.logger)
            let queries: [SearchQuery] = [
                .body("forecast_rate"), .body("100% conf"), .text("QUARTERLY"), .subject("numbers"),
                .address(.from, "zoë"), .address(.to, "team@"), .header(name: "X-Ticket", value: "abc-12"),
            ]
            func found() async throws -> [[UID]] {
                var result: [[UID]] = []
                for query in queries {
                    result.append(
                        try await f.store.search(
                            account: f.account, mailbox: inbox.id, query: query, maxUID: UID(UInt32.max),
                            logger: f.logger))
                }
                return result
            }
            let expected = Array(repeating: [appended.uid], count: queries.count)
            #expect(try await found() == expected)
            let indexer = SQLiteIndexer(store: backend.store, logger: f.logger)
            #expect(try await indexer.pending() == 2)
            #expect(try await indexer.indexBatch() == 0)
            let indexed = try await backend.store.pool.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM contents_search") ?? 0
            }
            #expect(indexed == 2)
            #expect(try await found() == expected)
            // A word in no message is found in neither table.
            #expect(
                try await f.store.search(
                    account: f.account, mailbox: inbox.id, query: .text("nowhere"), maxUID: UID(UInt32.max),
                    logger: f.logger
                ).isEmpty)
        }
    }
}

/// A SQLite file of an older version is upgraded by the server that opens it (one process serves a file, so no
/// older instance can still be running on it).
@Suite struct SQLiteUpgradeTests {
    @Test func anOlderFileIsUpgradedWhenPrepared() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-upgrade-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("mail.db").path
        // The file as version 1 left it.
        let old = try DatabaseQueue(path: path)
        try await old.write { db in
            try db.execute(sql: "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)")
            try db.execute(sql: SQLiteSchema.migrations[0])
            try db.execute(sql: "INSERT INTO schema_migrations (version) VALUES (1)")
        }
        try old.close()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let backend = try SQLiteBackend(path: path, serving: false, operationTimeout: .seconds(10), logger: logger)
        let latest = backend.schema.latestVersion
        #expect(latest >= 2)
        #expect(try await backend.schema.state(logger: logger) == .behind(current: 1, latest: latest))
        let (found, applied) = try await backend.schema.prepare(logger: logger)
        #expect(found == .behind(current: 1, latest: latest))
        #expect(applied == Array(2...latest))
        #expect(try await backend.schema.state(logger: logger) == .current)
        // And the upgraded file works: an account, a message, a search through the new table.
        let account = try await backend.mail.account(login: "old", create: true, logger: logger)
        _ = try await backend.mail.append(
            account: account, mailbox: .inbox,
            message: ParsedMessage(parsing: Array("Subject: kept\r\n\r\nx\r\n".utf8)),
            flags: MessageFlags(), date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0), logger: logger)
        let inbox = try await backend.mail.select(account: account, name: .inbox, claimRecent: false, logger: logger)
        #expect(
            try await backend.mail.search(
                account: account, mailbox: inbox.id, query: .subject("kept"), maxUID: UID(UInt32.max), logger: logger)
                == inbox.uids)
    }
}
