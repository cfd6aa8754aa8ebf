import Foundation
import IMAPEngine

/// Maildir++ as Dovecot lays it out: the root is INBOX (`cur/`, `new/`, `tmp/`), each other mailbox is a
/// `.Name.Sub` directory beside them (names in modified UTF-7, `.` between levels), flags follow `:2,` in file names
/// (D draft, F flagged, P passed → $Forwarded, R replied, S seen, T trashed → \Deleted; a–z index the folder's
/// `dovecot-keywords`), and a file's modification time is its internal date.
///
/// On export MailHost adds `,Z=+hhmm` to file names (the internal date's zone, which mtime cannot carry) and escapes
/// `.` and `%` in names as `%2E` and `%25`; import reads both back.
enum Maildir {
    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    struct Folder {
        var mailbox: MailboxName
        var directory: URL
    }

    static let systemLetters: [(Character, Flag)] = [
        ("D", .draft), ("F", .flagged), ("P", .keyword("$Forwarded")), ("R", .answered), ("S", .seen), ("T", .deleted),
    ]

    /// INBOX and every `.Folder` under `root`.
    static func folders(in root: URL) throws -> [Folder] {
        let manager = FileManager.default
        guard isMaildir(root) else {
            throw FormatError(description: "\(root.path) is not a Maildir (no cur/ or new/ directory)")
        }
        var folders = [Folder(mailbox: .inbox, directory: root)]
        for entry in try manager.contentsOfDirectory(atPath: root.path).sorted()
        where entry.hasPrefix(".") && entry != "." && entry != ".." {
            let directory = root.appendingPathComponent(entry)
            guard !ImportFiles.skipLink(directory), isMaildir(directory) else { continue }
            folders.append(
                Folder(mailbox: try mailboxName(fromDirectory: String(entry.dropFirst())), directory: directory))
        }
        return folders
    }

    static func isMaildir(_ url: URL) -> Bool {
        ["cur", "new"].contains { ImportFiles.kind(of: url.appendingPathComponent($0)) == .typeDirectory }
    }

    static func mailboxName(fromDirectory name: String) throws -> MailboxName {
        let levels = name.split(separator: ".", omittingEmptySubsequences: false).map { level -> String in
            let decoded = ModifiedUTF7Codec.decode(String(level)) ?? String(level)
            return decoded.replacingOccurrences(of: "%2E", with: ".").replacingOccurrences(of: "%25", with: "%")
        }
        let mailbox = MailboxName(normalizing: levels.joined(separator: "/"))
        if let problem = mailbox.creationProblem {
            throw FormatError(description: "folder .\(name): \(problem.lowercased())")
        }
        return mailbox
    }

    static func directoryName(for mailbox: MailboxName) -> String {
        "."
            + mailbox.name.split(separator: "/").map { level in
                ModifiedUTF7Codec.encode(
                    level.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ".", with: "%2E"))
            }.joined(separator: ".")
    }

    /// The messages of one folder, validated before anything is imported.
    static func messages(in folder: Folder) throws -> [(url: URL, flags: MessageFlags, date: InternalDate)] {
        let manager = FileManager.default
        let keywords = try readKeywords(folder.directory)
        var result: [(URL, MessageFlags, InternalDate)] = []
        for sub in ["new", "cur"] {
            let directory = folder.directory.appendingPathComponent(sub)
            guard !ImportFiles.skipLink(directory),
                let entries = try? manager.contentsOfDirectory(atPath: directory.path)
            else { continue }
            for entry in entries.sorted() where !entry.hasPrefix(".") {
                let url = directory.appendingPathComponent(entry)
                if ImportFiles.skipLink(url) { continue }
                let (flags, zone) = try parseFileName(entry, inCur: sub == "cur", keywords: keywords, folder: folder)
                let attributes = try manager.attributesOfItem(atPath: url.path)
                let modified = (attributes[.modificationDate] as? Date) ?? Date()
                let date = InternalDate(secondsSinceEpoch: Int64(modified.timeIntervalSince1970), zoneMinutes: zone)
                result.append((url, flags, date))
            }
        }
        // UIDs follow delivery order, which the names carry: Dovecot's `<seconds>.M<microseconds>P<pid>.<host>`,
        // MailHost's export `<sequence>.M<sequence>P<pid>.mailhost`.
        func order(_ url: URL) -> (Int, Int, String) {
            let name = url.lastPathComponent
            let leading = Int(name.prefix { $0.isNumber }) ?? Int.max
            var micro = 0
            if let m = name.range(of: ".M") { micro = Int(name[m.upperBound...].prefix { $0.isNumber }) ?? 0 }
            return (leading, micro, name)
        }
        return result.sorted { order($0.0) < order($1.0) }
    }

    /// `1700000000.M1P2.host,S=123,Z=+0100:2,FS` → flags and zone; malformed names are errors naming the file.
    static func parseFileName(_ name: String, inCur: Bool, keywords: [Int: String], folder: Folder) throws
        -> (MessageFlags, Int)
    {
        func malformed(_ why: String) -> FormatError {
            FormatError(
                description:
                    "malformed Maildir file name \(folder.directory.lastPathComponent)/\(inCur ? "cur" : "new")/\(name): \(why)"
            )
        }
        let parts = name.components(separatedBy: ":2,")
        if inCur && parts.count != 2 { throw malformed("no \":2,\" flags part") }
        if parts.count > 2 { throw malformed("more than one \":2,\"") }
        let base = parts[0]
        if base.isEmpty || base.contains("/") { throw malformed("empty base name") }
        var zone = 0
        for field in base.split(separator: ",").dropFirst() where field.hasPrefix("Z=") {
            guard let minutes = ArchiveDate.parseZone(field.dropFirst(2)) else { throw malformed("bad Z= field") }
            zone = minutes
        }
        var flags = MessageFlags()
        if parts.count == 2 {
            for letter in parts[1] {
                if let flag = systemLetters.first(where: { $0.0 == letter })?.1 {
                    flags.insert(flag)
                } else if let ascii = letter.asciiValue, ascii >= UInt8(ascii: "a"), ascii <= UInt8(ascii: "z") {
                    guard let keyword = keywords[Int(ascii - UInt8(ascii: "a"))] else {
                        throw malformed("keyword letter \(letter) is not in dovecot-keywords")
                    }
                    flags.insert(.keyword(keyword))
                } else {
                    throw malformed("unknown flag character \(letter.debugDescription)")
                }
            }
        }
        return (flags, zone)
    }

    /// `dovecot-keywords`: `0 $Junk` per line; every keyword must be an IMAP atom (`Flag.isValidKeyword`).
    static func readKeywords(_ directory: URL) throws -> [Int: String] {
        let file = directory.appendingPathComponent("dovecot-keywords")
        guard ImportFiles.kind(of: file) == .typeRegular, let data = try? ImportFiles.read(file) else { return [:] }
        var result: [Int: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let index = Int(parts[0]), (0..<26).contains(index) {
                let keyword = String(parts[1])
                guard Flag.isValidKeyword(keyword) else {
                    throw FormatError(
                        description:
                            "\(file.path): keyword \(keyword.prefix(60).debugDescription) is not an IMAP atom")
                }
                result[index] = keyword
            }
        }
        return result
    }

    /// Writes one folder: `cur/` files named with flags and zone, mtime = internal date, `dovecot-keywords`.
    static func write(_ messages: [ArchivedMessage], folder directory: URL) throws {
        let manager = FileManager.default
        for sub in ["cur", "new", "tmp"] {
            try manager.createDirectory(at: directory.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        var keywords: [String] = []
        for message in messages {
            for keyword in message.flags.keywords where keyword != "$Forwarded" && !keywords.contains(keyword) {
                keywords.append(keyword)
            }
        }
        guard keywords.count <= 26 else {
            throw FormatError(description: "\(directory.lastPathComponent): more than 26 keywords do not fit Maildir")
        }
        if !keywords.isEmpty {
            let text = keywords.enumerated().map { "\($0.offset) \($0.element)\n" }.joined()
            try Data(text.utf8).write(to: directory.appendingPathComponent("dovecot-keywords"))
        }
        for (number, message) in messages.enumerated() {
            let date = message.date ?? InternalDate(secondsSinceEpoch: 0, zoneMinutes: 0)
            var letters = ""
            for (letter, flag) in systemLetters where message.flags.flags.contains(flag) { letters.append(letter) }
            for (index, keyword) in keywords.enumerated() where message.flags.keywords.contains(keyword) {
                letters.append(Character(Unicode.Scalar(UInt8(ascii: "a") + UInt8(index))))
            }
            let name =
                "\(number + 1).M\(number + 1)P\(getpid()).mailhost,S=\(message.bytes.count),Z=\(ArchiveDate.zone(date.zoneMinutes)):2,\(letters)"
            let url = directory.appendingPathComponent("cur").appendingPathComponent(name)
            try Data(message.bytes).write(to: url)
            try manager.setAttributes(
                [.modificationDate: Date(timeIntervalSince1970: TimeInterval(date.secondsSinceEpoch))],
                ofItemAtPath: url.path)
        }
    }
}

/// Modified UTF-7 for Maildir folder names (RFC 3501 §5.1.3), as Dovecot writes them.
enum ModifiedUTF7Codec {
    static func encode(_ text: String) -> String { MailboxName.modifiedUTF7(text) }
    static func decode(_ text: String) -> String? { MailboxName.fromModifiedUTF7(text) }
}
