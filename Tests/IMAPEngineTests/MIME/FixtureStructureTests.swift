import Testing

@testable import IMAPEngine

@Suite struct MIMEStructureTests {
    /// ENVELOPE, BODY and BODYSTRUCTURE of every fixture, worked out by hand from RFC 9051 §7.5.2 (sizes count the
    /// CRLF-normalised bytes; body-fld-lines counts the LFs of the body, Dovecot's rule).
    struct FixtureExpectation: Sendable, CustomTestStringConvertible {
        var file: String
        var size: Int
        var headerLength: Int
        var envelope: String
        var body: String
        var bodyStructure: String
        var sentDate: IMAPDate?

        var testDescription: String { file }

        /// The expectations below are wrapped for reading: a line break in them is not part of the wire form (a CRLF
        /// written as `\r\n` is).
        static func unwrapped(_ text: String) -> String {
            var out = ""
            var previous: Character?
            for character in text {
                if character == "\n", previous != "\r" { continue }
                out.append(character)
                previous = character
            }
            return out
        }

        static let all: [FixtureExpectation] = [
            FixtureExpectation(
                file: "simple.eml", size: 626, headerLength: 574,
                envelope: unwrapped(
                    #"""
                    ("Mon, 12 Feb 2024 10:00:00 +0100" "Lunch on Friday?" (("Alice Example" NIL "alice" "example.org"))
                     (("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org"))
                     (("Bob, the Builder" NIL "bob" "example.net")("Carol C." NIL "carol" "example.net"))
                     (("Dave" NIL "dave" "example.net")) NIL "<prev-1@example.net>" "<20240212100000.4F2A@example.org>")
                    """#),
                body: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "UTF-8" "format" "flowed") NIL NIL "7bit" 52 5)
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "UTF-8" "format" "flowed") NIL NIL "7bit" 52 5 NIL NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 2, day: 12)),
            FixtureExpectation(
                file: "alternative.eml", size: 619, headerLength: 209,
                envelope: unwrapped(
                    #"""
                    ("1 Mar 2024 08:30 -0500" "Newsletter" (("=?UTF-8?Q?Ren=C3=A9e?=" NIL "renee" "example.com"))
                     (("=?UTF-8?Q?Ren=C3=A9e?=" NIL "renee" "example.com"))
                     (("=?UTF-8?Q?Ren=C3=A9e?=" NIL "renee" "example.com"))
                     ((NIL NIL "list" "example.com")) NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 31 1)("text" "html"
                     ("charset" "utf-8") NIL NIL "quoted-printable" 71 0) "alternative")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 31 1 NIL NIL NIL NIL)
                    ("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 71 0 NIL NIL NIL NIL) "alternative"
                     ("boundary" "alt-boundary-42") NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 1)),
            FixtureExpectation(
                file: "mixed-related.eml", size: 1084, headerLength: 235,
                envelope: unwrapped(
                    #"""
                    ("Tue, 5 Mar 2024 14:15:16 +0000" "Report with pictures" (("Carol" NIL "carol" "example.net"))
                     (("Carol" NIL "carol" "example.net")) (("Carol" NIL "carol" "example.net"))
                     ((NIL NIL "alice" "example.org")) NIL NIL NIL "<report-5@example.net>")
                    """#),
                body: unwrapped(
                    #"""
                    ((("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 44 0)("image" "png"
                     ("name" "chart.png") "<chart@example.net>" NIL "base64" 98) "related")("application" "pdf"
                     ("name" "report.pdf") NIL "Quarterly report" "base64" 20) "mixed")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ((("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 44 0 NIL NIL NIL NIL)("image" "png"
                     ("name" "chart.png") "<chart@example.net>" NIL "base64" 98 NIL ("inline"
                     ("filename" "chart.png")) NIL NIL) "related"
                     ("boundary" "==related==" "type" "text/html") NIL NIL NIL)("application" "pdf"
                     ("name" "report.pdf") NIL "Quarterly report" "base64" 20 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment"
                     ("filename" "report.pdf" "size" "12")) ("en" "de") "http://example.net/report.pdf") "mixed"
                     ("boundary" "==outer==") NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 5)),
            FixtureExpectation(
                file: "rfc822-attachment.eml", size: 723, headerLength: 192,
                envelope: unwrapped(
                    #"""
                    ("Wed, 6 Mar 2024 09:00:00 +0000" "Fwd: Planning" (("Dave" NIL "dave" "example.net"))
                     (("Dave" NIL "dave" "example.net")) (("Dave" NIL "dave" "example.net"))
                     (("Alice" NIL "alice" "example.org")) NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 26 0)
                    ("message" "rfc822" NIL NIL "Forwarded message" "7bit" 378
                     ("Tue, 5 Mar 2024 18:00:00 -0800" "Planning" (("Eve" NIL "eve" "example.com"))
                     (("Eve" NIL "eve" "example.com")) (("Eve" NIL "eve" "example.com"))
                     (("Dave" NIL "dave" "example.net")) NIL NIL NIL "<plan-1@example.com>") (("text" "plain"
                     ("charset" "utf-8") NIL NIL "7bit" 14 0)("text" "html"
                     ("charset" "utf-8") NIL NIL "7bit" 21 0) "alternative") 17) "mixed")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 26 0 NIL NIL NIL NIL)
                    ("message" "rfc822" NIL NIL "Forwarded message" "7bit" 378
                     ("Tue, 5 Mar 2024 18:00:00 -0800" "Planning" (("Eve" NIL "eve" "example.com"))
                     (("Eve" NIL "eve" "example.com")) (("Eve" NIL "eve" "example.com"))
                     (("Dave" NIL "dave" "example.net")) NIL NIL NIL "<plan-1@example.com>") (("text" "plain"
                     ("charset" "utf-8") NIL NIL "7bit" 14 0 NIL NIL NIL NIL)("text" "html"
                     ("charset" "utf-8") NIL NIL "7bit" 21 0 NIL NIL NIL NIL) "alternative"
                     ("boundary" "inner") NIL NIL NIL) 17 NIL NIL NIL NIL) "mixed" ("boundary" "fwd") NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 6)),
            FixtureExpectation(
                file: "rfc2231.eml", size: 984, headerLength: 223,
                envelope: unwrapped(
                    #"""
                    ("Thu, 7 Mar 2024 11:11:11 +0100" "=?ISO-8859-1?Q?Unterlagen_f=FCr_M=FCnchen?="
                     (("Frank" NIL "frank" "example.de")) (("Frank" NIL "frank" "example.de"))
                     (("Frank" NIL "frank" "example.de")) (("Grace" NIL "grace" "example.de")) NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0)("application" "octet-stream"
                     ("name*" "UTF-8''%E2%82%AC%20rates%20for%202024.txt") NIL NIL "base64" 8)("text" "plain"
                     ("charset" "us-ascii" "name" "very long name, part two.txt"
                     "title*" "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A") NIL NIL "7bit" 1 0)
                    ("application" "pdf" NIL NIL NIL "base64" 8) "mixed")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL)
                    ("application" "octet-stream"
                     ("name*" "UTF-8''%E2%82%AC%20rates%20for%202024.txt") NIL NIL "base64" 8 NIL ("attachment"
                     ("filename*" "iso-8859-1'de'M%FCnchen.txt")) NIL NIL)("text" "plain"
                     ("charset" "us-ascii" "name" "very long name, part two.txt"
                     "title*" "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A") NIL NIL "7bit" 1 0 NIL
                     ("attachment" ("filename*0" "a" "filename*2" "c")) NIL NIL)
                    ("application" "pdf" NIL NIL NIL "base64" 8 NIL
                     ("attachment" ("filename*" "utf-8''%C3%9Cbersicht%20%E2%80%93%20Q1.pdf")) NIL NIL) "mixed"
                     ("boundary" "simple") NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 7)),
            FixtureExpectation(
                file: "encoded-words.eml", size: 427, headerLength: 420,
                envelope: unwrapped(
                    #"""
                    ("Fri, 8 Mar 2024 23:59:59 -1200" "=?UTF-8?B?8J+YgCBIZWxsbyDk?= =?UTF-8?B?uJbnlYw=?="
                     (("=?ISO-8859-1?Q?Fran=E7ois_M=FCller?=" NIL "francois" "example.fr"))
                     (("=?ISO-8859-1?Q?Fran=E7ois_M=FCller?=" NIL "francois" "example.fr"))
                     (("=?ISO-8859-1?Q?Fran=E7ois_M=FCller?=" NIL "francois" "example.fr"))
                     (("=?ISO-8859-2?Q?=A3ukasz_=AFy=B3a?=" NIL "lukasz" "example.pl")
                    ("=?windows-1252?Q?=93Smart=94_Quotes_=80?=" NIL "quotes" "example.com"))
                     (("=?windows-1251?B?yOLg7Q==?=" NIL "ivan" "example.ru")
                    ("=?KOI8-R?Q?=F0=C5=D4=D2?=" NIL "petr" "example.ru")) NIL NIL "<ew@example.com>")
                    """#),
                body: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1)
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 8)),
            FixtureExpectation(
                file: "groups.eml", size: 466, headerLength: 463,
                envelope: unwrapped(
                    #"""
                    ("Sat, 9 Mar 2024 01:02:03 +0000" "Group test" (("Joe Q. Public" NIL "john.q.public" "example.com"))
                     (("Secretary" NIL "sec" "example.com")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))
                     (("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "example.org")("Who?" NIL "one" "y.test"))
                     ((NIL NIL "boss" "nil.test")("Giant; \"Big\" Box" NIL "sysservices" "example.net"))
                     ((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")
                    ("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)(NIL NIL "friends" NIL)
                    (NIL NIL NIL NIL)) NIL "<groups@example.com>")
                    """#),
                body: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 9)),
            FixtureExpectation(
                file: "obsolete-addresses.eml", size: 526, headerLength: 516,
                envelope: unwrapped(
                    #"""
                    ("21 Nov 97 09:55:06 GMT" "Obsolete" (("Pete" NIL "pete" "silly.test"))
                     (("Pete" NIL "pete" "silly.test")) ((NIL NIL "quoted local" "example.com")
                    (NIL NIL "bare-local" "MISSING_DOMAIN")("Just A Name" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")
                    (NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "user" "MISSING_DOMAIN")
                    ("John Smith" NIL "john" "smith.test")) ((NIL NIL "A Group" NIL)
                    ("Chris Jones" NIL "c" "public.example")(NIL NIL "joe" "example.org")("John" NIL "jdoe" "one.test")
                    (NIL NIL NIL NIL)) ((NIL NIL "Hidden recipients" NIL)
                    (NIL NIL NIL NIL)) NIL NIL "<testabcd.1234@silly.test>")
                    """#),
                body: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 1)
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 1997, month: 11, day: 21)),
            FixtureExpectation(
                file: "missing-headers.eml", size: 85, headerLength: 51,
                envelope: unwrapped(
                    #"""
                    (NIL "No sender, no date" NIL NIL NIL NIL NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 34 1)
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 34 1 NIL NIL NIL NIL)
                    """#),
                sentDate: nil),
            FixtureExpectation(
                file: "broken-boundary.eml", size: 371, headerLength: 106,
                envelope: unwrapped(
                    #"""
                    (NIL "Broken MIME" (("Heidi" NIL "heidi" "example.com")) (("Heidi" NIL "heidi" "example.com"))
                     (("Heidi" NIL "heidi" "example.com")) NIL NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    ((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0)("text" "html"
                     ("charset" "us-ascii") NIL NIL "7bit" 16 0) "alternative")("text" "plain"
                     ("charset" "utf-8") NIL NIL "7bit" 32 1) "mixed")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 9 0 NIL NIL NIL NIL)("text" "html"
                     ("charset" "us-ascii") NIL NIL "7bit" 16 0 NIL NIL NIL NIL) "alternative"
                     ("boundary" "inner") NIL NIL NIL)("text" "plain"
                     ("charset" "utf-8") NIL NIL "7bit" 32 1 NIL NIL NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)
                    """#),
                sentDate: nil),
            FixtureExpectation(
                file: "bare-lf.eml", size: 337, headerLength: 163,
                envelope: unwrapped(
                    #"""
                    ("Sun, 10 Mar 2024 12:00:00 +0000" "LF only" (("Ivan" NIL "ivan" "example.com"))
                     (("Ivan" NIL "ivan" "example.com")) (("Ivan" NIL "ivan" "example.com"))
                     (("Judy" NIL "judy" "example.com")) NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 1)("text" "plain"
                     ("charset" "us-ascii") NIL NIL "quoted-printable" 13 1) "mixed")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 1 NIL NIL NIL NIL)("text" "plain"
                     ("charset" "us-ascii") NIL NIL "quoted-printable" 13 1 NIL NIL NIL NIL) "mixed"
                     ("boundary" "lf") NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 10)),
            FixtureExpectation(
                file: "8bit-utf8.eml", size: 296, headerLength: 269,
                envelope: unwrapped(
                    """
                    ("Mon, 11 Mar 2024 07:00:00 +0100" {34}\r\nGrüße aus Köln – 8-bit header
                     (({13}\r\nJürgen Groß NIL "juergen" "example.de"))
                     (({13}\r\nJürgen Groß NIL "juergen" "example.de"))
                     (({13}\r\nJürgen Groß NIL "juergen" "example.de"))
                     (({4}\r\nZoë NIL "zoe" "example.com")) NIL NIL NIL NIL)
                    """),
                body: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 27 2)
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    ("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 27 2 NIL NIL NIL NIL)
                    """#),
                sentDate: IMAPDate(year: 2024, month: 3, day: 11)),
            FixtureExpectation(
                file: "binary-nul.eml", size: 323, headerLength: 125,
                envelope: unwrapped(
                    #"""
                    (NIL "Binary with NUL" (("Mallory" NIL "mallory" "example.com"))
                     (("Mallory" NIL "mallory" "example.com"))
                     (("Mallory" NIL "mallory" "example.com")) NIL NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    (("application" "octet-stream" NIL NIL NIL "binary" 11)("text" "plain"
                     ("charset" "us-ascii") NIL NIL "base64" 20 0) "mixed")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    (("application" "octet-stream" NIL NIL NIL "binary" 11 NIL NIL NIL NIL)("text" "plain"
                     ("charset" "us-ascii") NIL NIL "base64" 20 0 NIL NIL NIL NIL) "mixed"
                     ("boundary" "bin") NIL NIL NIL)
                    """#),
                sentDate: nil),
            FixtureExpectation(
                file: "base64-qp.eml", size: 427, headerLength: 102,
                envelope: unwrapped(
                    #"""
                    (NIL "Encodings" (("Oscar" NIL "oscar" "example.com")) (("Oscar" NIL "oscar" "example.com"))
                     (("Oscar" NIL "oscar" "example.com")) NIL NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "utf-8") NIL NIL "Quoted-Printable" 114 4)
                    ("application" "octet-stream" NIL NIL NIL "BASE64" 19) "mixed")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    (("text" "plain" ("charset" "utf-8") NIL NIL "Quoted-Printable" 114 4 NIL NIL NIL NIL)
                    ("application" "octet-stream" NIL NIL NIL "BASE64" 19 NIL NIL NIL NIL) "mixed"
                     ("boundary" "enc") NIL NIL NIL)
                    """#),
                sentDate: nil),
            FixtureExpectation(
                file: "digest.eml", size: 200, headerLength: 89,
                envelope: unwrapped(
                    #"""
                    (NIL "Digest" ((NIL NIL "digest" "example.com")) ((NIL NIL "digest" "example.com"))
                     ((NIL NIL "digest" "example.com")) NIL NIL NIL NIL NIL)
                    """#),
                body: unwrapped(
                    #"""
                    (("message" "rfc822" NIL NIL NIL "7bit" 42 (NIL "first" ((NIL NIL "a" "example.com"))
                     ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL) ("text" "plain"
                     ("charset" "us-ascii") NIL NIL "7bit" 3 0) 3)("text" "plain"
                     ("charset" "us-ascii") NIL NIL "7bit" 18 0) "digest")
                    """#),
                bodyStructure: unwrapped(
                    #"""
                    (("message" "rfc822" NIL NIL NIL "7bit" 42 (NIL "first" ((NIL NIL "a" "example.com"))
                     ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL) ("text" "plain"
                     ("charset" "us-ascii") NIL NIL "7bit" 3 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)("text" "plain"
                     ("charset" "us-ascii") NIL NIL "7bit" 18 0 NIL NIL NIL NIL) "digest" ("boundary" "d") NIL NIL NIL)
                    """#),
                sentDate: nil),
        ]
    }

    @Test(arguments: FixtureExpectation.all)
    func fixtureEnvelopeAndBodyStructure(_ expected: FixtureExpectation) {
        let message = MIMEFixture.parsed(expected.file)
        #expect(message.bytes.count == expected.size)
        #expect(message.headerLength == expected.headerLength)
        #expect(MIMEFixture.text(message.envelope) == expected.envelope)
        #expect(MIMEFixture.text(message.body) == expected.body)
        #expect(MIMEFixture.text(message.bodyStructure) == expected.bodyStructure)
        #expect(message.sentDate == expected.sentDate)
        #expect(MIMEFixture.isBalanced(message.bodyStructure))
        #expect(MIMEFixture.isBalanced(message.envelope))
    }

    @Test func everyFixtureIsCovered() {
        #expect(Set(FixtureExpectation.all.map(\.file)) == Set(MIMEFixture.all))
        for file in MIMEFixture.all { #expect(!MIMEFixture.bytes(file).isEmpty, "\(file) is missing") }
    }
}
