import Foundation
import PostgresNIO
import Synchronization
import Testing

@testable import StoragePostgres

/// PostgreSQL stopped at once (`-m immediate`, as after any backend's crash) while a result is half read: PostgresNIO
/// 1.33 crashed the process on the read completion SwiftNIO makes when it drains the closed socket unasked
/// (`ReadCompleteGuard`). On a private server: an immediate stop of the shared one would stop every other test.
@Suite(
    .enabled(if: TestEnvironment.readyOnPostgres && PrivatePostgres.available, TestEnvironment.postgresSkipReason),
    .serialized)
struct ReadCompleteGuardTests {
    @Test func aResultPausedMidwayFailsWhenTheDatabaseStopsAtOnce() async throws {
        let postgres = try await PrivatePostgres.start()
        defer { Task { await postgres.remove() } }
        let client = PostgresClient(configuration: postgres.configuration.clientConfiguration)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let heldBefore = ReadCompleteGuard.heldBack.withLock { $0 }
        let logger = TestEnvironment.logger
        // Each try reads the rows PostgreSQL sent before it sleeps in the last one, pauses after the first row (so
        // PostgresNIO stops asking for reads), and stops PostgreSQL at once: the backend's last rows, its warning and
        // its FIN arrive together, and SwiftNIO drains them unasked. Tried again (at most three times) only if the
        // socket happened to be read on request, which leaves nothing to hold back.
        var tries = 0
        while ReadCompleteGuard.heldBack.withLock({ $0 }) == heldBefore, tries < 3 {
            tries += 1
            if tries > 1 { try await postgres.startServer() }
            let outcome = try await GuardedClient(client).withConnection { connection -> String in
                #expect(try await ReadCompleteGuard.isInstalled(on: connection))
                let rows = try await connection.query(
                    "SELECT g, repeat('x', 200) FROM generate_series(1, 300) g UNION ALL SELECT 0, pg_sleep(10)::text",
                    logger: logger)
                var iterator = rows.makeAsyncIterator()
                #expect(try await iterator.next() != nil)
                try await postgres.stopImmediately()
                try await waitUntil("the connection is closed") { connection.isClosed }
                do {
                    while try await iterator.next() != nil {}
                    return "complete"
                } catch {
                    return "failed"
                }
            }
            // Cut short by the stop, whether or not anything was held back.
            #expect(outcome == "failed")
        }
        #expect(ReadCompleteGuard.heldBack.withLock { $0 } > heldBefore)
        // And the process lives: without the guard it ended at the first completion held back here.
    }
}
