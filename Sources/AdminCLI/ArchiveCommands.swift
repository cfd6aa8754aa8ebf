import ArgumentParser
import Foundation
import IMAPEngine
import Logging
import Crypto

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import mail into an account.",
        subcommands: [MboxImport.self, MaildirImport.self])

    /// `import mbox USER FILE|DIR [--mailbox NAME]`: a file goes to one mailbox (INBOX by default); a directory
    /// (as `export mbox` writes it) gives one mailbox per `*.mbox` file.
    struct MboxImport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mbox", abstract: "Import an mbox file or directory.")
        @Argument var user: String
        @Argument var path: String
        @Option(help: "Mailbox to import a single file into (default INBOX).") var mailbox: String?

        func run() async throws {
            let url = URL(fileURLWithPath: path)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw AdminFailure("\(path) does not exist")
            }
            var batches: [ImportBatch] = []
            do {
                if isDirectory.boolValue {
                    guard mailbox == nil else { throw AdminFailure("--mailbox applies to a single mbox file") }
                    for file in try mboxFiles(in: url) {
                        let data = try readFile(file.url)
                        batches.append(
                            ImportBatch(mailbox: file.mailbox, messages: try Mbox.parse(data, path: file.url.path)))
                    }
                    if batches.isEmpty { throw AdminFailure("\(path) holds no *.mbox files") }
                } else {
                    let target = try mailboxName(mailbox ?? "INBOX", forCreation: true)
                    batches.append(
                        ImportBatch(mailbox: target, messages: try Mbox.parse(try readFile(url), path: path)))
                }
            } catch let error as Mbox.FormatError {
                throw AdminFailure(error.description + "; nothing was imported")
            }
            try await importBatches(batches, into: user.lowercased())
        }

        func mboxFiles(in root: URL) throws -> [(url: URL, mailbox: MailboxName)] {
            guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
                return []
            }
            var files: [(URL, MailboxName)] = []
            let base = root.standardizedFileURL.path
            for case let url as URL in enumerator where url.pathExtension == "mbox" {
                if ImportFiles.skipLink(url) { continue }
                var relative = String(url.standardizedFileURL.path.dropFirst(base.count))
                while relative.hasPrefix("/") { relative.removeFirst() }
                let name = ArchiveFileName.mailbox(fromPath: String(relative.dropLast(".mbox".count)))
                files.append((url, try mailboxName(name, forCreation: true)))
            }
            return files.sorted { $0.1.name < $1.1.name }
        }
    }

    /// `import maildir USER DIR`: INBOX and every Maildir++ folder, with flags, keywords and dates.
    struct MaildirImport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "maildir", abstract: "Import a Maildir++ tree.")
        @Argument var user: String
        @Argument var directory: String

        func run() async throws {
            let root = URL(fileURLWithPath: directory)
            var batches: [ImportBatch] = []
            do {
                // Every name is checked before anything is written.
                for folder in try Maildir.folders(in: root) {
                    let entries = try Maildir.messages(in: folder)
                    var messages: [ArchivedMessage] = []
                    for entry in entries {
                        messages.append(
                            ArchivedMessage(bytes: try readFile(entry.url), flags: entry.flags, date: entry.date))
                    }
                    batches.append(ImportBatch(mailbox: folder.mailbox, messages: messages))
                }
            } catch let error as Maildir.FormatError {
                throw AdminFailure(error.description + "; nothing was imported")
            }
            let subscriptions = readSubscriptions(root)
            try await importBatches(batches, into: user.lowercased(), subscribe: subscriptions)
        }
    }
}

struct ImportBatch: Sendable {
    var mailbox: MailboxName
    var messages: [ArchivedMessage]
}

func readFile(_ url: URL) throws -> [UInt8] {
    do {
        return try ImportFiles.read(url)
    } catch {
        throw AdminFailure("cannot read \(url.path): \(error)")
    }
}

/// Reading an archive that someone else may have prepared (a user's Maildir imported by root): symbolic links are
/// never followed, so a link to /etc/shadow in a Maildir cannot end up in a mailbox.
enum ImportFiles {
    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    /// The file's own type (lstat: a link is a link), nil when it does not exist.
    static func kind(of url: URL) -> FileAttributeType? {
        (try? FileManager.default.attributesOfItem(atPath: url.path))?[.type] as? FileAttributeType
    }

    /// True (with a warning) for a symbolic link, which the import leaves alone.
    static func skipLink(_ url: URL) -> Bool {
        guard kind(of: url) == .typeSymbolicLink else { return false }
        printError("warning: \(url.path) is a symbolic link; not followed")
        return true
    }

    /// The file's bytes, opened with O_NOFOLLOW (a link put in place after the check fails here).
    static func read(_ url: URL) throws -> [UInt8] {
        let descriptor = open(url.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError(description: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        return Array(try handle.readToEnd() ?? Data())
    }
}

/// Dovecot's `subscriptions` file: one name per line (a `V\t2` header and tab-separated levels in newer versions).
func readSubscriptions(_ root: URL) -> [MailboxName] {
    let file = root.appendingPathComponent("subscriptions")
    guard ImportFiles.kind(of: file) == .typeRegular, let bytes = try? ImportFiles.read(file) else { return [] }
    let text = String(decoding: bytes, as: UTF8.self)
    return text.split(separator: "\n").compactMap { line in
        let name = line.replacingOccurrences(of: "\t", with: "/")
        guard !name.isEmpty, !line.hasPrefix("V\t") else { return nil }
        return MailboxName(normalizing: name)
    }
}

/// Imports validated batches: mailboxes are created as needed, and a message whose exact bytes the mailbox already
/// holds is skipped, so running the same import again adds nothing.
func importBatches(_ batches: [ImportBatch], into login: String, subscribe: [MailboxName] = []) async throws {
    let total = batches.reduce(0) { $0 + $1.messages.count }
    let (imported, skipped, bytes) = try await withStore { store, admin in
        let account = try await admin.accountID(login, logger: adminLogger)
        var progress = Progress(total: total)
        var imported = 0
        var skipped = 0
        var bytes = 0
        for batch in batches {
            do {
                try await store.createMailbox(account: account, name: batch.mailbox, logger: adminLogger)
            } catch let error as StoreError where error == .alreadyExists {
                // imported into an existing mailbox
            }
            // Copies already in the mailbox, by content: a re-run skips them, and duplicates within one archive
            // are kept as duplicates.
            var present = try await store.contentDigests(account: account, mailbox: batch.mailbox, logger: adminLogger)
            for message in batch.messages {
                let parsed = ParsedMessage(parsing: message.bytes)
                let digest = Array(SHA256.hash(data: parsed.bytes))
                if let copies = present[digest], copies > 0 {
                    present[digest] = copies - 1
                    skipped += 1
                } else {
                    let date =
                        message.date
                        ?? InternalDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), zoneMinutes: 0)
                    do {
                        _ = try await store.append(
                            account: account, mailbox: batch.mailbox, message: parsed, flags: message.flags, date: date,
                            logger: adminLogger)
                    } catch let error as StoreError {
                        progress.finish()
                        if error == .overQuota {
                            throw AdminFailure(
                                "over quota after importing \(imported) messages into \(batch.mailbox.name); "
                                    + "the rest was not imported (run the import again after raising the quota)")
                        }
                        throw error
                    }
                    imported += 1
                    bytes += parsed.bytes.count
                }
                progress.advance(label: batch.mailbox.name)
            }
        }
        for name in subscribe {
            try await store.setSubscribed(account: account, name: name, subscribed: true, logger: adminLogger)
        }
        progress.finish()
        return (imported, skipped, bytes)
    }
    print(
        "imported \(imported) messages (\(QuotaSize.format(Int64(bytes)))) into \(batches.count) mailbox"
            + (batches.count == 1 ? "" : "es") + " of \(login); skipped \(skipped) already present")
}

/// A progress bar on standard error when it is a terminal.
struct Progress {
    let total: Int
    private var done = 0
    private var lastDrawn = -1
    private let enabled = standardErrorIsTerminal

    init(total: Int) { self.total = total }

    mutating func advance(label: String) {
        done += 1
        guard enabled, total > 0 else { return }
        let percent = done * 100 / total
        guard percent != lastDrawn || done == total else { return }
        lastDrawn = percent
        let width = 30
        let filled = done * width / total
        printError(
            "\r[\(String(repeating: "#", count: filled))\(String(repeating: " ", count: width - filled))] \(done)/\(total) \(label.prefix(30))",
            terminator: "")
    }

    mutating func finish() {
        if enabled && lastDrawn >= 0 { printError("") }
        lastDrawn = -1
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export an account's mail (a backup that import restores).",
        subcommands: [MboxExport.self, MaildirExport.self])

    /// `export mbox USER DIR`: one `<mailbox>.mbox` per mailbox, sub-mailboxes in sub-directories.
    struct MboxExport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mbox", abstract: "Export as mbox files.")
        @Argument var user: String
        @Argument var directory: String

        func run() async throws {
            let root = try prepareExportDirectory(directory)
            let login = user.lowercased()
            let count = try await exportMailboxes(login) { mailbox, messages in
                let file = root.appendingPathComponent(ArchiveFileName.path(for: mailbox) + ".mbox")
                try FileManager.default.createDirectory(
                    at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                _ = FileManager.default.createFile(atPath: file.path, contents: nil)
                let handle = try FileHandle(forWritingTo: file)
                defer { try? handle.close() }
                try Mbox.write(messages, to: handle)
            }
            print("exported \(count) messages of \(login) to \(root.path)")
        }
    }

    /// `export maildir USER DIR`: a Maildir++ tree as Dovecot lays it out.
    struct MaildirExport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "maildir", abstract: "Export as a Maildir++ tree.")
        @Argument var user: String
        @Argument var directory: String

        func run() async throws {
            let root = try prepareExportDirectory(directory)
            let login = user.lowercased()
            let count = try await exportMailboxes(login) { mailbox, messages in
                let folder = mailbox.isInbox ? root : root.appendingPathComponent(Maildir.directoryName(for: mailbox))
                try Maildir.write(messages, folder: folder)
            } subscriptions: { names in
                let text = names.map { $0.name + "\n" }.joined()
                try Data(text.utf8).write(to: root.appendingPathComponent("subscriptions"))
            }
            print("exported \(count) messages of \(login) to \(root.path)")
        }
    }
}

/// Mailbox names as paths under an export directory. Names are the users' own (`../../x`, `.hidden`), so every level
/// becomes a safe file name: `%` and a leading `.` are escaped as `%25` and `%2E` (so `.`, `..` and hidden names
/// cannot occur), as are control characters; import reads them back.
enum ArchiveFileName {
    static func path(for mailbox: MailboxName) -> String {
        mailbox.name.split(separator: "/", omittingEmptySubsequences: false).map { level -> String in
            var out = ""
            for (i, scalar) in level.unicodeScalars.enumerated() {
                if scalar == "%" || (i == 0 && scalar == ".") || scalar.value < 0x20 || scalar.value == 0x7F {
                    out += String(format: "%%%02X", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            return out.isEmpty ? "%00" : out
        }.joined(separator: "/")
    }

    static func mailbox(fromPath path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { level in
            level.removingPercentEncoding ?? String(level)
        }.joined(separator: "/")
    }
}

/// The export target: created if missing, refused when it already holds files (nothing is overwritten).
func prepareExportDirectory(_ path: String) throws -> URL {
    let url = URL(fileURLWithPath: path)
    let manager = FileManager.default
    if manager.fileExists(atPath: url.path) {
        guard (try? manager.contentsOfDirectory(atPath: url.path))?.isEmpty == true else {
            throw AdminFailure("\(path) exists and is not an empty directory; choose a new one")
        }
    } else {
        try manager.createDirectory(at: url, withIntermediateDirectories: true)
    }
    return url
}

/// Reads every mailbox of the account in batches and hands each mailbox's messages to `write`.
func exportMailboxes(
    _ login: String, write: @escaping @Sendable (MailboxName, [ArchivedMessage]) throws -> Void,
    subscriptions: (@Sendable ([MailboxName]) throws -> Void)? = nil
) async throws -> Int {
    try await withStore { store, admin in
        let account = try await admin.accountID(login, logger: adminLogger)
        var count = 0
        for listing in try await store.listMailboxes(account: account, logger: adminLogger).sorted(by: {
            $0.name < $1.name
        }) {
            let snapshot = try await store.select(
                account: account, name: listing.name, claimRecent: false, logger: adminLogger)
            var messages: [ArchivedMessage] = []
            var start = 0
            while start < snapshot.uids.count {
                let batch = Array(snapshot.uids[start..<min(start + 200, snapshot.uids.count)])
                start += batch.count
                let records = try await store.fetch(
                    account: account, mailbox: snapshot.id, uids: batch, columns: [], logger: adminLogger)
                let contents = try await store.contentBytes(
                    account: account,
                    slices: records.map { ContentSlice(contentID: $0.contentID, range: 0..<$0.size) },
                    logger: adminLogger)
                for (record, bytes) in zip(records, contents) {
                    messages.append(ArchivedMessage(bytes: bytes, flags: record.flags, date: record.internalDate))
                }
            }
            try write(listing.name, messages)
            count += messages.count
        }
        if let subscriptions {
            try subscriptions(try await store.subscriptions(account: account, logger: adminLogger))
        }
        return count
    }
}
