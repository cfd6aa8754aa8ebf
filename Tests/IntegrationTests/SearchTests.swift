import Foundation
import Testing

/// SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 9051 §6.4.4) with every RFC 3501 key on a seeded set with known
/// answers; charsets and encoded words; ESEARCH (RFC 4731), IMAP4rev2's ESEARCH-only answers, and SEARCHRES
/// (RFC 5182).
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SearchTests {
    /// The seeded set. Message n has UID n + 1 (UID 1 was expunged). Internal dates are 1, 3, 5, 7, 9, 11 Feb 2024;
    /// the Date: headers are 25, 27, 29, 31 Jan, 2 and 4 Feb 2024, so internal and sent dates never agree.
    struct Seeded {
        var message: [UInt8]
        var flags: String
        var date: String
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let messages: [Seeded] = [
        Seeded(
            message: bytes(
                "From: Alice Anderson <alice@example.com>\r\nTo: Tim <tim@example.com>\r\nCc: Carol <carol@example.net>\r\n"
                    + "Subject: Lunch plans\r\nDate: Thu, 25 Jan 2024 12:00:00 +0000\r\nMessage-ID: <m1@example.com>\r\n"
                    + "\r\nShall we meet at noon?\r\n"),
            flags: "(\\Seen \\Answered)", date: "01-Feb-2024 12:00:00 +0000"),
        Seeded(
            message: bytes(
                "From: Bob <bob@example.org>\r\nTo: Tim <tim@example.com>\r\nBcc: Dave <dave@example.com>\r\n"
                    + "Subject: Quarterly REPORT attached\r\nDate: Sat, 27 Jan 2024 12:00:00 +0000\r\n\r\n"
                    + "The numbers for this quarter are below.\r\n"
                    + (1...40).map { "Line \($0): revenue, costs, margin and other figures.\r\n" }.joined()),
            flags: "(\\Flagged \\Seen $Important)", date: "03-Feb-2024 12:00:00 +0000"),
        Seeded(
            message: bytes(
                "From: Carol <carol@example.net>\r\nTo: Alice <alice@example.com>\r\n"
                    + "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nDate: Mon, 29 Jan 2024 12:00:00 +0000\r\n"
                    + "X-Priority: 1\r\n\r\nGreetings from Cologne.\r\n"),
            flags: "(\\Deleted)", date: "05-Feb-2024 12:00:00 +0000"),
        Seeded(
            message: bytes(
                "From: Dave <dave@example.com>\r\nTo: Tim <tim@example.com>\r\n"
                    + "Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\r\nDate: Wed, 31 Jan 2024 12:00:00 +0000\r\n"
                    + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=windows-1252\r\n"
                    + "Content-Transfer-Encoding: 8bit\r\n\r\nPreis: 5 ") + [0x80] + bytes(" pro Tasse\r\n"),
            flags: "(\\Draft custom)", date: "07-Feb-2024 12:00:00 +0000"),
        Seeded(
            message: bytes(
                "From: Eve <eve@example.com>\r\nTo: Tim <tim@example.com>\r\nSubject: Trip to Lodz\r\n"
                    + "Date: Fri, 2 Feb 2024 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                    + "Content-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                    + "Spotkajmy si") + [0xEA] + bytes(" w ") + [0xA3] + bytes("odzi.\r\n"),
            flags: "()", date: "09-Feb-2024 12:00:00 +0000"),
        Seeded(
            message: bytes(
                "From: Frank <frank@example.com>\r\nTo: tim@example.com\r\nSubject: Hello again\r\n"
                    + "Date: Sun, 4 Feb 2024 12:00:00 +0000\r\n\r\nplain text\r\n"),
            flags: "()", date: "11-Feb-2024 12:00:00 +0000"),
    ]

    /// Seeds the set and returns a session with INBOX selected, in which messages 5 and 6 are \Recent.
    static func open(_ server: TestServer, enable: String? = nil) async throws -> IMAPTestClient {
        let setup = try await server.login()
        let placeholder = bytes("Subject: placeholder\r\n\r\nx\r\n")
        #expect(try await setup.append("p0", to: "INBOX", placeholder).last?.hasPrefix("p0 OK") == true)
        for (i, seeded) in messages.prefix(4).enumerated() {
            let lines = try await setup.append(
                "p\(i + 1)", to: "INBOX", seeded.message, options: "\(seeded.flags) \"\(seeded.date)\"")
            #expect(lines.last?.hasPrefix("p\(i + 1) OK") == true, "\(lines)")
        }
        // An earlier session sees messages 1–4 first, so they are not \Recent for the next one; it also expunges
        // the placeholder so that UIDs and sequence numbers differ.
        try await setup.expectOK("e1", "SELECT INBOX")
        try await setup.expectOK("e2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        try await setup.expectOK("e3", "UID EXPUNGE 1")
        try await setup.expectOK("e4", "LOGOUT")
        let appender = try await server.login()
        for (i, seeded) in messages.suffix(2).enumerated() {
            let lines = try await appender.append(
                "q\(i)", to: "INBOX", seeded.message, options: "\(seeded.flags) \"\(seeded.date)\"")
            #expect(lines.last?.hasPrefix("q\(i) OK") == true, "\(lines)")
        }
        let c = try await server.login()
        if let enable { try await c.expectOK("en", "ENABLE \(enable)") }
        let select = try await c.expectOK("s", "SELECT INBOX")
        #expect(select.contains("* 6 EXISTS"))
        if enable == nil { #expect(select.contains("* 2 RECENT")) }
        return c
    }

    /// The numbers of the single `* SEARCH` response in `lines` (the untagged lines of one command), ascending.
    static func searchNumbers(_ lines: [String]) -> [Int]? {
        let responses = lines.filter { $0 == "* SEARCH" || $0.hasPrefix("* SEARCH ") }
        guard responses.count == 1 else { return nil }
        return responses[0].split(separator: " ").dropFirst(2).compactMap { Int($0) }.sorted()
    }

    @Test func everyRFC3501SearchKey() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let cases: [(criteria: String, expected: [Int])] = [
                ("ALL", [1, 2, 3, 4, 5, 6]),
                ("ANSWERED", [1]),
                ("BCC dave", [2]),
                ("BEFORE 5-Feb-2024", [1, 2]),
                ("BODY noon", [1]),
                ("CC carol", [1]),
                ("DELETED", [3]),
                ("DRAFT", [4]),
                ("FLAGGED", [2]),
                ("FROM alice", [1]),
                ("FROM example.org", [2]),
                ("HEADER X-Priority 1", [3]),
                // The empty string is a substring of everything: presence of the field (RFC 9051 §6.4.4).
                ("HEADER X-Priority \"\"", [3]),
                ("HEADER Message-ID <m1@", [1]),
                ("KEYWORD $Important", [2]),
                ("KEYWORD custom", [4]),
                ("KEYWORD nosuch", []),
                ("LARGER 2000", [2]),
                ("NEW", [5, 6]),
                ("NOT SEEN", [3, 4, 5, 6]),
                ("OLD", [1, 2, 3, 4]),
                ("ON 5-Feb-2024", [3]),
                ("OR FLAGGED DRAFT", [2, 4]),
                ("RECENT", [5, 6]),
                ("SEEN", [1, 2]),
                ("SENTBEFORE 29-Jan-2024", [1, 2]),
                ("SENTON 29-Jan-2024", [3]),
                ("SENTSINCE 31-Jan-2024", [4, 5, 6]),
                ("SINCE 7-Feb-2024", [4, 5, 6]),
                ("SMALLER 2000", [1, 3, 4, 5, 6]),
                ("SUBJECT report", [2]),
                ("TEXT noon", [1]),
                ("TEXT frank", [6]),
                ("TO alice", [3]),
                ("UID 3:5", [2, 3, 4]),
                ("UID 6:*", [5, 6]),
                ("UNANSWERED", [2, 3, 4, 5, 6]),
                ("UNDELETED", [1, 2, 4, 5, 6]),
                ("UNDRAFT", [1, 2, 3, 5, 6]),
                ("UNFLAGGED", [1, 3, 4, 5, 6]),
                ("UNKEYWORD $Important", [1, 3, 4, 5, 6]),
                ("UNSEEN", [3, 4, 5, 6]),
                // Sequence sets, parenthesised lists and combinations.
                ("2,4:5", [2, 4, 5]),
                ("5:*", [5, 6]),
                ("*", [6]),
                ("(SEEN FLAGGED)", [2]),
                ("NOT (SEEN FLAGGED)", [1, 3, 4, 5, 6]),
                ("OR (SEEN FLAGGED) DRAFT", [2, 4]),
                ("OR OR ANSWERED DELETED DRAFT", [1, 3, 4]),
                ("NOT NOT SEEN", [1, 2]),
                ("SINCE 3-Feb-2024 BEFORE 9-Feb-2024", [2, 3, 4]),
                ("1:3 UNSEEN", [3]),
                ("UNSEEN UNDELETED SMALLER 1000 FROM example.com", [4, 5, 6]),
            ]
            for (i, item) in cases.enumerated() {
                let lines = try await c.expectOK("k\(i)", "SEARCH \(item.criteria)")
                #expect(Self.searchNumbers(lines) == item.expected, "SEARCH \(item.criteria): \(lines)")
            }
            // The response itself: "* SEARCH" and the numbers, one space apart (RFC 9051 §7.3.3 / RFC 3501 §7.2.5).
            #expect(try await c.expectOK("x1", "SEARCH ANSWERED") == ["* SEARCH 1"])
            #expect(try await c.expectOK("x2", "SEARCH KEYWORD nosuch") == ["* SEARCH"])
        }
    }

    @Test func matchingIsCaseInsensitiveSubstring() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let cases: [(criteria: String, expected: [Int])] = [
                ("SUBJECT REPORT", [2]),
                ("SUBJECT rEpOrT", [2]),
                ("SUBJECT uarter", [2]),
                ("FROM ALICE", [1]),
                ("FROM \"Alice Anderson\"", [1]),
                ("BODY NOON", [1]),
                ("BODY \"MEET AT\"", [1]),
                ("TEXT COLOGNE", [3]),
                ("HEADER x-priority 1", [3]),
                ("TO TIM@EXAMPLE", [1, 2, 4, 5, 6]),
            ]
            for (i, item) in cases.enumerated() {
                let lines = try await c.expectOK("c\(i)", "SEARCH \(item.criteria)")
                #expect(Self.searchNumbers(lines) == item.expected, "SEARCH \(item.criteria): \(lines)")
            }
        }
    }

    @Test func encodedWordsAndLegacyCharsetsAreSearchedDecoded() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let cases: [(key: String, text: String, expected: [Int])] = [
                // =?UTF-8?B?…?= and =?ISO-8859-1?Q?…?= subjects, found by their decoded text.
                ("SUBJECT", "Gr\u{FC}\u{DF}e", [3]),
                ("SUBJECT", "gr\u{FC}\u{DF}e aus K\u{F6}ln", [3]),
                ("SUBJECT", "Caf\u{E9}", [4]),
                ("SUBJECT", "caf\u{E9} cr\u{E8}me", [4]),
                ("TEXT", "K\u{F6}ln", [3]),
                // An 8-bit windows-1252 body (0x80 is the euro sign) and an ISO-8859-2 one (0xA3 is Ł).
                ("BODY", "5 \u{20AC}", [4]),
                ("BODY", "\u{141}odzi", [5]),
                ("TEXT", "si\u{119} w \u{141}odzi", [5]),
            ]
            for (i, item) in cases.enumerated() {
                // A synchronizing literal: the server must ask for it with a continuation request first.
                let (continuation, lines) = try await c.commandWithLiteral(
                    "u\(i)", "SEARCH CHARSET UTF-8 \(item.key) ", literal: Array(item.text.utf8))
                #expect(continuation.hasPrefix("+"), "\(continuation)")
                #expect(lines.last?.hasPrefix("u\(i) OK") == true, "\(lines)")
                #expect(Self.searchNumbers(lines) == item.expected, "\(item.key) \(item.text): \(lines)")
            }
            // US-ASCII is the other charset every server knows.
            #expect(try await c.expectOK("a1", "SEARCH CHARSET US-ASCII SUBJECT lunch") == ["* SEARCH 1"])
        }
    }

    @Test func anUnknownCharsetIsBadCharset() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // RFC 9051 §6.4.4: NO with BADCHARSET, which MAY list the supported charsets.
            let lines = try await c.command("b1", "SEARCH CHARSET KOI8-R BODY x")
            #expect(lines.count == 1 && lines[0].hasPrefix("b1 NO [BADCHARSET"), "\(lines)")
            if let open = lines.first?.range(of: "[BADCHARSET ("), let close = lines.first?.range(of: ")]") {
                let listed = lines[0][open.upperBound..<close.lowerBound].split(separator: " ").map { $0.uppercased() }
                #expect(listed.contains("UTF-8"))
            }
            #expect(try await c.expectOK("b2", "SEARCH SEEN") == ["* SEARCH 1 2"])
        }
    }

    @Test func uidSearchAnswersUIDs() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            #expect(Self.searchNumbers(try await c.expectOK("u1", "UID SEARCH ALL")) == [2, 3, 4, 5, 6, 7])
            #expect(try await c.expectOK("u2", "UID SEARCH FLAGGED") == ["* SEARCH 3"])
            #expect(Self.searchNumbers(try await c.expectOK("u3", "UID SEARCH UNSEEN")) == [4, 5, 6, 7])
            // Sequence numbers in UID SEARCH stay sequence numbers; UID keys stay UIDs.
            #expect(Self.searchNumbers(try await c.expectOK("u4", "UID SEARCH 1:2")) == [2, 3])
            #expect(Self.searchNumbers(try await c.expectOK("u5", "UID SEARCH UID 1:3")) == [2, 3])
            #expect(try await c.expectOK("u6", "UID SEARCH KEYWORD nosuch") == ["* SEARCH"])
        }
    }

    /// RFC 5032 WITHIN: OLDER and YOUNGER count seconds back from now on the internal date. The seeded messages
    /// arrived in February 2024; one appended now is young.
    @Test func withinSearchesByAgeInSeconds() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            #expect(try await c.command("c", "CAPABILITY").first?.contains(" WITHIN") == true)
            _ = try await c.append("n", to: "INBOX", Self.bytes("Subject: new\r\n\r\nnow\r\n"))
            try await c.expectOK("p", "NOOP")
            #expect(try await c.expectOK("w1", "SEARCH YOUNGER 86400") == ["* SEARCH 7"])
            #expect(Self.searchNumbers(try await c.expectOK("w2", "SEARCH OLDER 86400")) == [1, 2, 3, 4, 5, 6])
            #expect(try await c.expectOK("w3", "SEARCH OLDER 86400 YOUNGER 86400") == ["* SEARCH"])
            // 3 Feb 2024 12:00 UTC is more than a year back: "NOT OLDER" of two years keeps all.
            #expect(
                Self.searchNumbers(try await c.expectOK("w4", "SEARCH NOT OLDER 630720000")) == [1, 2, 3, 4, 5, 6, 7])
            #expect(try await c.command("w5", "SEARCH OLDER 0").last?.hasPrefix("w5 BAD") == true)
            #expect(try await c.command("w6", "SEARCH YOUNGER -5").last?.hasPrefix("w6 BAD") == true)
        }
    }

    @Test func esearchReturnOptions() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            typealias ESearch = ResponseFields.ESearch
            let cases: [(command: String, expected: ESearch)] = [
                (
                    "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN",
                    ESearch(tag: "e0", uid: false, data: ["MIN": "3", "MAX": "6", "COUNT": "4", "ALL": "3,4,5,6"])
                ),
                // RETURN () is RETURN (ALL) (RFC 4731 §3.1).
                ("UID SEARCH RETURN () FLAGGED", ESearch(tag: "e1", uid: true, data: ["ALL": "3"])),
                ("UID SEARCH RETURN (MIN MAX) ALL", ESearch(tag: "e2", uid: true, data: ["MIN": "2", "MAX": "7"])),
                ("SEARCH RETURN (COUNT) DELETED", ESearch(tag: "e3", uid: false, data: ["COUNT": "1"])),
                // No match: MIN, MAX and ALL are left out, COUNT is 0 (RFC 4731 §3.1).
                ("SEARCH RETURN (MIN MAX ALL) KEYWORD nosuch", ESearch(tag: "e4", uid: false, data: [:])),
                ("UID SEARCH RETURN (COUNT) KEYWORD nosuch", ESearch(tag: "e5", uid: true, data: ["COUNT": "0"])),
            ]
            for (i, item) in cases.enumerated() {
                let lines = try await c.expectOK("e\(i)", item.command)
                #expect(lines.count == 1, "\(item.command): \(lines)")
                #expect(lines.first.flatMap(ResponseFields.esearch) == item.expected, "\(item.command): \(lines)")
            }
            // The exact lines where there is only one way to write them.
            #expect(try await c.expectOK("x1", "UID SEARCH RETURN () FLAGGED") == ["* ESEARCH (TAG \"x1\") UID ALL 3"])
            #expect(
                try await c.expectOK("x2", "SEARCH RETURN (COUNT) KEYWORD nosuch") == ["* ESEARCH (TAG \"x2\") COUNT 0"]
            )
            #expect(try await c.expectOK("x3", "SEARCH RETURN (MIN) KEYWORD nosuch") == ["* ESEARCH (TAG \"x3\")"])
            let minCount = try await c.expectOK("x5", "SEARCH RETURN (MIN COUNT) DRAFT")
            #expect(
                minCount.first.flatMap(ResponseFields.esearch)
                    == ESearch(tag: "x5", uid: false, data: ["MIN": "4", "COUNT": "1"]))
        }
    }

    @Test func imap4rev2AnswersSearchWithESearch() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server, enable: "IMAP4rev2")
            // RFC 9051 §6.4.4: without RETURN, SEARCH answers as RETURN (ALL); never with "* SEARCH".
            let unseen = try await c.expectOK("v1", "SEARCH UNSEEN")
            #expect(unseen.count == 1)
            #expect(
                unseen.first.flatMap(ResponseFields.esearch)
                    == ResponseFields.ESearch(tag: "v1", uid: false, data: ["ALL": "3,4,5,6"]), "\(unseen)")
            #expect(try await c.expectOK("v2", "UID SEARCH FLAGGED") == ["* ESEARCH (TAG \"v2\") UID ALL 3"])
            #expect(try await c.expectOK("v3", "SEARCH KEYWORD nosuch") == ["* ESEARCH (TAG \"v3\")"])
            #expect(try await c.expectOK("v4", "UID SEARCH KEYWORD nosuch") == ["* ESEARCH (TAG \"v4\") UID"])
        }
    }

    @Test func savedResultIsUsableByFetch() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // RFC 5182 §2.1: SAVE alone returns no ESEARCH; "$" then stands for the saved messages.
            #expect(try await c.command("r1", "SEARCH RETURN (SAVE) FLAGGED").count == 1)
            #expect(try await c.expectOK("r2", "FETCH $ (UID)") == ["* 2 FETCH (UID 3)"])
            let uidFetch = try await c.expectOK("r3", "UID FETCH $ (FLAGS)")
            #expect(uidFetch.count == 1 && uidFetch.first?.hasPrefix("* 2 FETCH (") == true, "\(uidFetch)")
            #expect(uidFetch.first?.contains("UID 3") == true)
            try await c.expectOK("r4", "UID SEARCH RETURN (SAVE) UNSEEN UNDELETED")
            #expect(
                try await c.expectOK("r5", "FETCH $ (UID)") == [
                    "* 4 FETCH (UID 5)", "* 5 FETCH (UID 6)", "* 6 FETCH (UID 7)",
                ])
        }
    }

    @Test func savedResultIsUsableBySearchStoreAndCopy() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            #expect(try await c.command("r1", "SEARCH RETURN (SAVE) FLAGGED").count == 1)
            #expect(try await c.expectOK("r2", "SEARCH $") == ["* SEARCH 2"])
            #expect(try await c.expectOK("r3", "UID SEARCH $") == ["* SEARCH 3"])
            #expect(try await c.command("r4", "STORE $ +FLAGS.SILENT (\\Answered)").last?.hasPrefix("r4 OK") == true)
            #expect(try await c.expectOK("r5", "SEARCH ANSWERED") == ["* SEARCH 1 2"])
            try await c.expectOK("r6", "CREATE Saved")
            #expect(try await c.command("r7", "COPY $ Saved").last?.hasPrefix("r7 OK [COPYUID ") == true)
            // With MIN (and neither ALL nor COUNT) only the minimum is saved (RFC 5182 §2.1).
            #expect(try await c.expectOK("r8", "SEARCH RETURN (SAVE MIN) UNSEEN") == ["* ESEARCH (TAG \"r8\") MIN 3"])
            #expect(try await c.expectOK("r9", "SEARCH $") == ["* SEARCH 3"])
        }
    }

    @Test func savedResultFollowsTheSearchResultVariableRules() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // RFC 9051 §6.4.4.1: SAVE with MIN and MAX (no ALL, no COUNT) saves just those two.
            let minMax = try await c.expectOK("v1", "SEARCH RETURN (SAVE MIN MAX) UNSEEN")
            #expect(
                minMax.first.flatMap(ResponseFields.esearch)
                    == ResponseFields.ESearch(tag: "v1", uid: false, data: ["MIN": "3", "MAX": "6"]), "\(minMax)")
            #expect(Self.searchNumbers(try await c.expectOK("v2", "SEARCH $")) == [3, 6])
            // With COUNT, everything found is saved.
            #expect(
                try await c.expectOK("v3", "SEARCH RETURN (SAVE COUNT) UNSEEN") == ["* ESEARCH (TAG \"v3\") COUNT 4"])
            #expect(Self.searchNumbers(try await c.expectOK("v4", "SEARCH $")) == [3, 4, 5, 6])
            // "$" combines with other keys (RFC 9051 §6.4.4.4, examples 3 and 4).
            #expect(Self.searchNumbers(try await c.expectOK("v5", "UID SEARCH UID $ SMALLER 4096")) == [4, 5, 6, 7])
            #expect(Self.searchNumbers(try await c.expectOK("v6", "SEARCH OR $ 1")) == [1, 3, 4, 5, 6])
            // A BAD SEARCH, and a SEARCH without SAVE, leave the variable alone.
            #expect(try await c.command("v7", "SEARCH RETURN (SAVE) (OR").last?.hasPrefix("v7 BAD") == true)
            try await c.expectOK("v8", "SEARCH FLAGGED")
            #expect(Self.searchNumbers(try await c.expectOK("v9", "SEARCH $")) == [3, 4, 5, 6])
            // Expunged messages leave it, and the numbers follow the renumbering (RFC 9051 §6.4.4.1): messages 3
            // (already \Deleted) and 4 go, so 5 and 6 become 3 and 4.
            try await c.expectOK("w1", "STORE 4 +FLAGS.SILENT (\\Deleted)")
            try await c.expectOK("w2", "EXPUNGE")
            #expect(Self.searchNumbers(try await c.expectOK("w3", "SEARCH $")) == [3, 4])
            #expect(Self.searchNumbers(try await c.expectOK("w4", "UID SEARCH $")) == [6, 7])
            // A new SELECT empties it; an empty "$" is valid and matches nothing.
            try await c.expectOK("w5", "SELECT INBOX")
            #expect(try await c.expectOK("w6", "SEARCH $") == ["* SEARCH"])
            #expect(try await c.expectOK("w7", "FETCH $ (UID)") == [])
        }
    }

    /// RFC 9051 §6.4.4.1 and example 5 of §6.4.4.4: a SEARCH with SAVE that fails with NO empties "$".
    @Test func failedSaveEmptiesTheSavedResult() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            try await c.expectOK("f1", "SEARCH RETURN (SAVE) UNSEEN")
            #expect(Self.searchNumbers(try await c.expectOK("f2", "SEARCH $")) == [3, 4, 5, 6])
            let failed = try await c.command("f3", "SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1) TEXT x")
            #expect(failed.count == 1 && failed[0].hasPrefix("f3 NO [BADCHARSET"), "\(failed)")
            #expect(try await c.expectOK("f4", "SEARCH $") == ["* SEARCH"])
        }
    }
}
