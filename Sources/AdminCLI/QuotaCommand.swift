import ArgumentParser
import Foundation
import IMAPEngine

struct QuotaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quota", abstract: "Quotas (RFC 9208 STORAGE and MESSAGE).", subcommands: [Set.self, Show.self])

    /// `quota set USER SIZE|none [--messages N|none]`.
    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set or remove an account's quota.")
        @Argument var user: String
        // Unrecognised arguments too: `-5M` would otherwise be taken for an option and the size reported missing.
        @Argument(parsing: .allUnrecognized, help: "Storage limit such as 500M or 2G, or none.") var size: [String] = []
        @Option(parsing: .unconditional, help: "Message-count limit, or none (default: unchanged).")
        var messages: String?

        func validate() throws {
            guard size.count == 1 else {
                throw ValidationError(
                    size.isEmpty
                        ? "give the storage limit (such as 500M) or none" : "give one storage limit, not \(size)")
            }
        }

        func run() async throws {
            let login = user.lowercased()
            let bytes = try QuotaSize.parseBytes(size[0])
            let count = try messages.map(QuotaSize.parseCount)
            try await withStore { store, admin in
                let account = try await admin.accountID(login, logger: adminLogger)
                let current = try await store.quota(account: account, logger: adminLogger)
                try await admin.setQuota(
                    login: login, bytes: bytes, messages: count ?? current.messageLimit, logger: adminLogger)
            }
            print("quota of \(login): \(bytes.map(QuotaSize.format) ?? "unlimited")")
        }
    }

    /// `quota show USER`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an account's quota use.")
        @Argument var user: String
        @ArgumentParser.Flag(help: "Print JSON.") var json = false

        struct Row: Encodable {
            var login: String
            var usedBytes: Int64
            var limitBytes: Int64?
            var usedMessages: Int64
            var limitMessages: Int64?

            private enum CodingKeys: String, CodingKey {
                case login, usedBytes, limitBytes, usedMessages, limitMessages
            }

            /// No limit is `null`, not a missing key.
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(login, forKey: .login)
                try container.encode(usedBytes, forKey: .usedBytes)
                try container.encode(limitBytes, forKey: .limitBytes)
                try container.encode(usedMessages, forKey: .usedMessages)
                try container.encode(limitMessages, forKey: .limitMessages)
            }
        }

        func run() async throws {
            let login = user.lowercased()
            let usage = try await withStore { store, admin in
                try await store.quota(
                    account: try await admin.accountID(login, logger: adminLogger), logger: adminLogger)
            }
            let row = Row(
                login: login, usedBytes: usage.usedBytes, limitBytes: usage.byteLimit, usedMessages: usage.usedMessages,
                limitMessages: usage.messageLimit)
            if json { return try printJSON(row) }
            func percent(_ used: Int64, _ limit: Int64?) -> String {
                guard let limit, limit > 0 else { return "-" }
                return String(format: "%.0f%%", Double(used) * 100 / Double(limit))
            }
            printTable([
                ["RESOURCE", "USED", "LIMIT", "%"],
                [
                    "STORAGE", QuotaSize.format(usage.usedBytes), usage.byteLimit.map(QuotaSize.format) ?? "unlimited",
                    percent(usage.usedBytes, usage.byteLimit),
                ],
                [
                    "MESSAGE", "\(usage.usedMessages)", usage.messageLimit.map(String.init) ?? "unlimited",
                    percent(usage.usedMessages, usage.messageLimit),
                ],
            ])
        }
    }
}
