import Testing

@testable import IMAPEngine

@Suite struct WireFormatTests {
    @Test(arguments: [
        ("INBOX", "INBOX"), ("Entwürfe", "Entw&APw-rfe"), ("&", "&-"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Épicerie", "&AMk-picerie"), ("a&b", "a&-b"), ("😀", "&2D3eAA-"),
    ])
    func modifiedUTF7RoundTrip(_ utf8: String, _ wire: String) {
        #expect(ModifiedUTF7.encode(utf8) == wire)
        #expect(ModifiedUTF7.decode(wire) == utf8)
    }

    @Test(arguments: ["&", "&Jjo", "&AGE-", "&Jjo!-", "a\u{7F}", "&-&-&", "é", "&U,BTFw-&ZeVnLIqe-", "&AMk-&AMk-"])
    func invalidModifiedUTF7(_ wire: String) {
        #expect(ModifiedUTF7.decode(wire) == nil)
    }

    @Test func untaggedResponses() {
        var w = ResponseWriter()
        w.untagged(.exists(23))
        w.untagged(.expunge(SequenceNumber(3)))
        w.untagged(.recent(1))
        w.untagged(
            .fetchFlags(
                SequenceNumber(2), uid: UID(9), flags: MessageFlags(system: [.seen, .answered], keywords: ["$Junk"]),
                recent: true))
        #expect(
            String(decoding: w.bytes, as: UTF8.self)
                == "* 23 EXISTS\r\n* 3 EXPUNGE\r\n* 1 RECENT\r\n* 2 FETCH (UID 9 FLAGS (\\Answered \\Seen $Junk \\Recent))\r\n"
        )
    }

    @Test func mailboxNamesFollowTheSessionMode() {
        var rev1 = ResponseWriter(utf8Names: false)
        rev1.mailbox(MailboxName(normalizing: "Épicerie"))
        rev1.raw(" ")
        rev1.mailbox(MailboxName(normalizing: "Sent Items"))
        #expect(String(decoding: rev1.bytes, as: UTF8.self) == "&AMk-picerie \"Sent Items\"")
        var rev2 = ResponseWriter(utf8Names: true)
        rev2.mailbox(MailboxName(normalizing: "Épicerie"))
        rev2.raw(" ")
        rev2.mailbox(.inbox)
        #expect(String(decoding: rev2.bytes, as: UTF8.self) == "\"Épicerie\" INBOX")
    }

    @Test func stringsChooseQuotedOrLiteral() {
        func encode(_ s: String) -> String {
            var out: [UInt8] = []
            WireString.appendString(s, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(encode("plain") == "\"plain\"")
        #expect(encode("say \"hi\" \\o/") == "\"say \\\"hi\\\" \\\\o/\"")
        #expect(encode("two\r\nlines") == "{10}\r\ntwo\r\nlines")
        #expect(encode("café") == "{5}\r\ncafé")
        var w = ResponseWriter()
        w.astring("atom")
        w.raw(" ")
        w.astring("needs space")
        w.raw(" ")
        w.astring("")
        #expect(String(decoding: w.bytes, as: UTF8.self) == "atom \"needs space\" \"\"")
    }

    @Test func responseTextCannotBreakTheLine() {
        var w = ResponseWriter()
        w.tagged("a1", "NO", code: .cannot, "bad\r\n* injected")
        #expect(String(decoding: w.bytes, as: UTF8.self) == "a1 NO [CANNOT] bad  * injected\r\n")
    }

    @Test func internalDates() {
        #expect(InternalDate(secondsSinceEpoch: 0, zoneMinutes: 0).wire == "\" 1-Jan-1970 00:00:00 +0000\"")
        let date = InternalDate(year: 2003, month: 5, day: 19, hour: 2, minute: 23, second: 25, zoneMinutes: -420)!
        #expect(date.wire == "\"19-May-2003 02:23:25 -0700\"")
        #expect(date.localDate == IMAPDate(year: 2003, month: 5, day: 19))
        #expect(
            InternalDate(secondsSinceEpoch: date.secondsSinceEpoch, zoneMinutes: 0).localDate
                == IMAPDate(year: 2003, month: 5, day: 19))
        #expect(InternalDate(year: 2003, month: 2, day: 29, hour: 0, minute: 0, second: 0, zoneMinutes: 0) == nil)
    }

    @Test func listPatterns() {
        let names = ["INBOX", "INBOX/a", "a", "a/b", "a/b/c", "ab"].map(MailboxName.init(normalizing:))
        func matching(_ pattern: String) -> [String] {
            names.filter { ListPattern(pattern).matches($0) }.map(\.name)
        }
        #expect(matching("*") == ["INBOX", "INBOX/a", "a", "a/b", "a/b/c", "ab"])
        #expect(matching("%") == ["INBOX", "a", "ab"])
        #expect(matching("a/%") == ["a/b"])
        #expect(matching("a*") == ["a", "a/b", "a/b/c", "ab"])
        #expect(matching("inbox") == ["INBOX"])
        #expect(matching("Inbox/%") == ["INBOX/a"])
        #expect(matching("%/%/%") == ["a/b/c"])
        #expect(matching("*%*%*%*%*%*%*%*%*%*%*%*%*%*%z") == [])
    }

    @Test func mailboxNames() {
        #expect(MailboxName(normalizing: "inbox").isInbox)
        #expect(MailboxName(normalizing: "iNbOx/Sub").name == "INBOX/Sub")
        #expect(MailboxName(normalizing: "inboxes").name == "inboxes")
        #expect(MailboxName(normalizing: "a/b/c").ancestors.map(\.name) == ["a", "a/b"])
        #expect(MailboxName(normalizing: "a//b").creationProblem != nil)
        #expect(MailboxName(normalizing: "/a").creationProblem != nil)
        #expect(MailboxName(normalizing: "a*").creationProblem != nil)
        #expect(MailboxName(normalizing: "a%b").creationProblem != nil)
        #expect(MailboxName(normalizing: "a\u{1}").creationProblem != nil)
        #expect(MailboxName(normalizing: "Reports 2024/Q1").creationProblem == nil)
    }

    @Test func base64() {
        #expect(Base64.decode("AHRpbQB0aW1teQ==") == Array("\0tim\0timmy".utf8))
        #expect(Base64.decode("dGltbXk=") == Array("timmy".utf8))
        #expect(Base64.decode("not base64!") == nil)
        #expect(Base64.decode("dGl=tbXk") == nil)
        #expect(Base64.encode(Array("Username:".utf8)) == "VXNlcm5hbWU6")
    }
}
