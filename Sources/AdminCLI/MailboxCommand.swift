import ArgumentParser
import Foundation
import IMAPEngine

struct MailboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailbox", abstract: "Mailboxes of an account.",
        subcommands: [
            List.self, Create.self, Delete.self, Rename.self, Subscribe.self, Unsubscribe.self, Defaults.self,
        ])

    /// `mailbox defaults [--set NAME[=\\Use] ...] [--none]`: the mailboxes every new account gets beside INBOX,
    /// shared by every instance (they live in the database).
    struct Defaults: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or replace the mailboxes new accounts get beside INBOX.",
            discussion: """
                Each --set is NAME or NAME=\\Use, with Use one of \\Drafts \\Sent \\Trash \\Junk \\Archive \
                (RFC 6154); the order given is kept. New accounts get them, subscribed; existing accounts are left \
                as they are. --none: new accounts get INBOX only.
                """)
        @Option(name: .customLong("set"), help: "A default mailbox, NAME or NAME=\\Use (repeatable).")
        var entries: [String] = []
        @ArgumentParser.Flag(help: "No default mailboxes besides INBOX.") var none = false
        @ArgumentParser.Flag(help: "Print JSON.") var json = false

        struct Row: Encodable {
            var name: String
            var specialUse: String?
        }

        static let uses = ["\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"]

        /// `NAME` or `NAME=\Use`, validated: a top-level mailbox name that is not INBOX, one of RFC 6154's uses.
        static func parse(_ entry: String) throws -> Row {
            var text = Substring(entry)
            var use: String?
            if let equals = entry.lastIndex(of: "="), entry[entry.index(after: equals)...].hasPrefix("\\") {
                let given = entry[entry.index(after: equals)...]
                guard let known = uses.first(where: { $0.caseInsensitiveCompare(given) == .orderedSame }) else {
                    throw AdminFailure(
                        "\(entry): unknown special use \(given) (one of \(uses.joined(separator: " ")))")
                }
                use = known
                text = entry[..<equals]
            }
            let name = try mailboxName(String(text), forCreation: true)
            if name.isInbox { throw AdminFailure("\(entry): INBOX always exists") }
            if name.name.contains("/") { throw AdminFailure("\(entry): default mailboxes are top-level names") }
            return Row(name: name.name, specialUse: use)
        }

        func validate() throws {
            if none && !entries.isEmpty { throw ValidationError("--none and --set exclude each other") }
        }

        func run() async throws {
            if none || !entries.isEmpty {
                let rows = try entries.map(Self.parse)
                for (i, row) in rows.enumerated() {
                    if rows[..<i].contains(where: { $0.name == row.name }) {
                        throw AdminFailure("\(row.name) is given twice")
                    }
                    if let use = row.specialUse, rows[..<i].contains(where: { $0.specialUse == use }) {
                        throw AdminFailure("\(use) is given twice (one mailbox per special use)")
                    }
                }
                try await withStore { _, admin in
                    try await admin.setDefaultMailboxes(
                        rows.map { DefaultMailbox(name: $0.name, specialUse: $0.specialUse) }, logger: adminLogger)
                }
            }
            let current = try await withStore { _, admin in
                try await admin.defaultMailboxes(logger: adminLogger).map {
                    Row(name: $0.name, specialUse: $0.specialUse)
                }
            }
            if json { return try printJSON(current) }
            printTable([["MAILBOX", "SPECIAL-USE"]] + current.map { [$0.name, $0.specialUse ?? "-"] })
        }
    }

    /// `mailbox list USER`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an account's mailboxes with their counters.")
        @Argument var user: String
        @ArgumentParser.Flag(help: "Print JSON.") var json = false

        struct Row: Encodable {
            var name: String
            var messages: Int
            var unseen: Int
            var bytes: Int64
            var uidValidity: UInt32
            var uidNext: UInt32
            var subscribed: Bool
        }

        func run() async throws {
            let login = user.lowercased()
            let rows = try await withStore { store, admin in
                let account = try await admin.accountID(login, logger: adminLogger)
                let subscribed = Swift.Set(try await store.subscriptions(account: account, logger: adminLogger))
                var rows: [Row] = []
                let listings = try await store.listMailboxes(account: account, logger: adminLogger)
                for listing in listings.sorted(by: {
                    ($0.name.isInbox ? "" : $0.name.name) < ($1.name.isInbox ? "" : $1.name.name)
                }) {
                    let status = try await store.status(account: account, name: listing.name, logger: adminLogger)
                    rows.append(
                        Row(
                            name: listing.name.name, messages: status.messages, unseen: status.unseen,
                            bytes: status.size,
                            uidValidity: status.uidValidity, uidNext: status.uidNext.rawValue,
                            subscribed: subscribed.contains(listing.name)))
                }
                return rows
            }
            if json { return try printJSON(rows) }
            printTable(
                [["MAILBOX", "MESSAGES", "UNSEEN", "SIZE", "UIDVALIDITY", "UIDNEXT", "SUBSCRIBED"]]
                    + rows.map {
                        [
                            $0.name, "\($0.messages)", "\($0.unseen)", QuotaSize.format($0.bytes), "\($0.uidValidity)",
                            "\($0.uidNext)", $0.subscribed ? "yes" : "no",
                        ]
                    })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a mailbox (and its missing parents).")
        @Argument var user: String
        @Argument var name: String
        func run() async throws {
            let login = user.lowercased()
            let mailbox = try mailboxName(name, forCreation: true)
            if mailbox.isInbox { throw AdminFailure("INBOX always exists") }
            try await withStore { store, admin in
                let account = try await admin.accountID(login, logger: adminLogger)
                try await store.createMailbox(account: account, name: mailbox, logger: adminLogger)
            }
            print("created \(mailbox.name) for \(login)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a mailbox and its messages.")
        @Argument var user: String
        @Argument var name: String
        func run() async throws {
            let login = user.lowercased()
            let mailbox = try mailboxName(name)
            if mailbox.isInbox { throw AdminFailure("INBOX cannot be deleted") }
            try await withStore { store, admin in
                let account = try await admin.accountID(login, logger: adminLogger)
                do {
                    try await store.deleteMailbox(account: account, name: mailbox, logger: adminLogger)
                } catch StoreError.mailboxNotFound {
                    throw AdminFailure("\(login) has no mailbox named \(mailbox.name)")
                }
            }
            print("deleted \(mailbox.name) of \(login)")
        }
    }

    struct Rename: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rename a mailbox with its children.")
        @Argument var user: String
        @Argument var old: String
        @Argument var new: String
        func run() async throws {
            let login = user.lowercased()
            let from = try mailboxName(old)
            let to = try mailboxName(new, forCreation: true)
            if to.isInbox { throw AdminFailure("INBOX already exists") }
            if to.isDescendant(of: from) { throw AdminFailure("cannot rename a mailbox under itself") }
            try await withStore { store, admin in
                let account = try await admin.accountID(login, logger: adminLogger)
                do {
                    try await store.renameMailbox(account: account, from: from, to: to, logger: adminLogger)
                } catch StoreError.mailboxNotFound {
                    throw AdminFailure("\(login) has no mailbox named \(from.name)")
                } catch StoreError.alreadyExists {
                    throw AdminFailure("\(login) already has a mailbox named \(to.name)")
                }
            }
            print("renamed \(from.name) to \(to.name) for \(login)")
        }
    }

    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Subscribe an account to a mailbox.")
        @Argument var user: String
        @Argument var name: String
        func run() async throws { try await setSubscription(user, name, true) }
    }

    struct Unsubscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unsubscribe an account from a mailbox.")
        @Argument var user: String
        @Argument var name: String
        func run() async throws { try await setSubscription(user, name, false) }
    }
}

private func setSubscription(_ user: String, _ name: String, _ subscribed: Bool) async throws {
    let login = user.lowercased()
    let mailbox = try mailboxName(name, forCreation: subscribed)
    try await withStore { store, admin in
        let account = try await admin.accountID(login, logger: adminLogger)
        try await store.setSubscribed(account: account, name: mailbox, subscribed: subscribed, logger: adminLogger)
    }
    print("\(subscribed ? "subscribed" : "unsubscribed") \(login) \(subscribed ? "to" : "from") \(mailbox.name)")
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Totals over all accounts.")
    @ArgumentParser.Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let stats = try await withStore { _, admin in try await admin.statistics(logger: adminLogger) }
        if json { return try printJSON(stats) }
        printTable([
            ["accounts:", "\(stats.accounts)"],
            ["mailboxes:", "\(stats.mailboxes)"],
            ["messages:", "\(stats.messages)"],
            ["bytes:", "\(stats.bytes) (\(QuotaSize.format(stats.bytes)))"],
            ["stored:", "\(stats.storedContents) contents, \(stats.storedBytes) bytes (each stored once)"],
        ])
    }
}
