import ArgumentParser
import Logging
import IMAPEngine

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Database schema.", subcommands: [Migrate.self, Status.self, Backfill.self])

    /// `db migrate`: applies pending migrations; running it again changes nothing.
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or upgrade the schema (idempotent).")

        func run() async throws {
            let (applied, latest) = try await withSchema { schema in
                (try await schema.migrate(logger: adminLogger), schema.latestVersion)
            }
            if applied.isEmpty {
                print("schema is up to date (version \(latest))")
            } else {
                print(
                    "applied migrations \(applied.map(String.init).joined(separator: ", ")); schema is at version \(latest)"
                )
            }
        }
    }

    /// `db status`: the schema version and what is pending.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the schema version and pending migrations.")

        @ArgumentParser.Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (current, latest) = try await withSchema { schema in
                (try await schema.currentVersion(logger: adminLogger), schema.latestVersion)
            }
            let version = current ?? 0
            let pending = Array(stride(from: version + 1, through: latest, by: 1))
            if json {
                print(
                    "{\"version\":\(version),\"latest\":\(latest),\"pending\":[\(pending.map(String.init).joined(separator: ","))]}"
                )
            } else {
                print("schema version: \(current.map(String.init) ?? "none (empty database)")")
                print("latest version: \(latest)")
                print("pending:        \(pending.isEmpty ? "none" : pending.map(String.init).joined(separator: ", "))")
            }
        }
    }

    /// `db backfill`: computes the sort, thread and preview keys of messages stored before they existed.
    struct Backfill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compute the keys and header summaries of messages stored by an older version (resumable).",
            discussion: """
                Messages stored before schema migrations 5 and 6 have no sort, thread or preview keys: they sort \
                as empty strings, thread by subject only and have PREVIEW NIL until this has run. Messages stored \
                before migration 8 have no header summary: their header downloads read the whole header until \
                this has run. It works in batches of its own transactions while servers run; interrupted, it goes \
                on where it stopped.
                """)
        @Option(help: "Messages per transaction.") var batch = 500

        func validate() throws {
            guard (1...10_000).contains(batch) else { throw ValidationError("--batch is 1 to 10000") }
        }

        func run() async throws {
            let batch = self.batch
            var total = 0
            while true {
                let (done, left) = try await withStore { _, admin in
                    try await admin.backfillKeys(batch: batch, logger: adminLogger)
                }
                total += done
                if done > 0 { print("backfilled \(total) messages, \(left) left") }
                if left == 0 || done == 0 { break }
            }
            print("keys are up to date (\(total) messages backfilled)")
            // Header summaries (schema migration 8), in one walk over the contents' keys.
            var position: ContentKey? = nil
            var summaries = 0
            while true {
                let after = position
                let (done, next) = try await withStore { _, admin in
                    try await admin.backfillHeaderSummaries(after: after, batch: batch, logger: adminLogger)
                }
                summaries += done
                if done > 0 { print("stored the header summaries of \(summaries) messages") }
                guard let next else { break }
                position = next
            }
            print("header summaries are up to date (\(summaries) messages backfilled)")
        }
    }
}
