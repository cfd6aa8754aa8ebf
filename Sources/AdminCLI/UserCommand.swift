import ArgumentParser
import Foundation
import Glibc
import IMAPEngine
import Logging
import StoreAccounts

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Accounts.",
        subcommands: [Add.self, List.self, Show.self, Passwd.self, Disable.self, Enable.self, Rename.self, Delete.self])

    /// `user add NAME`: a store account (virtual user) with its INBOX.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a store account.")
        @Argument(help: "Login name (case-insensitive; stored in lower case).") var name: String
        @ArgumentParser.Flag(
            name: .customLong("password-stdin"), help: "Read the password from standard input (one line).")
        var passwordStdin = false
        @Option(
            name: .customLong("password-hash"),
            help: "A crypt(3) hash ($y$, $6$, $2y$ or Dovecot's {SHA512-CRYPT}/{BLF-CRYPT}).")
        var passwordHash: String?
        // Values taken as they stand, so that `--quota -5M` is refused as a size, not as an unknown option.
        @Option(parsing: .unconditional, help: "Storage quota, e.g. 500M, 2G or none.") var quota: String?
        @Option(parsing: .unconditional, help: "Message-count quota, or none.") var messages: String?

        func run() async throws {
            let login = try validatedLogin(name)
            let hash = try await readPasswordHash(stdin: passwordStdin, hash: passwordHash, required: true)
            let bytes = try quota.map(QuotaSize.parseBytes) ?? nil
            let count = try messages.map(QuotaSize.parseCount) ?? nil
            try await withStore { _, admin in
                try await admin.addAccount(
                    login: login, passwordHash: hash, quotaBytes: bytes, quotaMessages: count, logger: adminLogger)
            }
            print("created user \(login)")
        }
    }

    /// `user list`: every account with its mailbox count, message count and size.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts.")
        @ArgumentParser.Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let rows = try await withStore { _, admin in try await admin.accounts(logger: adminLogger) }
            if json { return try printJSON(rows) }
            printTable(
                [["LOGIN", "STATUS", "MAILBOXES", "MESSAGES", "SIZE", "QUOTA", "CREATED"]]
                    + rows.map {
                        [
                            $0.login, $0.disabled ? "disabled" : "active", "\($0.mailboxes)", "\($0.messages)",
                            QuotaSize.format($0.bytes), $0.quotaBytes.map(QuotaSize.format) ?? "-", $0.created,
                        ]
                    })
        }
    }

    /// `user show NAME`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one account.")
        @Argument var name: String
        @ArgumentParser.Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let login = name.lowercased()
            let rows = try await withStore { _, admin in try await admin.accounts(login: login, logger: adminLogger) }
            guard let row = rows.first else { throw AdminFailure("no such user: \(login)") }
            if json { return try printJSON(row) }
            printTable([
                ["login:", row.login],
                ["status:", row.disabled ? "disabled" : "active"],
                ["password:", row.hasPassword ? "set (store account)" : "none (PAM or not set)"],
                ["created:", row.created],
                ["mailboxes:", "\(row.mailboxes)"],
                ["messages:", "\(row.messages)" + (row.quotaMessages.map { " of \($0)" } ?? "")],
                ["size:", QuotaSize.format(row.bytes) + (row.quotaBytes.map { " of \(QuotaSize.format($0))" } ?? "")],
            ])
        }
    }

    /// `user passwd NAME`.
    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set an account's password.")
        @Argument var name: String
        @ArgumentParser.Flag(
            name: .customLong("password-stdin"), help: "Read the password from standard input (one line).")
        var passwordStdin = false
        @Option(name: .customLong("password-hash"), help: "A crypt(3) hash to store as it is.") var passwordHash:
            String?

        func run() async throws {
            let login = name.lowercased()
            guard let hash = try await readPasswordHash(stdin: passwordStdin, hash: passwordHash, required: true) else {
                return
            }
            try await withStore { _, admin in try await admin.setPassword(login: login, hash: hash, logger: adminLogger)
            }
            print("password of \(login) changed")
        }
    }

    /// `user disable NAME`: the account cannot log in, and its open sessions end with BYE.
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an account and close its sessions.")
        @Argument var name: String
        func run() async throws { try await setDisabled(name, true) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled account.")
        @Argument var name: String
        func run() async throws { try await setDisabled(name, false) }
    }

    struct Rename: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rename an account (its mail stays).")
        @Argument var old: String
        @Argument var new: String
        func run() async throws {
            let from = old.lowercased()
            let to = try validatedLogin(new)
            try await withStore { _, admin in try await admin.rename(login: from, to: to, logger: adminLogger) }
            print("renamed \(from) to \(to)")
        }
    }

    /// `user del NAME`: removes the account and all its mail, after confirmation.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "del", abstract: "Delete an account and all its mail.")
        @Argument var name: String
        @ArgumentParser.Flag(help: "Do not ask for confirmation.") var yes = false

        func run() async throws {
            let login = name.lowercased()
            if !yes {
                guard standardInputIsTerminal else {
                    throw AdminFailure("refusing to delete \(login) without --yes (standard input is not a terminal)")
                }
                printError("Delete user \(login) and all its mail? Type the login name to confirm: ", terminator: "")
                guard readLine(strippingNewline: true) == login else {
                    throw AdminFailure("not confirmed; nothing deleted")
                }
            }
            try await withStore { _, admin in try await admin.delete(login: login, logger: adminLogger) }
            print("deleted \(login)")
        }
    }
}

/// Login names: lower case, printable, no spaces or separators that IMAP or LMTP addressing would trip over.
func validatedLogin(_ text: String) throws -> String {
    let login = text.lowercased()
    let allowed = login.unicodeScalars.allSatisfy { scalar in
        scalar.value > 0x20 && scalar.value != 0x7F && !"\"\\/:*%(){}[]".unicodeScalars.contains(scalar)
    }
    guard !login.isEmpty, login.utf8.count <= 255, allowed else {
        throw AdminFailure("invalid login name \(text.debugDescription): use letters, digits and . _ - + @")
    }
    return login
}

/// The hash to store: a given hash (checked), a password from standard input or typed twice at a terminal.
func readPasswordHash(stdin: Bool, hash: String?, required: Bool) async throws -> String? {
    if let hash {
        guard !stdin else { throw ValidationError("give either --password-stdin or --password-hash, not both") }
        do {
            _ = try PasswordHash.cryptString(hash)
        } catch {
            throw AdminFailure(error.description)
        }
        return hash
    }
    let password: String
    if stdin {
        guard let line = readLine(strippingNewline: true) else { throw AdminFailure("no password on standard input") }
        password = line
    } else if standardInputIsTerminal {
        let first = try readSecret("Password: ")
        let second = try readSecret("Repeat password: ")
        guard first == second else { throw AdminFailure("the passwords differ") }
        password = first
    } else {
        guard required else { return nil }
        throw AdminFailure("give --password-stdin or --password-hash (standard input is not a terminal)")
    }
    guard !password.isEmpty else { throw AdminFailure("empty password") }
    do {
        return try PasswordHash.hash(password)
    } catch {
        throw AdminFailure(error.description)
    }
}

/// Reads a line from the terminal without echo.
func readSecret(_ prompt: String) throws -> String {
    printError(prompt, terminator: "")
    var saved = termios()
    tcgetattr(STDIN_FILENO, &saved)
    var silent = saved
    silent.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(STDIN_FILENO, TCSANOW, &silent)
    defer {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved)
        printError("")
    }
    guard let line = readLine(strippingNewline: true) else { throw AdminFailure("no password entered") }
    return line
}

/// Refuses to work on a database whose schema is not the one this build knows.
func requireSchema(_ schema: any StoreSchema) async throws {
    switch try await schema.state(logger: adminLogger) {
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

/// `user disable` and `user enable`.
private func setDisabled(_ name: String, _ disabled: Bool) async throws {
    let login = name.lowercased()
    try await withStore { _, admin in try await admin.setDisabled(login: login, disabled: disabled, logger: adminLogger)
    }
    print("\(disabled ? "disabled" : "enabled") \(login)")
}
