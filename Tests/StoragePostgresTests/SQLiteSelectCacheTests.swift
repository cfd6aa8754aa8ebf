import Foundation
import IMAPEngine
import Logging
import Testing

@testable import StorageSQLite

/// SELECT on SQLite keeps a mailbox's UIDs and first unseen message while its row shows the same HIGHESTMODSEQ and
/// UIDNEXT (`SelectedUIDs`). Whatever changes the mailbox, in the serving process or in another one (mailadmin,
/// `mailhost deliver`), the next SELECT answers as a read of the rows would.
@Suite struct SQLiteSelectCacheTests {
    @Test func selectSeesEveryChangeFromThisProcessAndAnother() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mh-select-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let path = directory.appendingPathComponent("mail.db").path
        // The server's store, and another process's (a second store on the same file: its own connections and cache).
        let server = try SQLiteBackend(path: path, serving: false, operationTimeout: .seconds(10), logger: logger)
        _ = try await server.schema.prepare(logger: logger)
        let other = try SQLiteBackend(path: path, serving: false, operationTimeout: .seconds(10), logger: logger)
        let account = try await server.mail.account(login: "ann", create: true, logger: logger)
        func append(_ store: any DeliveryStore, _ n: Int, seen: Bool = false) async throws -> UID {
            try await store.append(
                account: account, mailbox: .inbox,
                message: ParsedMessage(parsing: Array("Subject: m\(n)\r\n\r\nbody \(n)\r\n".utf8)),
                flags: MessageFlags(system: seen ? .seen : []),
                date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0), logger: logger
            ).uid
        }
        func selected() async throws -> (uids: [UInt32], firstUnseen: UInt32?) {
            let snapshot = try await server.mail.select(
                account: account, name: .inbox, claimRecent: false, logger: logger)
            return (snapshot.uids.map(\.rawValue), snapshot.firstUnseen?.rawValue)
        }

        for n in 1...3 { _ = try await append(server.mail, n, seen: true) }
        #expect(try await selected() == ([1, 2, 3], nil))
        #expect(try await selected() == ([1, 2, 3], nil))  // from the cache: the same
        // Another process appends.
        _ = try await append(other.mail, 4)
        #expect(try await selected() == ([1, 2, 3, 4], 4))
        // Another process sets \Seen: the first unseen goes with it.
        let inbox = try await server.mail.select(account: account, name: .inbox, claimRecent: false, logger: logger)
        _ = try await other.mail.updateFlags(
            account: account, mailbox: inbox.id, uids: [UID(4)],
            update: FlagUpdate(kind: .add, flags: MessageFlags(system: .seen)), logger: logger)
        #expect(try await selected() == ([1, 2, 3, 4], nil))
        // This process clears it again, then another one expunges.
        _ = try await server.mail.updateFlags(
            account: account, mailbox: inbox.id, uids: [UID(2)],
            update: FlagUpdate(kind: .remove, flags: MessageFlags(system: .seen)), logger: logger)
        #expect(try await selected() == ([1, 2, 3, 4], 2))
        _ = try await other.mail.expunge(account: account, mailbox: inbox.id, uids: nil, logger: logger)
        #expect(try await selected() == ([1, 2, 3, 4], 2))  // nothing had \Deleted
        _ = try await other.mail.updateFlags(
            account: account, mailbox: inbox.id, uids: [UID(1), UID(2)],
            update: FlagUpdate(kind: .add, flags: MessageFlags(system: .deleted)), logger: logger)
        _ = try await other.mail.expunge(account: account, mailbox: inbox.id, uids: nil, logger: logger)
        #expect(try await selected() == ([3, 4], nil))
        // A mailbox deleted and made again under the same name is a new one (new UIDVALIDITY), never the old UIDs.
        let work = MailboxName(normalizing: "Work")
        try await server.mail.createMailbox(account: account, name: work, logger: logger)
        _ = try await server.mail.append(
            account: account, mailbox: work, message: ParsedMessage(parsing: Array("Subject: w\r\n\r\nw\r\n".utf8)),
            flags: MessageFlags(), date: InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0),
            logger: logger)
        let first = try await server.mail.select(account: account, name: work, claimRecent: false, logger: logger)
        #expect(first.uids == [UID(1)])
        try await other.mail.deleteMailbox(account: account, name: work, logger: logger)
        try await other.mail.createMailbox(account: account, name: work, logger: logger)
        let again = try await server.mail.select(account: account, name: work, claimRecent: false, logger: logger)
        #expect(again.uids.isEmpty && again.uidValidity != first.uidValidity)
    }
}
