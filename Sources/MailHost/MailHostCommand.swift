import ArgumentParser
import IMAPEngine

/// The `mailhost` executable.
@main
struct MailHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailhost",
        abstract: "MailHost: a multi-user IMAP server on PostgreSQL or an embedded SQLite file, with PAM.",
        version: MailHostVersion.current,
        subcommands: [ServeCommand.self, ConfigCommand.self, DeliverCommand.self],
        defaultSubcommand: ServeCommand.self)
}
