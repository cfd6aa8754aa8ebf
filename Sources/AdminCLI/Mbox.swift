import Foundation
import IMAPEngine

/// One message read from or written to an archive.
struct ArchivedMessage: Sendable {
    var bytes: [UInt8]
    var flags: MessageFlags
    var date: InternalDate?
}

/// The mbox format (mboxrd): messages separated by `From ` lines, body lines matching `>*From ` escaped with one more
/// `>`, and a blank line after each message.
///
/// On export MailHost puts one header first in each message, `X-MailHost: internaldate="…" flags=(…)`, which import
/// removes again, so an export re-imports with identical bytes, flags and internal dates (zone included). Other
/// mboxes give their flags through the usual `Status`, `X-Status` and `X-Keywords` headers (mutt, Dovecot), which are
/// kept in the message.
enum Mbox {
    struct FormatError: Error, CustomStringConvertible {
        var description: String
    }

    static let headerName = "X-MailHost: "

    static func parse(_ data: [UInt8], path: String) throws -> [ArchivedMessage] {
        if data.isEmpty { return [] }  // an empty mailbox
        guard data.starts(with: Array("From ".utf8)) else {
            throw FormatError(description: "\(path) is not an mbox file (it does not start with a \"From \" line)")
        }
        guard data.last == 0x0A else {
            throw FormatError(description: "\(path) is truncated (it does not end with a line break)")
        }
        var messages: [ArchivedMessage] = []
        var lineStart = 0
        var current: [UInt8] = []
        var separator: ArraySlice<UInt8>?
        func finish() throws {
            guard let separator else { return }
            if current.last == 0x0A { current.removeLast() }  // the blank line before the next separator
            messages.append(try message(current, separator: separator, path: path, index: messages.count + 1))
            current = []
        }
        while lineStart < data.count {
            let lineEnd = (data[lineStart...].firstIndex(of: 0x0A) ?? (data.count - 1)) + 1
            let line = data[lineStart..<lineEnd]
            if line.starts(with: Array("From ".utf8)) {
                try finish()
                separator = line
            } else {
                var gt = line.startIndex
                while gt < line.endIndex, line[gt] == UInt8(ascii: ">") { gt += 1 }
                if gt > line.startIndex, line[gt...].starts(with: Array("From ".utf8)) {
                    current.append(contentsOf: line.dropFirst())
                } else {
                    current.append(contentsOf: line)
                }
            }
            lineStart = lineEnd
        }
        try finish()
        return messages
    }

    private static func message(_ raw: [UInt8], separator: ArraySlice<UInt8>, path: String, index: Int) throws
        -> ArchivedMessage
    {
        var bytes = raw
        var flags: MessageFlags?
        var date: InternalDate?
        if bytes.starts(with: Array(headerName.utf8)), let lf = bytes.firstIndex(of: 0x0A) {
            let line = String(decoding: bytes[headerName.utf8.count..<lf], as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            (flags, date) = parseMailHostHeader(line)
            bytes.removeSubrange(0...lf)
        }
        if flags == nil { flags = legacyFlags(bytes) }
        if date == nil { date = separatorDate(separator) }
        guard !bytes.isEmpty else { throw FormatError(description: "\(path): message \(index) is empty") }
        return ArchivedMessage(
            bytes: bytes, flags: validKeywords(flags ?? MessageFlags(), in: "\(path): message \(index)"), date: date)
    }

    /// Keeps only the keywords a client could have set (atoms, `Flag.isValidKeyword`); the others are reported and
    /// left out, since they come from message headers anyone could have written.
    static func validKeywords(_ flags: MessageFlags, in place: String) -> MessageFlags {
        var valid = flags
        valid.keywords = flags.keywords.filter(Flag.isValidKeyword)
        for keyword in flags.keywords where !Flag.isValidKeyword(keyword) {
            printError(
                "warning: \(place): keyword \(keyword.prefix(60).debugDescription) is not an IMAP atom; left out")
        }
        return valid
    }

    /// `internaldate="17-Jul-1996 02:44:25 -0700" flags=(\Seen $Junk)`.
    static func parseMailHostHeader(_ text: String) -> (MessageFlags?, InternalDate?) {
        var date: InternalDate?
        var flags: MessageFlags?
        if let start = text.range(of: "internaldate=\"")?.upperBound, let end = text[start...].firstIndex(of: "\"") {
            date = ArchiveDate.parseIMAP(String(text[start..<end]))
        }
        if let start = text.range(of: "flags=(")?.upperBound, let end = text[start...].firstIndex(of: ")") {
            flags = MessageFlags(
                text[start..<end].split(separator: " ").map { Flag(wireToken: String($0)) }.filter { $0 != .recent })
        }
        return (flags, date)
    }

    /// Flags from `Status: RO`, `X-Status: AFTD` and `X-Keywords: a, b` in the header.
    static func legacyFlags(_ bytes: [UInt8]) -> MessageFlags {
        var flags = MessageFlags()
        let headerEnd =
            bytes.indices.first { i in
                bytes[i] == 0x0A
                    && (i + 1 < bytes.count
                        && (bytes[i + 1] == 0x0A
                            || (bytes[i + 1] == 0x0D && i + 2 < bytes.count && bytes[i + 2] == 0x0A)))
            } ?? bytes.count
        let header = String(decoding: bytes[..<headerEnd], as: UTF8.self)
        for line in header.split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            let lower = text.lowercased()
            if lower.hasPrefix("status:") {
                if text.dropFirst(7).contains("R") { flags.insert(.seen) }
            } else if lower.hasPrefix("x-status:") {
                let value = text.dropFirst(9)
                if value.contains("A") { flags.insert(.answered) }
                if value.contains("F") { flags.insert(.flagged) }
                if value.contains("T") { flags.insert(.draft) }
                if value.contains("D") { flags.insert(.deleted) }
            } else if lower.hasPrefix("x-keywords:") {
                for keyword in text.dropFirst(11).split(whereSeparator: { $0 == "," || $0 == " " }) {
                    flags.insert(.keyword(String(keyword)))
                }
            }
        }
        return flags
    }

    /// The asctime date of `From sender Thu Nov 26 15:57:00 2026`, taken as UTC.
    static func separatorDate(_ line: ArraySlice<UInt8>) -> InternalDate? {
        let tokens = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            .split(separator: " ").map(String.init)
        for i in tokens.indices where i + 5 <= tokens.count {
            if let date = ArchiveDate.parseAsctime(Array(tokens[i...].prefix(5))) { return date }
        }
        return nil
    }

    /// Writes messages in mboxrd form.
    static func write(_ messages: some Sequence<ArchivedMessage>, to handle: FileHandle) throws {
        for message in messages {
            var out: [UInt8] = []
            out.reserveCapacity(message.bytes.count + 200)
            let date = message.date ?? InternalDate(secondsSinceEpoch: 0, zoneMinutes: 0)
            out.append(contentsOf: "From MAILER-DAEMON \(ArchiveDate.asctime(date))\n".utf8)
            let newline = message.bytes.contains(0x0D) ? "\r\n" : "\n"
            let flags = message.flags.flags.map(\.wire).joined(separator: " ")
            out.append(contentsOf: "\(headerName)internaldate=\(date.wire) flags=(\(flags))\(newline)".utf8)
            var lineStart = true
            var i = 0
            let bytes = message.bytes
            while i < bytes.count {
                if lineStart {
                    var j = i
                    while j < bytes.count, bytes[j] == UInt8(ascii: ">") { j += 1 }
                    if bytes[j...].starts(with: Array("From ".utf8)) { out.append(UInt8(ascii: ">")) }
                }
                out.append(bytes[i])
                lineStart = bytes[i] == 0x0A
                i += 1
            }
            out.append(0x0A)
            try handle.write(contentsOf: out)
        }
    }
}

extension Flag {
    /// A flag from its wire token (`\Seen`, `$Junk`).
    init(wireToken: String) {
        if wireToken.hasPrefix("\\") {
            switch wireToken.lowercased() {
            case "\\answered": self = .answered
            case "\\flagged": self = .flagged
            case "\\deleted": self = .deleted
            case "\\seen": self = .seen
            case "\\draft": self = .draft
            case "\\recent": self = .recent
            default: self = .extensionFlag(String(wireToken.dropFirst()))
            }
        } else {
            self = .keyword(wireToken)
        }
    }
}

/// Dates in archive formats.
enum ArchiveDate {
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday

    /// `Thu Nov 26 15:57:00 2026` in UTC.
    static func asctime(_ date: InternalDate) -> String {
        let days =
            date.secondsSinceEpoch >= 0 ? date.secondsSinceEpoch / 86_400 : (date.secondsSinceEpoch - 86_399) / 86_400
        let seconds = Int(date.secondsSinceEpoch - days * 86_400)
        let utc = InternalDate(secondsSinceEpoch: date.secondsSinceEpoch, zoneMinutes: 0).localDate
        let weekday = weekdays[Int(((days % 7) + 7) % 7)]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let day = utc.day < 10 ? " \(utc.day)" : "\(utc.day)"
        return
            "\(weekday) \(months[utc.month - 1]) \(day) \(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60)) \(utc.year)"
    }

    /// `Www Mmm dd hh:mm:ss yyyy` as tokens.
    static func parseAsctime(_ tokens: [String]) -> InternalDate? {
        guard tokens.count == 5, weekdays.contains(tokens[0]), let month = months.firstIndex(of: tokens[1]),
            let day = Int(tokens[2]), let year = Int(tokens[4])
        else { return nil }
        let time = tokens[3].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        return InternalDate(
            year: year, month: month + 1, day: day, hour: time[0], minute: time[1], second: time[2], zoneMinutes: 0)
    }

    /// An IMAP date-time without its quotes: `17-Jul-1996 02:44:25 -0700`.
    static func parseIMAP(_ text: String) -> InternalDate? {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: " ")
        guard parts.count == 3 else { return nil }
        let dateParts = parts[0].split(separator: "-")
        let time = parts[1].split(separator: ":").compactMap { Int($0) }
        let zone = parts[2]
        guard dateParts.count == 3, let day = Int(dateParts[0]),
            let month = months.firstIndex(of: String(dateParts[1])),
            let year = Int(dateParts[2]), time.count == 3, zone.count == 5, let zoneValue = Int(zone.dropFirst())
        else { return nil }
        let sign = zone.first == "-" ? -1 : 1
        return InternalDate(
            year: year, month: month + 1, day: day, hour: time[0], minute: time[1], second: time[2],
            zoneMinutes: sign * (zoneValue / 100 * 60 + zoneValue % 100))
    }

    /// `+0100` style.
    static func zone(_ minutes: Int) -> String {
        let value = abs(minutes)
        let hours = value / 60
        let rest = value % 60
        return (minutes < 0 ? "-" : "+") + (hours < 10 ? "0" : "") + "\(hours)" + (rest < 10 ? "0" : "") + "\(rest)"
    }

    static func parseZone(_ text: Substring) -> Int? {
        guard text.count == 5, let sign = text.first, sign == "+" || sign == "-", let value = Int(text.dropFirst()),
            value % 100 < 60
        else { return nil }
        return (sign == "-" ? -1 : 1) * (value / 100 * 60 + value % 100)
    }
}
