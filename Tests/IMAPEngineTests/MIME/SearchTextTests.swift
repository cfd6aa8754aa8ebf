import Foundation
import Testing

@testable import IMAPEngine

/// SEARCH text: decoded, lowercased subjects, addresses, headers and bodies.
@Suite struct MIMESearchTextTests {
    @Test func searchTextOfSimpleMessage() {
        let search = MIMEFixture.parsed("simple.eml").search
        #expect(search.from == "alice example <alice@example.org>")
        #expect(search.to == "bob, the builder <bob@example.net>\ncarol c. <carol@example.net>")
        #expect(search.cc == "dave <dave@example.net>")
        #expect(search.bcc == "")
        #expect(search.subject == "lunch on friday?")
        #expect(search.body == "hi bob,\n\nshall we have lunch on friday?\n\nalice")
        #expect(
            search.headers
                == "\nreturn-path: <alice@example.org>"
                + "\nreceived: from mail.example.org (mail.example.org [192.0.2.1])"
                + "\tby mx.example.net with esmtp id 4f2a; mon, 12 feb 2024 10:00:02 +0000"
                + "\ndate: mon, 12 feb 2024 10:00:00 +0100\nfrom: alice example <alice@example.org>"
                + "\nto: \"bob, the builder\" <bob@example.net>, carol@example.net (carol c.)"
                + "\ncc: dave <dave@example.net>"
                + "\nsubject: lunch on friday?\nmessage-id: <20240212100000.4f2a@example.org>"
                + "\nin-reply-to: <prev-1@example.net>"
                + "\nmime-version: 1.0\ncontent-type: text/plain; charset=utf-8; format=flowed"
                + "\ncontent-transfer-encoding: 7bit\n")
    }

    @Test func searchTextOfFixtures() {
        let alternative = MIMEFixture.parsed("alternative.eml").search
        #expect(alternative.from == "renée <renee@example.com>")
        #expect(alternative.to == "list@example.com")
        #expect(alternative.body == "café au lait for everyone.\ncafé au lait for everyone.")

        #expect(MIMEFixture.parsed("mixed-related.eml").search.body == "see")

        let forwarded = MIMEFixture.parsed("rfc822-attachment.eml").search
        #expect(
            forwarded.body
                == "see the forwarded message.\neve <eve@example.com>\ndave <dave@example.net>\nplanning"
                + "\ntue, 5 mar 2024 18:00:00 -0800\n<plan-1@example.com>\n1.0\nmultipart/alternative; boundary=inner"
                + "\nplan: ship it.\nplan: ship it.")
        #expect(forwarded.subject == "fwd: planning")

        let parameters = MIMEFixture.parsed("rfc2231.eml")
        #expect(parameters.search.subject == "unterlagen für münchen")
        #expect(parameters.search.body == "attached.\nx")

        let words = MIMEFixture.parsed("encoded-words.eml").search
        #expect(words.subject == "😀 hello 世界")
        #expect(words.from == "françois müller <francois@example.fr>")
        #expect(words.to == "łukasz żyła <lukasz@example.pl>\n“smart” quotes € <quotes@example.com>")
        #expect(words.cc == "иван <ivan@example.ru>\nпетр <petr@example.ru>")
        #expect(words.headers.contains("\nsubject: 😀 hello 世界\n"))

        let groups = MIMEFixture.parsed("groups.eml").search
        #expect(groups.from == "joe q. public <john.q.public@example.com>")
        #expect(groups.to == "mary smith <mary@x.test>\njdoe@example.org\nwho? <one@y.test>")
        #expect(groups.cc == "boss@nil.test\ngiant; \"big\" box <sysservices@example.net>")
        #expect(groups.bcc == "a group:\ned jones <c@a.test>\njoe@where.test\njohn <jdoe@one.test>\nfriends:")

        let missing = MIMEFixture.parsed("missing-headers.eml").search
        #expect(missing.from == "")
        #expect(missing.subject == "no sender, no date")
        #expect(missing.body == "plain body without content-type.")
        #expect(missing.headers == "\nsubject: no sender, no date\nx-mailer: handmade\n")

        let utf8 = MIMEFixture.parsed("8bit-utf8.eml").search
        #expect(utf8.subject == "grüße aus köln – 8-bit header")
        #expect(utf8.from == "jürgen groß <juergen@example.de>")
        #expect(utf8.to == "zoë <zoe@example.com>")
        #expect(utf8.headers.contains("\nx-note: café crème\n"))
        #expect(utf8.body == "schöne grüße,\njürgen")

        let binary = MIMEFixture.parsed("binary-nul.eml").search
        #expect(binary.body == "hello, world!")
        #expect(binary.headers.contains("\nx-null: ab\n"))

        #expect(
            MIMEFixture.parsed("base64-qp.eml").search.body
                == "line with trailing spaces\nsoftbreak and été = equals, bad =zz and =4\ntab at end\t\nlast line")
        #expect(MIMEFixture.parsed("bare-lf.eml").search.body == "line one\nline two\nsoft break")
        #expect(MIMEFixture.parsed("digest.eml").search.body == "a@example.com\nfirst\none\nexplicit text part")
        #expect(
            MIMEFixture.parsed("broken-boundary.eml").search.body
                == "inner one\ninner two\nlast part, no closing boundary")
    }

    /// A subject encoded in each charset and a body written in it, as 8bit, quoted-printable and base64.
    struct CharsetCase: Sendable, CustomTestStringConvertible {
        var charset: String
        var subject: String
        var subjectBytes: [UInt8]
        var body: String
        var bodyBytes: [UInt8]

        var testDescription: String { charset }

        static let all: [CharsetCase] = [
            CharsetCase(
                charset: "UTF-8", subject: "Überprüfung – 日本語",
                subjectBytes: [
                    0xC3, 0x9C, 0x62, 0x65, 0x72, 0x70, 0x72, 0xC3, 0xBC, 0x66, 0x75, 0x6E, 0x67, 0x20, 0xE2, 0x80,
                    0x93,
                    0x20, 0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC, 0xE8, 0xAA, 0x9E,
                ],
                body: "Grüße aus 東京",
                bodyBytes: [
                    0x47, 0x72, 0xC3, 0xBC, 0xC3, 0x9F, 0x65, 0x20, 0x61, 0x75, 0x73, 0x20, 0xE6, 0x9D, 0xB1, 0xE4,
                    0xBA,
                    0xAC,
                ]),
            CharsetCase(
                charset: "ISO-8859-1", subject: "Déjà vu, Ærø",
                subjectBytes: [0x44, 0xE9, 0x6A, 0xE0, 0x20, 0x76, 0x75, 0x2C, 0x20, 0xC6, 0x72, 0xF8],
                body: "Où est la bibliothèque?",
                bodyBytes: [
                    0x4F, 0xF9, 0x20, 0x65, 0x73, 0x74, 0x20, 0x6C, 0x61, 0x20, 0x62, 0x69, 0x62, 0x6C, 0x69, 0x6F,
                    0x74,
                    0x68,
                    0xE8, 0x71, 0x75, 0x65, 0x3F,
                ]),
            CharsetCase(
                charset: "ISO-8859-2", subject: "Zażółć gęślą jaźń",
                subjectBytes: [
                    0x5A, 0x61, 0xBF, 0xF3, 0xB3, 0xE6, 0x20, 0x67, 0xEA, 0xB6, 0x6C, 0xB1, 0x20, 0x6A, 0x61, 0xBC,
                    0xF1,
                ],
                body: "Příliš žluťoučký kůň",
                bodyBytes: [
                    0x50, 0xF8, 0xED, 0x6C, 0x69, 0xB9, 0x20, 0xBE, 0x6C, 0x75, 0xBB, 0x6F, 0x75, 0xE8, 0x6B, 0xFD,
                    0x20,
                    0x6B,
                    0xF9, 0xF2,
                ]),
            CharsetCase(
                charset: "windows-1252", subject: "“Smart” quotes – €5 … œuvre",
                subjectBytes: [
                    0x93, 0x53, 0x6D, 0x61, 0x72, 0x74, 0x94, 0x20, 0x71, 0x75, 0x6F, 0x74, 0x65, 0x73, 0x20, 0x96,
                    0x20,
                    0x80,
                    0x35, 0x20, 0x85, 0x20, 0x9C, 0x75, 0x76, 0x72, 0x65,
                ],
                body: "Ça coûte 5 € – “vraiment”",
                bodyBytes: [
                    0xC7, 0x61, 0x20, 0x63, 0x6F, 0xFB, 0x74, 0x65, 0x20, 0x35, 0x20, 0x80, 0x20, 0x96, 0x20, 0x93,
                    0x76,
                    0x72,
                    0x61, 0x69, 0x6D, 0x65, 0x6E, 0x74, 0x94,
                ]),
            CharsetCase(
                charset: "windows-1251", subject: "Съешь же ещё этих мягких булок",
                subjectBytes: [
                    0xD1, 0xFA, 0xE5, 0xF8, 0xFC, 0x20, 0xE6, 0xE5, 0x20, 0xE5, 0xF9, 0xB8, 0x20, 0xFD, 0xF2, 0xE8,
                    0xF5,
                    0x20,
                    0xEC, 0xFF, 0xE3, 0xEA, 0xE8, 0xF5, 0x20, 0xE1, 0xF3, 0xEB, 0xEE, 0xEA,
                ],
                body: "Широкая электрификация южных губерний",
                bodyBytes: [
                    0xD8, 0xE8, 0xF0, 0xEE, 0xEA, 0xE0, 0xFF, 0x20, 0xFD, 0xEB, 0xE5, 0xEA, 0xF2, 0xF0, 0xE8, 0xF4,
                    0xE8,
                    0xEA,
                    0xE0, 0xF6, 0xE8, 0xFF, 0x20, 0xFE, 0xE6, 0xED, 0xFB, 0xF5, 0x20, 0xE3, 0xF3, 0xE1, 0xE5, 0xF0,
                    0xED,
                    0xE8,
                    0xE9,
                ]),
            CharsetCase(
                charset: "KOI8-R", subject: "Съешь же ещё этих булок",
                subjectBytes: [
                    0xF3, 0xDF, 0xC5, 0xDB, 0xD8, 0x20, 0xD6, 0xC5, 0x20, 0xC5, 0xDD, 0xA3, 0x20, 0xDC, 0xD4, 0xC9,
                    0xC8,
                    0x20,
                    0xC2, 0xD5, 0xCC, 0xCF, 0xCB,
                ],
                body: "Эх, чужак, общий съём цен шляп",
                bodyBytes: [
                    0xFC, 0xC8, 0x2C, 0x20, 0xDE, 0xD5, 0xD6, 0xC1, 0xCB, 0x2C, 0x20, 0xCF, 0xC2, 0xDD, 0xC9, 0xCA,
                    0x20,
                    0xD3,
                    0xDF, 0xA3, 0xCD, 0x20, 0xC3, 0xC5, 0xCE, 0x20, 0xDB, 0xCC, 0xD1, 0xD0,
                ]),
        ]
    }

    @Test(arguments: CharsetCase.all)
    func subjectsAndBodiesInEveryCharset(_ sample: CharsetCase) {
        let base64Subject = Data(sample.subjectBytes).base64EncodedString()
        // RFC 2047 §5 (3): in a phrase, Q text keeps only letters and digits as they are.
        let quotedSubject = sample.subjectBytes.map { byte in
            if byte == 0x20 { return "_" }
            let plain = byte < 0x80 && (UnicodeScalar(byte).properties.isAlphabetic || (0x30...0x39).contains(byte))
            return plain ? String(UnicodeScalar(byte)) : String(format: "=%02X", byte)
        }.joined()
        let quotedBody = sample.bodyBytes.map { byte in
            byte < 0x80 && byte != 0x3D ? String(UnicodeScalar(byte)) : String(format: "=%02X", byte)
        }.joined()
        let crlf: [UInt8] = [0x0D, 0x0A]
        let variants: [(encoding: String, subject: String, body: [UInt8], binary: [UInt8])] = [
            ("8bit", "=?\(sample.charset)?B?\(base64Subject)?=", sample.bodyBytes, sample.bodyBytes + crlf),
            (
                "quoted-printable", "=?\(sample.charset.lowercased())?q?\(quotedSubject)?=", Array(quotedBody.utf8),
                sample.bodyBytes + crlf
            ),
            (
                "base64", "=?\(sample.charset)*en?B?\(base64Subject)?=",
                Array(Data(sample.bodyBytes).base64EncodedString().utf8), sample.bodyBytes
            ),
        ]
        for variant in variants {
            let header =
                "From: \(variant.subject) <x@example.com>\r\nSubject: \(variant.subject)\r\n"
                + "Content-Type: text/plain; charset=\"\(sample.charset)\"\r\n"
                + "Content-Transfer-Encoding: \(variant.encoding)\r\n\r\n"
            let message = ParsedMessage(parsing: Array(header.utf8) + variant.body + crlf)
            #expect(message.search.subject == sample.subject.lowercased(), "\(variant.encoding)")
            #expect(message.search.from == sample.subject.lowercased() + " <x@example.com>", "\(variant.encoding)")
            #expect(message.search.body == sample.body.lowercased(), "\(variant.encoding)")
            #expect(message.binaryBytes([1]) == variant.binary, "\(variant.encoding)")
        }
    }

    @Test func bodyCharsetFallbacks() {
        func body(_ contentType: String?, _ bytes: [UInt8]) -> String {
            let header = contentType.map { "Content-Type: \($0)\r\n" } ?? ""
            return ParsedMessage(parsing: Array("\(header)\r\n".utf8) + bytes).search.body
        }
        let utf8 = Array("Grüße".utf8)
        let latin1: [UInt8] = [0x43, 0x61, 0x66, 0xE9, 0x20, 0x93, 0x71, 0x94]
        #expect(body(nil, utf8) == "grüße")
        #expect(body(nil, latin1) == "café “q”")
        #expect(body("text/plain; charset=us-ascii", utf8) == "grüße")
        #expect(body("text/plain; charset=us-ascii", latin1) == "café “q”")
        #expect(body("text/plain; charset=x-unknown-charset", latin1) == "café “q”")
        #expect(body("text/plain; charset=latin1", Array(latin1.prefix(4))) == "café")
        #expect(body("text/plain; charset=cp1252", latin1) == "café “q”")
        #expect(body("text/plain; charset=utf8", utf8) == "grüße")
        #expect(body("text/plain; charset=utf-8", [0x61, 0xFF, 0x62]) == "a\u{FFFD}b")
        #expect(body("application/octet-stream", utf8) == "")
        #expect(
            body(
                "text/html; charset=utf-8",
                Array("<p>Tom &amp; Jerry&nbsp;&eacute;&#233;&#x41;</p><script>x()</script><!-- c -->ok".utf8))
                == "tom & jerry ééa\nok")
        #expect(body("text/calendar", Array("BEGIN:VCALENDAR".utf8)) == "begin:vcalendar")
    }

    @Test func searchTextHeadersDecodeParameters() {
        let message = MIMEFixture.parsed("rfc2231.eml")
        let attachment = message.partNode(1)
        let header = HeaderBlock(bytes: message.bytes, range: attachment?.headerRange ?? 0..<0)
        let values = header.fields.map { SearchText.searchable(SearchText.decodedValue(header, $0)) }
        #expect(
            values == [
                "application/octet-stream; name=€ rates for 2024.txt", "attachment; filename=münchen.txt", "base64",
            ])
        let third = message.partNode(2)
        let thirdHeader = HeaderBlock(bytes: message.bytes, range: third?.headerRange ?? 0..<0)
        #expect(
            thirdHeader.fields.map { SearchText.searchable(SearchText.decodedValue(thirdHeader, $0)) } == [
                "text/plain; charset=us-ascii; name=very long name, part two.txt; title=this is ***fun***",
                "attachment; filename*0=a; filename*2=c",
            ])
        let fourth = message.partNode(3)
        let fourthHeader = HeaderBlock(bytes: message.bytes, range: fourth?.headerRange ?? 0..<0)
        #expect(
            fourthHeader.fields.map { SearchText.searchable(SearchText.decodedValue(fourthHeader, $0)) } == [
                "application/pdf", "attachment; filename=übersicht – q1.pdf", "base64",
            ])
    }

    @Test func bodyTextIsCapped() {
        let line = String(repeating: "abcdefghij", count: 10) + "\r\n"
        let big = String(repeating: line, count: 50_000)  // 5.1 MB
        let message = ParsedMessage(parsing: Array("Subject: big\r\n\r\n\(big)".utf8))
        #expect(message.search.body.utf8.count <= SearchText.maxBodyBytes)
        #expect(message.search.body.utf8.count > SearchText.maxBodyBytes - 200)
        let multibyte = ParsedMessage(
            parsing: Array("Content-Type: text/plain; charset=utf-8\r\n\r\n".utf8)
                + Array(String(repeating: "ж", count: 3_000_000).utf8))
        #expect(multibyte.search.body.utf8.count <= SearchText.maxBodyBytes)
        let onlyZhe = multibyte.search.body.unicodeScalars.allSatisfy { $0 == "ж" }
        #expect(onlyZhe)
    }
}
