import ArgumentParser
import Foundation
import Glibc
import Logging
import IMAPEngine
import Storage

/// `mailadmin`: manages MailHost's store directly, as doveadm does (DESIGN.md §1), so it works with every server
/// stopped; changes reach running servers through the change feed.
///
/// `--storage URL` may stand anywhere on the command line (`mailadmin --storage URL db migrate`); without it,
/// `MAILHOST_STORAGE` is used.
@main
struct MailAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailadmin",
        abstract: "Manage MailHost accounts, mailboxes and the database.",
        discussion: """
            Every command takes --storage URL (or the MAILHOST_STORAGE environment variable), or --config FILE (or \
            MAILHOST_CONFIG): the server's configuration file, whose storage key is used. Without any, the embedded \
            store the server uses by default: sqlite:./mailhost-data/mail.db ($STATE_DIRECTORY/mail.db under \
            systemd).
            """,
        version: MailHostVersion.current,
        subcommands: [
            DatabaseCommand.self, UserCommand.self, MailboxCommand.self, QuotaCommand.self, ImportCommand.self,
            ExportCommand.self, StatsCommand.self, MigrateCommand.self,
        ])

    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        do {
            StorageOption.url = try StorageOption.extract("--storage", what: "a URL", from: &arguments)
            StorageOption.configFile = try StorageOption.extract("--config", what: "a file", from: &arguments)
        } catch {
            exit(withError: error)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // A subcommand's help also names the options taken before parsing, valid with every subcommand.
            if exitCode(for: error) == .success, arguments.contains(where: { $0 == "--help" || $0 == "-h" }),
                arguments.first != "--help", arguments.first != "-h"
            {
                print(fullMessage(for: error))
                print(Self.globalOptionsHelp)
                Self.exit()
            }
            exit(withError: error)
        }
    }
}

extension MailAdmin {
    static let globalOptionsHelp = """

        GLOBAL OPTIONS (before or after the subcommand):
          --storage <url>         The store: postgres://… or sqlite:PATH (else MAILHOST_STORAGE).
          --config <file>         The server's configuration file, for its storage key (else MAILHOST_CONFIG).
        """
}

/// The global `--storage` and `--config` options, taken out of the arguments before subcommand parsing (they may
/// stand anywhere on the command line).
enum StorageOption {
    nonisolated(unsafe) static var url: String?
    nonisolated(unsafe) static var configFile: String?

    /// Removes every `option VALUE` and `option=VALUE` from `arguments`; the last value given.
    static func extract(_ option: String, what: String, from arguments: inout [String]) throws -> String? {
        var found: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == option {
                guard index + 1 < arguments.count else { throw ValidationError("\(option) needs \(what)") }
                found = arguments[index + 1]
                arguments.removeSubrange(index...(index + 1))
            } else if argument.hasPrefix(option + "=") {
                found = String(argument.dropFirst(option.count + 1))
                arguments.remove(at: index)
            } else {
                index += 1
            }
        }
        return found
    }

    /// The storage setting, in the server's order: `--storage`, else `MAILHOST_STORAGE`, else the `storage` key of
    /// the configuration file (`--config`, else `MAILHOST_CONFIG`), else the server's default, the embedded store in
    /// the data directory (`Storage.defaultSetting`).
    static func setting() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let url = url ?? environment["MAILHOST_STORAGE"] { return url }
        if let file = configFile ?? environment["MAILHOST_CONFIG"] {
            let entries: [ConfigurationFile.Entry]
            do {
                entries = try ConfigurationFile.read(file)
            } catch {
                throw ValidationError(error.description)
            }
            if let storage = entries.last(where: { $0.key == "storage" }) {
                guard storage.values.count == 1, let value = storage.values.first, !value.isEmpty else {
                    throw ValidationError("\(file):\(storage.line): storage takes one URL")
                }
                return value
            }
        }
        return Storage.defaultSetting(environment: environment)
    }

    /// The configured store, not yet running. Administration runs bulk work (imports, exports) where no client
    /// waits: two minutes per store call unless the storage URL says otherwise (a busy server's 15 s would fail an
    /// import of large messages half-way).
    static func backend() throws -> any StoreBackend {
        let setting = try setting()
        do {
            // A SQLite store is made on first use, by the tools as by the server.
            try Storage.createDirectory(of: setting)
            return try Storage.open(
                setting, options: Storage.Options(operationTimeout: .seconds(120), urlTimeoutWins: true),
                logger: adminLogger)
        } catch {
            throw ValidationError(String(describing: error))
        }
    }
}

var adminLogger: Logger {
    var logger = Logger(label: "mailadmin")
    logger.logLevel = .error
    return logger
}

/// Prints to standard error and fails with exit code 1.
struct AdminFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` on the configured store's schema, turning failures to reach the store into one clear line.
func withSchema<T: Sendable>(_ body: (any StoreSchema) async throws -> T) async throws -> T {
    let schema = try StorageOption.backend().schema
    do {
        return try await body(schema)
    } catch let error as AdminFailure {
        throw error
    } catch {
        throw AdminFailure(String(describing: error))
    }
}

/// Runs `body` with the configured store: checks that it can be reached and that its schema is current first (fast,
/// clear errors), then runs it (its connection pool) for the duration.
func withStore<T: Sendable>(
    _ body: @Sendable (any DeliveryStore, any StoreAdministration) async throws -> T
) async throws -> T {
    let backend = try StorageOption.backend()
    try await withSchema { schema in
        // A SQLite file gets its schema (new, or upgraded) at once, as `mailhost serve` would make it; a PostgreSQL
        // database is upgraded only by `mailadmin db migrate`.
        if Storage.isSQLite(try StorageOption.setting()) { _ = try await schema.prepare(logger: adminLogger) }
        try await requireSchema(schema)
    }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            await backend.run(feed: nil)
            return nil
        }
        defer { group.cancelAll() }
        do {
            return try await body(backend.mail, backend.administration)
        } catch let error as StoreError {
            throw AdminFailure(error.description)
        } catch let error as AdministrationError {
            throw AdminFailure(error.description)
        }
    }
}

/// Prints `value` as JSON on one line (keys sorted, so output is stable for scripts).
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Writes a line to standard error (progress, prompts, warnings).
func printError(_ text: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((text + terminator).utf8))
}

var standardInputIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }
var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

/// A mailbox name given on the command line, checked like CREATE checks it.
func mailboxName(_ text: String, forCreation: Bool = false) throws -> MailboxName {
    var name = MailboxName(normalizing: text)
    if forCreation, name.name.count > 1, name.name.hasSuffix("/") {
        name = MailboxName(normalizing: String(name.name.dropLast()))
    }
    if forCreation, let problem = name.creationProblem { throw AdminFailure("\(text): \(problem.lowercased())") }
    return name
}
