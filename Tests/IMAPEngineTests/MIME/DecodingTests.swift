import Testing

@testable import IMAPEngine

/// Transfer encodings, charsets, encoded words, RFC 2231 parameters, dates.
@Suite struct MIMEDecodingTests {
    @Test func base64Decoding() {
        func decode(_ text: String) -> String? {
            TransferEncoding.decode(Array(text.utf8), encoding: "base64").map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(decode("SGVsbG8sIHdvcmxkIQ==") == "Hello, world!")
        #expect(decode("SGVs\r\nbG8s\r\n IHdv cmxk\tIQ==\r\n") == "Hello, world!")
        #expect(decode("SG!!Vs*bG8") == "Hello")
        #expect(decode("QQ==QQ==") == "AA")
        #expect(decode("QUI") == "AB")
        #expect(decode("QUJDR") == "ABC")
        #expect(decode("") == "")
        #expect(decode("====") == "")
        #expect(TransferEncoding.decode(Array("SGk=".utf8), encoding: " BASE64 ") == Array("Hi".utf8))
    }

    @Test func quotedPrintableDecoding() {
        func decode(_ text: String) -> String? {
            TransferEncoding.decode(Array(text.utf8), encoding: "Quoted-Printable").map {
                String(decoding: $0, as: UTF8.self)
            }
        }
        #expect(decode("caf=C3=A9") == "café")
        #expect(decode("caf=c3=a9") == "café")
        #expect(decode("soft=\r\nbreak") == "softbreak")
        #expect(decode("soft=  \r\nbreak") == "softbreak")
        #expect(decode("soft=\nbreak") == "softbreak")
        #expect(decode("end=") == "end")
        #expect(decode("bad =ZZ =4\r\n=") == "bad =ZZ =4\r\n")
        #expect(decode("=\r\n") == "")
        #expect(decode("a=") == "a")
        #expect(decode("trailing   \r\nspace\t") == "trailing\r\nspace")
        #expect(decode("kept=20\r\n") == "kept \r\n")
        #expect(decode("x= y") == "x= y")
        #expect(decode("=3D=3d") == "==")
    }

    @Test func identityAndUnknownEncodings() {
        let bytes: [UInt8] = [0, 1, 0xFF, 0x0D, 0x0A]
        for encoding in ["7bit", "8BIT", "binary", ""] {
            #expect(TransferEncoding.decode(bytes, encoding: encoding) == bytes)
        }
        #expect(TransferEncoding.decode(bytes, encoding: "x-uuencode") == nil)
        #expect(TransferEncoding.decode(bytes, encoding: "base-64") == nil)
        #expect(TransferEncoding.decode(bytes[1...], encoding: "binary") == [1, 0xFF, 0x0D, 0x0A])
    }

    @Test func charsetDecoding() {
        #expect(Charset.decode([0x61, 0xC3, 0xA9], charset: "UTF-8") == "aé")
        #expect(Charset.decode([0x61, 0xFF, 0x62, 0xC3], charset: "utf8") == "a\u{FFFD}b\u{FFFD}")
        #expect(Charset.decode([0x61, 0xE9], charset: "us-ascii") == "a\u{FFFD}")
        #expect(Charset.decode([0xE9, 0xFF], charset: "latin1") == "éÿ")
        #expect(Charset.decode([0xE9, 0xFF], charset: "ISO_8859-1") == "éÿ")
        #expect(Charset.decode([0x80, 0x93, 0x94], charset: "cp1252") == "€“”")
        #expect(Charset.decode([0x41, 0x81, 0x42], charset: "windows-1252") == "A\u{FFFD}B")
        #expect(Charset.decode([0xA3, 0xB3], charset: "iso-8859-2") == "Łł")
        #expect(Charset.decode([0xF0, 0xC5, 0xD4, 0xD2], charset: "koi8-r") == "Петр")
        #expect(Charset.decode([0xC8, 0xE2, 0xE0, 0xED], charset: " \"Windows-1251\" ") == "Иван")
        #expect(Charset.decode([0xA4], charset: "iso-8859-15") == "€")
        #expect(Charset.decode([0xA4], charset: "ISO-8859-16") == "€")
        for number in 1...16 where number != 12 {
            #expect(Charset.decode([0x41], charset: "iso-8859-\(number)") == "A", "iso-8859-\(number)")
        }
        for number in 1250...1258 {
            #expect(Charset.decode([0x41], charset: "windows-\(number)") == "A", "windows-\(number)")
        }
        // Stateful and multi-byte charsets, truncated sequences, unknown and hostile names.
        #expect(Charset.decode(Array("\u{1B}$B$3$s$K$A$O\u{1B}(B".utf8), charset: "ISO-2022-JP") == "こんにちは")
        #expect(Charset.decode([0x82, 0xA0, 0x82], charset: "shift_jis") == "あ\u{FFFD}")
        #expect(Charset.decode([0xFF, 0xFE, 0x41, 0x00], charset: "UTF-16") == "A")
        #expect(Charset.decode([0xB0, 0xA1], charset: "ks_c_5601-1987") == "가")
        #expect(Charset.decode([0x41], charset: "x-no-such-charset") == nil)
        #expect(Charset.decode([0x41], charset: "utf-8//TRANSLIT") == nil)
        #expect(Charset.decode([0x41], charset: "../../etc/passwd") == nil)
        #expect(Charset.decode([0x41], charset: "") == nil)
        #expect(Charset.decode([0x41], charset: "utf-8*en") == "A")
        let big = [UInt8](repeating: 0xE9, count: 100_000)
        #expect(Charset.decode(big, charset: "iso-8859-1")?.unicodeScalars.count == 100_000)
    }

    @Test func headerTextDecoding() {
        func decode(_ text: String) -> String { HeaderText.decode(Array(text.utf8)) }
        #expect(decode("=?utf-8?q?caf=C3=A9?=") == "café")
        #expect(decode("=?UTF-8?Q?a_b?= =?UTF-8?Q?_c?=") == "a b c")
        #expect(decode("=?iso-8859-1?q?a?=\r\n =?iso-8859-1?q?b?=") == "ab")
        #expect(decode("=?iso-8859-1?q?a?= x =?iso-8859-1?q?b?=") == "a x b")
        #expect(decode("Re: =?utf-8?b?w6k=?= end") == "Re: é end")
        #expect(decode("=?utf-8?b?8J+Y?= =?utf-8?b?gA==?=") == "😀")
        #expect(decode("=?iso-8859-1?q?=E9?==?utf-8?q?=C3=A9?=") == "éé")
        #expect(decode("=?utf-8*fr?q?=C3=A9?=") == "é")
        #expect(decode("=?x-unknown?q?caf=E9?=") == "café")
        // Malformed encoded words stay as they are.
        #expect(decode("=?utf-8?x?abc?=") == "=?utf-8?x?abc?=")
        #expect(decode("=?utf-8?q?abc") == "=?utf-8?q?abc")
        #expect(decode("=??q?abc?=") == "=??q?abc?=")
        #expect(decode("=?utf-8?q?a b?=") == "=?utf-8?q?a b?=")
        #expect(decode("a =? b ?= c") == "a =? b ?= c")
        // Raw 8-bit text: UTF-8 when valid, windows-1252 otherwise.
        #expect(HeaderText.decode([0x43, 0x61, 0x66, 0xC3, 0xA9]) == "Café")
        #expect(HeaderText.decode([0x43, 0x61, 0x66, 0xE9, 0x20, 0x80]) == "Café €")
    }

    /// RFC 2231 continuations as BODYSTRUCTURE shows them (Dovecot 2.3's form).
    @Test func parameterContinuations() {
        func joined(_ value: String) -> [String] {
            let parsed = MIMEFieldValue.contentType(Array("application/x; \(value)".utf8))?.parameters ?? []
            return MIMEParameter.joiningContinuations(parsed).map {
                String(decoding: $0.name, as: UTF8.self) + "=" + String(decoding: $0.value, as: UTF8.self)
            }
        }
        #expect(joined("name*0=\"a b\"; name*1=c") == ["name=a bc"])
        #expect(joined("name*1=c; NAME*0=\"a b\"") == ["name=a bc"])
        #expect(joined("name*0*=utf-8''%E2%82%AC; name*1=\" 5%\"") == ["name*=utf-8''%E2%82%AC%205%25"])
        #expect(joined("name*0=\"x y\"; name*1*=%E2%82%AC") == ["name*=''x%20y%E2%82%AC"])
        #expect(joined("name*=utf-8'en'%E2%82%AC") == ["name*=utf-8'en'%E2%82%AC"])
        #expect(joined("name*0=a; name*2=c") == ["name*0=a", "name*2=c"])
        #expect(joined("name*0=a; name*0=b") == ["name*0=a"])
        #expect(joined("a=1; name*0=x; b=2; name*1=y") == ["a=1", "name=xy", "b=2"])
        #expect(joined("charset=utf-8; CHARSET=latin1") == ["charset=utf-8"])
        #expect(joined("name*x=1; name*12345=2") == ["name*x=1", "name*12345=2"])
        #expect(joined("name=plain; name*=utf-8''%41") == ["name=plain", "name*=utf-8''%41"])

        func decoded(_ value: String) -> [String] {
            let parsed = MIMEFieldValue.contentType(Array("application/x; \(value)".utf8))?.parameters ?? []
            return MIMEParameter.decodedValues(parsed).map { $0.name + "=" + $0.value }
        }
        #expect(decoded("Name*0*=utf-8''%E2%82%AC; name*1=\" 5%\"") == ["name=€ 5%"])
        #expect(decoded("title*=iso-8859-1'de'M%FCnchen") == ["title=München"])
        #expect(decoded("title*=x-bogus''%E9") == ["title=é"])
        #expect(decoded("title*=no-quotes%41") == ["title=no-quotesA"])
        #expect(decoded("filename=\"=?utf-8?b?w6k=?=.txt\"") == ["filename=é.txt"])
    }

    @Test func contentTypeParsing() {
        func parse(_ value: String) -> String? {
            guard let field = MIMEFieldValue.contentType(Array(value.utf8)) else { return nil }
            let parameters = field.parameters.map {
                String(decoding: $0.name, as: UTF8.self) + "=" + String(decoding: $0.value, as: UTF8.self)
            }
            return ([String(decoding: field.token + [0x2F] + field.subtype, as: UTF8.self)] + parameters)
                .joined(separator: "|")
        }
        #expect(parse("Text/HTML; Charset=\"UTF-8\"") == "Text/HTML|Charset=UTF-8")
        #expect(
            parse(" text (comment) / plain (more) ; charset = us-ascii (Plain text)") == "text/plain|charset=us-ascii")
        #expect(parse("multipart/mixed; boundary=----=_Part_1_2.3") == "multipart/mixed|boundary=----=_Part_1_2.3")
        #expect(parse("application/pdf; name=my file.pdf; x=1") == "application/pdf|name=my file.pdf|x=1")
        #expect(parse("text/plain; junk; charset=utf-8") == "text/plain|charset=utf-8")
        #expect(parse("text/plain garbage; charset=utf-8") == "text/plain|charset=utf-8")
        #expect(parse("text/plain; name=\"unterminated") == "text/plain|name=unterminated")
        #expect(parse("text/plain; name=\"a \\\"b\\\" c\"") == "text/plain|name=a \"b\" c")
        #expect(parse("text/plain;;; charset=x;") == "text/plain|charset=x")
        #expect(parse("text/plain; (unterminated comment") == "text/plain")
        #expect(parse("text") == nil)
        #expect(parse("text/") == nil)
        #expect(parse("/plain") == nil)
        #expect(parse("") == nil)
        #expect(
            MIMEFieldValue.tokenList(Array("en-US, (comment) fr ,, de".utf8)) == [
                Array("en-US".utf8), Array("fr".utf8), Array("de".utf8),
            ])
        #expect(MIMEFieldValue.tokenList(Array(" , ".utf8)) == nil)
        #expect(MIMEFieldValue.singleToken(Array(" Base64 (comment)".utf8)) == Array("Base64".utf8))
    }

    @Test(arguments: [
        ("Mon, 12 Feb 2024 10:00:00 +0000", IMAPDate(year: 2024, month: 2, day: 12)),
        ("12 Feb 2024 10:00 -0500", IMAPDate(year: 2024, month: 2, day: 12)),
        ("Thu, 1 Jan 1970 00:00:00 GMT", IMAPDate(year: 1970, month: 1, day: 1)),
        ("Sat, 31 Dec 2022 23:59:59 +1400", IMAPDate(year: 2022, month: 12, day: 31)),
        ("Sun, 1 Jan 2023 00:00:01 -1200", IMAPDate(year: 2023, month: 1, day: 1)),
        ("21 Nov 97 09:55:06 GMT", IMAPDate(year: 1997, month: 11, day: 21)),
        ("Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", IMAPDate(year: 1997, month: 11, day: 21)),
        ("5 Mar 03 1:02:03 +0000", IMAPDate(year: 2003, month: 3, day: 5)),
        ("5 Mar 103 1:02:03 +0000", IMAPDate(year: 2003, month: 3, day: 5)),
        ("Tue,  5 march 2024", IMAPDate(year: 2024, month: 3, day: 5)),
        ("29 Feb 2024 12:00 +0000", IMAPDate(year: 2024, month: 2, day: 29)),
        ("12-Feb-2024 10:00:00 +0000", IMAPDate(year: 2024, month: 2, day: 12)),
        ("Mon Feb 12 10:00:00 2024", IMAPDate(year: 2024, month: 2, day: 12)),
        ("2024-02-12T10:00:00Z", IMAPDate(year: 2024, month: 2, day: 12)),
        ("2024-02-12", IMAPDate(year: 2024, month: 2, day: 12)),
    ])
    func sentDates(_ value: String, _ expected: IMAPDate) {
        #expect(IMAPDate(parsing: Array(value.utf8)) == expected)
    }

    @Test(arguments: [
        "", "garbage", "Mon, 12 Foo 2024", "30 Feb 2024", "29 Feb 2023", "31 Apr 2024", "0 Jan 2024", "12 Feb",
        "99 Feb 2024", "12 Feb 20245", "Mon", "2024-13-01", "2024-02-30",
    ])
    func unparseableSentDates(_ value: String) {
        #expect(IMAPDate(parsing: Array(value.utf8)) == nil)
    }
}
