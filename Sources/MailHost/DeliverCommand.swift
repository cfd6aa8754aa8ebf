import ArgumentParser
import Foundation
import IMAPEngine
import Logging
import Storage

/// `mailhost deliver --to USER [--mailbox NAME] < message`: delivery for MTAs that pipe (Postfix's
/// `mailbox_command`, Exim's pipe transport), with sysexits(3) exit codes the MTA understands.
struct DeliverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliver", abstract: "Deliver one message from standard input into an account.",
        discussion: """
            Exit codes (sysexits): 0 delivered, 64 usage, 65 bad input, 67 unknown user, 69 mailbox disabled \
            or over quota (with --quota-permanent), 75 temporary failure (database, over quota), 78 configuration.

            The store is the server's: --storage URL or --config FILE (or MAILHOST_STORAGE, MAILHOST_CONFIG), \
            with its other settings (--store-timeout, ...) as `mailhost serve --help` lists them.
            """)

    // The server's settings, so that a pipe from the MTA finds the same store; not listed in this help.
    @OptionGroup(visibility: .hidden) var options: ServerOptions
    @Option(help: "The account (login name) to deliver to.") var to: String
    @Option(help: "Mailbox to file into; INBOX when it does not exist.") var mailbox: String?
    @Option(help: "Envelope sender for the Return-Path: header.") var from: String = "MAILER-DAEMON"
    @ArgumentParser.Flag(help: "Over quota is a permanent failure (69) instead of a temporary one (75).")
    var quotaPermanent = false

    enum Exit: Int32 {
        case ok = 0, usage = 64, dataError = 65, noUser = 67, unavailable = 69, temporaryFailure = 75, config = 78
    }

    func run() async throws {
        let code = await deliver()
        if code != .ok { throw ExitCode(code.rawValue) }
    }

    func deliver() async -> Exit {
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: .warning) }
        let logger = Logger(label: "mailhost-deliver")
        func fail(_ code: Exit, _ message: String) -> Exit {
            FileHandle.standardError.write(Data("mailhost deliver: \(message)\n".utf8))
            return code
        }
        let settings: ServerConfiguration
        do {
            settings = try options.load()
        } catch {
            return fail(.config, "\(error)")
        }
        let url = settings.storage ?? Storage.defaultSetting(environment: ProcessInfo.processInfo.environment)
        let backend: any StoreBackend
        do {
            backend = try Storage.open(
                url, options: Storage.Options(operationTimeout: settings.storeTimeout), logger: logger)
        } catch {
            return fail(.config, "\(error)")
        }
        let input = FileHandle.standardInput.readDataToEndOfFile()
        guard !input.isEmpty else { return fail(.dataError, "empty message on standard input") }
        guard input.count <= settings.limits.maxAppendSize else {
            return fail(.dataError, "message larger than max-append-size (\(settings.limits.maxAppendSize) bytes)")
        }
        do {
            guard try await backend.schema.state(logger: logger) == .current else {
                throw ServeError("the database schema is not current: run mailadmin db migrate")
            }
        } catch {
            return fail(.temporaryFailure, "\(error)")
        }
        return await withTaskGroup(of: Exit?.self) { group in
            group.addTask {
                await backend.run(feed: nil)
                return nil
            }
            defer { group.cancelAll() }
            let store = backend.mail
            let delivery = LocalDelivery(
                store: store, domains: [], provisionSystemUsers: settings.auth.contains("pam"),
                quotaTemporary: !quotaPermanent, minimumUID: UInt32(clamping: settings.pamMinimumUID), logger: logger)
            let recipient: LocalDelivery.Recipient
            switch await delivery.resolve(login: to, folder: mailbox, address: to) {
            case .recipient(let resolved): recipient = resolved
            case .badAddress: return fail(.usage, "invalid user name \(to)")
            case .foreignDomain, .unknownUser: return fail(.noUser, "no such user: \(to)")
            case .disabled: return fail(.unavailable, "account \(to) is disabled")
            case .overQuota:
                return fail(quotaPermanent ? .unavailable : .temporaryFailure, "\(to) is over quota")
            case .unavailable: return fail(.temporaryFailure, "the database is unavailable")
            }
            let trace = Array("Return-Path: <\(from)>\r\n".utf8)
            let message = ParsedMessage(parsing: trace + Array(input))
            switch await delivery.deliver(message, to: [recipient]).first {
            case .stored: return .ok
            case .overQuota: return fail(quotaPermanent ? .unavailable : .temporaryFailure, "\(to) is over quota")
            case .unavailable: return fail(.temporaryFailure, "the database is unavailable")
            case .failed(let reason): return fail(.temporaryFailure, reason)
            case nil: return fail(.temporaryFailure, "nothing delivered")
            }
        }
    }
}
