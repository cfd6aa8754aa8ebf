import ArgumentParser
import Logging
import PostgresNIO
import StoragePostgres

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Database schema.", subcommands: [Migrate.self, Status.self])

    /// `db migrate`: applies pending migrations; running it again changes nothing.
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or upgrade the schema (idempotent).")

        func run() async throws {
            let applied = try await withDatabase { connection in
                try await PostgresSchema.migrate(connection, logger: adminLogger)
            }
            if applied.isEmpty {
                print("schema is up to date (version \(PostgresSchema.latestVersion))")
            } else {
                print(
                    "applied migrations \(applied.map(String.init).joined(separator: ", ")); schema is at version \(PostgresSchema.latestVersion)"
                )
            }
        }
    }

    /// `db status`: the schema version and what is pending.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the schema version and pending migrations.")

        @ArgumentParser.Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let current = try await withDatabase { connection in
                try await PostgresSchema.currentVersion(connection, logger: adminLogger)
            }
            let version = current ?? 0
            let pending = Array(stride(from: version + 1, through: PostgresSchema.latestVersion, by: 1))
            if json {
                print(
                    "{\"version\":\(version),\"latest\":\(PostgresSchema.latestVersion),\"pending\":[\(pending.map(String.init).joined(separator: ","))]}"
                )
            } else {
                print("schema version: \(current.map(String.init) ?? "none (empty database)")")
                print("latest version: \(PostgresSchema.latestVersion)")
                print("pending:        \(pending.isEmpty ? "none" : pending.map(String.init).joined(separator: ", "))")
            }
        }
    }
}
