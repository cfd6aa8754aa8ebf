import Foundation
import IMAPEngine
import Testing

@testable import AdminCLI

@Suite struct QuotaSizeTests {
    @Test(arguments: [
        ("1048576", Int64(1_048_576)), ("500K", 512_000), ("500M", 524_288_000), ("2G", 2_147_483_648),
        ("1.5GiB", 1_610_612_736), ("1 TB", 1_099_511_627_776), ("10mb", 10_485_760),
    ])
    func sizes(_ text: String, _ bytes: Int64) throws {
        #expect(try QuotaSize.parseBytes(text) == bytes)
    }

    @Test(arguments: ["12 parsecs", "-5M", "1e9", "", "M", "1.2.3G", "0", "99999999T"])
    func invalidSizes(_ text: String) {
        #expect(throws: (any Error).self) { try QuotaSize.parseBytes(text) }
    }

    @Test func unlimited() throws {
        #expect(try QuotaSize.parseBytes("none") == nil)
        #expect(try QuotaSize.parseBytes("Unlimited") == nil)
        #expect(try QuotaSize.parseCount("none") == nil)
        #expect(try QuotaSize.parseCount("1000") == 1000)
        #expect(throws: (any Error).self) { try QuotaSize.parseCount("ten") }
    }
}

@Suite struct MboxTests {
    @Test func roundTripKeepsBytesFlagsAndDates() throws {
        let date = InternalDate(year: 2003, month: 5, day: 19, hour: 2, minute: 23, second: 25, zoneMinutes: -420)
        let messages = [
            ArchivedMessage(
                bytes: Array("Subject: a\r\n\r\nFrom the start\r\n>From quoted\r\n".utf8),
                flags: MessageFlags(system: [.seen, .answered], keywords: ["$Junk"]), date: date),
            ArchivedMessage(
                bytes: Array("Subject: no final newline\r\n\r\nend".utf8), flags: MessageFlags(), date: date),
        ]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mh-\(UUID().uuidString).mbox")
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: url) }
        let handle = try FileHandle(forWritingTo: url)
        try Mbox.write(messages, to: handle)
        try handle.close()
        let written = try String(contentsOf: url, encoding: .utf8)
        #expect(written.contains("\r\n>From the start\r\n>>From quoted"))
        let parsed = try Mbox.parse(Array(try Data(contentsOf: url)), path: url.path)
        #expect(parsed.count == 2)
        #expect(parsed.map(\.bytes) == messages.map(\.bytes))
        #expect(parsed.map(\.flags) == messages.map(\.flags))
        #expect(parsed.map(\.date) == [date, date])
    }

    @Test func foreignMboxFlagsAndDates() throws {
        let text = """
            From someone@example.com Tue Mar  2 09:10:11 2021
            Subject: one
            Status: RO
            X-Status: AF
            X-Keywords: work, $Label1

            body
            >From escaped

            From other@example.com Wed Mar  3 10:00:00 2021
            Subject: two

            second

            """
        let parsed = try Mbox.parse(Array(text.utf8), path: "test")
        #expect(parsed.count == 2)
        #expect(parsed[0].flags == MessageFlags(system: [.seen, .answered, .flagged], keywords: ["work", "$Label1"]))
        #expect(
            parsed[0].date
                == InternalDate(year: 2021, month: 3, day: 2, hour: 9, minute: 10, second: 11, zoneMinutes: 0))
        #expect(String(decoding: parsed[0].bytes, as: UTF8.self).hasSuffix("body\nFrom escaped\n"))
        // The file ends "second\n": that last newline is the separator line, so the message ends without one.
        #expect(String(decoding: parsed[1].bytes, as: UTF8.self) == "Subject: two\n\nsecond")
        #expect(throws: Mbox.FormatError.self) { try Mbox.parse(Array("Subject: x\n".utf8), path: "x") }
        #expect(throws: Mbox.FormatError.self) {
            try Mbox.parse(Array("From a Tue Mar  2 09:10:11 2021\nSubject".utf8), path: "x")
        }
        #expect(try Mbox.parse([], path: "empty").isEmpty)
    }
}

@Suite struct MaildirNameTests {
    let folder = Maildir.Folder(mailbox: .inbox, directory: URL(fileURLWithPath: "/tmp/Maildir"))

    @Test func flagsAndKeywordsFromNames() throws {
        let keywords = [0: "$Junk", 1: "urgent"]
        let (flags, zone) = try Maildir.parseFileName(
            "1600000000.M1P1.host,S=10,Z=-0700:2,DFPRSTab", inCur: true, keywords: keywords, folder: folder)
        #expect(flags.system == [.draft, .flagged, .answered, .seen, .deleted])
        #expect(flags.keywords == ["$Forwarded", "$Junk", "urgent"])
        #expect(zone == -420)
        #expect(
            try Maildir.parseFileName("1.M1P1.host", inCur: false, keywords: [:], folder: folder).0 == MessageFlags())
    }

    @Test(arguments: ["1.M1P1.host", "1.M1P1.host:2,S:2,S", "1.M1P1.host:2,S!", "1.M1P1.host:2,c", "1.M1.h,Z=+99:2,"])
    func malformedNames(_ name: String) {
        #expect(throws: Maildir.FormatError.self) {
            try Maildir.parseFileName(name, inCur: true, keywords: [0: "a", 1: "b"], folder: folder)
        }
    }

    @Test func folderNames() throws {
        #expect(Maildir.directoryName(for: MailboxName(normalizing: "Work/Reports 2024")) == ".Work.Reports 2024")
        #expect(Maildir.directoryName(for: MailboxName(normalizing: "Entwürfe/v1.2")) == ".Entw&APw-rfe.v1%2E2")
        #expect(try Maildir.mailboxName(fromDirectory: "Entw&APw-rfe.v1%2E2").name == "Entwürfe/v1.2")
        #expect(throws: Maildir.FormatError.self) { try Maildir.mailboxName(fromDirectory: "a..b") }
    }
}
