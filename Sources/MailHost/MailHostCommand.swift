import ArgumentParser

/// The `mailhost` executable.
@main
struct MailHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailhost",
        abstract: "MailHost: a multi-user IMAP server on PostgreSQL and PAM.",
        subcommands: [ServeCommand.self, ConfigCommand.self, DeliverCommand.self],
        defaultSubcommand: ServeCommand.self)
}
