import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StoragePostgres

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
        discussion: "Every command takes --storage URL (or the MAILHOST_STORAGE environment variable).",
        subcommands: [DatabaseCommand.self, UserCommand.self])

    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        do {
            StorageOption.url = try StorageOption.extract(from: &arguments)
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
            exit(withError: error)
        }
    }
}

/// The global `--storage` option, taken out of the arguments before subcommand parsing.
enum StorageOption {
    nonisolated(unsafe) static var url: String?

    static func extract(from arguments: inout [String]) throws -> String? {
        var found: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--storage" {
                guard index + 1 < arguments.count else { throw ValidationError("--storage needs a URL") }
                found = arguments[index + 1]
                arguments.removeSubrange(index...(index + 1))
            } else if argument.hasPrefix("--storage=") {
                found = String(argument.dropFirst("--storage=".count))
                arguments.remove(at: index)
            } else {
                index += 1
            }
        }
        return found
    }

    static func configuration() throws -> PostgresStoreConfiguration {
        guard let url = url ?? ProcessInfo.processInfo.environment["MAILHOST_STORAGE"] else {
            throw ValidationError("no store given: pass --storage postgres://… or set MAILHOST_STORAGE")
        }
        do {
            return try PostgresStoreConfiguration(url: url)
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

/// Runs `body` on one database connection, turning connection failures into one clear line.
func withDatabase<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
    let configuration = try StorageOption.configuration()
    do {
        return try await configuration.withConnection(logger: adminLogger, body)
    } catch let error as PostgresStoreConfiguration.StartupError {
        throw AdminFailure(error.description)
    }
}
