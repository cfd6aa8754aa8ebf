import ArgumentParser
import NIOCore
import NIOPosix

/// The `mailhost` executable.
struct MailHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailhost",
        abstract: "MailHost: a multi-user IMAP server on PostgreSQL and PAM.",
        subcommands: [ServeCommand.self, ConfigCommand.self, DeliverCommand.self],
        defaultSubcommand: ServeCommand.self)
}

@main
enum Entrypoint {
    static func main() async {
        // Swift concurrency's jobs run on NIO's event loop threads: a session awaiting its socket or the database
        // then mostly continues on the thread that completed the I/O, instead of handing over to the cooperative
        // pool (two thread switches, futex wake-ups) at every await. Must happen before other concurrent work.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await MailHostCommand.main()
    }
}
