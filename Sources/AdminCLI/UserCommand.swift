import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StoragePostgres

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Accounts.", subcommands: [List.self])

    /// `user list`: every account with its mailbox count, message count and size.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts.")

        @Flag(help: "Print JSON.") var json = false

        struct Row: Encodable {
            var login: String
            var disabled: Bool
            var mailboxes: Int64
            var messages: Int64
            var bytes: Int64
            var created: String
        }

        func run() async throws {
            let rows = try await withDatabase { connection in
                try await requireSchema(connection)
                var result: [Row] = []
                let query = try await connection.query(
                    """
                    SELECT a.login, a.disabled,
                        (SELECT count(*) FROM mailboxes b WHERE b.account_id = a.account_id),
                        (SELECT count(*) FROM messages m WHERE m.account_id = a.account_id),
                        (SELECT coalesce(sum(size), 0)::bigint FROM messages m WHERE m.account_id = a.account_id),
                        to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                    FROM accounts a ORDER BY a.login
                    """, logger: adminLogger)
                for try await (login, disabled, mailboxes, messages, bytes, created) in query.decode(
                    (String, Bool, Int64, Int64, Int64, String).self)
                {
                    result.append(
                        Row(
                            login: login, disabled: disabled, mailboxes: mailboxes, messages: messages, bytes: bytes,
                            created: created))
                }
                return result
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
                return
            }
            let table =
                [["LOGIN", "STATUS", "MAILBOXES", "MESSAGES", "BYTES", "CREATED"]]
                + rows.map {
                    [
                        $0.login, $0.disabled ? "disabled" : "active", "\($0.mailboxes)", "\($0.messages)",
                        "\($0.bytes)", $0.created,
                    ]
                }
            printTable(table)
        }
    }
}

/// Refuses to work on a database whose schema is not the one this build knows.
func requireSchema(_ connection: PostgresConnection) async throws {
    switch try await PostgresSchema.state(connection, logger: adminLogger) {
    case .current: return
    case .empty: throw AdminFailure("the database has no MailHost schema: run `mailadmin db migrate`")
    case .behind(let current, let latest):
        throw AdminFailure(
            "the schema is at version \(current), this mailadmin needs \(latest): run `mailadmin db migrate`")
    case .ahead(let current, let latest):
        throw AdminFailure("the schema is at version \(current), newer than this mailadmin knows (\(latest))")
    }
}

/// Left-aligned columns separated by two spaces.
func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    var widths = first.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    for row in rows {
        let cells = row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}
