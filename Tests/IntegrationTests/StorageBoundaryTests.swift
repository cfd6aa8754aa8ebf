import Foundation
import IMAPEngine
import Logging
import Storage
import StoragePostgres
import StoreAccounts
import Synchronization
import Testing

/// The storage boundary of issue #12 on the run's store (PostgreSQL, or SQLite with `MAILHOST_TEST_STORE=sqlite`),
/// used only through the protocols the executables see, with the backend built by the factory from a URL: schema preparation on an empty database, administration, credentials,
/// delivery with content shared within an account, the change feed's obligations and maintenance.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct StorageBoundaryTests {
    /// The test server's URL with the database replaced by `database`.
    static func url(of database: String) throws -> String {
        guard let base = TestEnvironment.databaseURL, var components = URLComponents(string: base) else {
            throw TestEnvironment.Missing()
        }
        components.path = "/" + database
        return components.string ?? base
    }

    @Test func aBackendFromAURLDoesWhatTheToolsNeed() async throws {
        let logger = TestEnvironment.logger
        let setting: String
        let empty: TestStorage
        switch TestEnvironment.storeKind {
        case .postgres:
            let configuration = try await TestDatabase.createBlank()
            empty = TestStorage(backend: .postgres(configuration))
            setting = try Self.url(of: configuration.database)
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "mh-boundary-\(UInt64.random(in: 0...UInt64.max))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            empty = TestStorage(backend: .sqlite(directory: directory))
            setting = empty.setting
        }
        defer { Task { await empty.drop() } }
        let backend = try Storage.open(
            setting, options: Storage.Options(operationTimeout: .seconds(15)), logger: logger)

        // Schema: empty, created once by `prepare`, then current; a second `prepare` applies nothing.
        #expect(try await backend.schema.state(logger: logger) == .empty)
        let first = try await backend.schema.prepare(logger: logger)
        #expect(first.found == .empty)
        #expect(first.applied == Array(1...backend.schema.latestVersion))
        #expect(try await backend.schema.state(logger: logger) == .current)
        let second = try await backend.schema.prepare(logger: logger)
        #expect(second.found == .current && second.applied.isEmpty)
        #expect(try await backend.schema.migrate(logger: logger).isEmpty)

        let feed = ChangeFeed()
        let running = Task { await backend.run(feed: feed) }
        defer { running.cancel() }

        // Administration and credentials.
        let admin = backend.administration
        let hash = try PasswordHash.hash("boundary pass")
        try await admin.addAccount(
            login: "boundary", passwordHash: hash, quotaBytes: nil, quotaMessages: nil, logger: logger)
        await #expect(throws: AdministrationError.userExists("boundary")) {
            try await admin.addAccount(
                login: "boundary", passwordHash: nil, quotaBytes: nil, quotaMessages: nil, logger: logger)
        }
        let account = try await admin.accountID("boundary", logger: logger)
        #expect(
            try await backend.credentials.credentials(login: "boundary", logger: logger)
                == StoreCredentials(passwordHash: hash, disabled: false))
        #expect(try await backend.credentials.credentials(login: "nobody-here", logger: logger) == nil)
        // With the cache of verified logins the servers use: the second login skips crypt(3); a wrong password, a
        // new password and (below) a disabled account are seen at once, whatever it holds.
        let verified = VerifiedLogins()
        let authenticator = StoreAccountAuthenticator(store: backend.credentials, verified: verified, logger: logger)
        let success = AuthenticationResult.success(login: "boundary", provision: false)
        #expect(await authenticator.authenticate(user: "boundary", password: "boundary pass", remote: nil) == success)
        #expect(verified.count == 1 && verified.hits == 0)
        #expect(await authenticator.authenticate(user: "boundary", password: "boundary pass", remote: nil) == success)
        #expect(verified.hits == 1)
        #expect(await authenticator.authenticate(user: "boundary", password: "wrong", remote: nil) == .failure)
        try await admin.setPassword(login: "boundary", hash: try PasswordHash.hash("new pass"), logger: logger)
        #expect(await authenticator.authenticate(user: "boundary", password: "boundary pass", remote: nil) == .failure)
        #expect(await authenticator.authenticate(user: "boundary", password: "new pass", remote: nil) == success)
        #expect(await authenticator.authenticate(user: "boundary", password: "new pass", remote: nil) == success)
        #expect(verified.hits == 2)

        // Delivery to two mailboxes of one account shares one stored content.
        let mail = backend.mail
        try await mail.createMailbox(account: account, name: MailboxName(normalizing: "Lists"), logger: logger)
        let message = ParsedMessage(parsing: Array(testMessage(subject: "shared").utf8))
        let date = InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: 0)
        let one = try await mail.append(
            account: account, mailbox: .inbox, message: message, flags: MessageFlags(), date: date, sharing: nil,
            claimRecent: false, logger: logger)
        let two = try await mail.append(
            account: account, mailbox: MailboxName(normalizing: "Lists"), message: message, flags: MessageFlags(),
            date: date, sharing: one.contentID, claimRecent: false, logger: logger)
        #expect(one.contentID == two.contentID)
        let statistics = try await admin.statistics(logger: logger)
        #expect(statistics.messages == 2 && statistics.storedContents == 1)
        #expect(try await mail.contentDigests(account: account, mailbox: .inbox, logger: logger).count == 1)

        // Disabling is announced on the feed after commit, to sessions of this process watching the account.
        let told = Mutex<[ChangeEvent]>([])
        let registration = feed.register(account: account) { event in told.withLock { $0.append(event) } }
        defer { feed.unregister(registration) }
        try await admin.setDisabled(login: "boundary", disabled: true, logger: logger)
        try await waitUntil("the disabling is announced") {
            told.withLock { $0.contains(.accountDisabled) }
        }
        #expect(try await backend.credentials.credentials(login: "boundary", logger: logger)?.disabled == true)
        #expect(await authenticator.authenticate(user: "boundary", password: "new pass", remote: nil) == .failure)
        #expect(verified.hits == 2)

        // Maintenance runs (nothing is old enough to go).
        #expect(
            try await backend.maintenance.collectGarbage(
                retention: .seconds(86_400), tombstoneRetention: .seconds(86_400), logger: logger) == 0)
        #expect(try await admin.accounts(logger: logger).map(\.login) == ["boundary"])
    }
}
