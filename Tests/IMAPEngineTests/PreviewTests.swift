import Testing

@testable import IMAPEngine

/// RFC 8970 PREVIEW text, as computed at ingest.
struct PreviewTests {
    static func preview(_ text: String) -> String? {
        ParsedMessage(parsing: Array(text.utf8)).preview
    }

    @Test func plainTextIsCollapsedAndCut() {
        #expect(Self.preview("Subject: a\r\n\r\n  Hello,\r\n\r\n\tworld!  \r\n") == "Hello, world!")
        let long = Self.preview("Subject: a\r\n\r\n" + String(repeating: "word ", count: 100)) ?? ""
        #expect(long.unicodeScalars.count <= Preview.maxScalars && long.hasPrefix("word word"))
        #expect(!long.hasSuffix(" "))
        // Characters of several scalars are never split.
        let flags =
            Self.preview(
                "Subject: a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + String(repeating: "🇫🇷", count: 150))
            ?? ""
        #expect(flags.unicodeScalars.count == 200 && flags.count == 100)
        #expect(Self.preview("Subject: a\r\n\r\n \r\n\r\n") == nil)
    }

    @Test func firstTextPartNotAttachmentDecoded() {
        let message = """
            Subject: a\r
            MIME-Version: 1.0\r
            Content-Type: multipart/mixed; boundary=b\r
            \r
            --b\r
            Content-Type: multipart/alternative; boundary=c\r
            \r
            --c\r
            Content-Type: text/html; charset=utf-8\r
            \r
            <p>Not <b>this</b></p>\r
            --c\r
            Content-Type: text/plain; charset=iso-8859-1\r
            Content-Transfer-Encoding: quoted-printable\r
            \r
            Caf=E9 =3D caf=\r
            e\r
            --c--\r
            --b\r
            Content-Type: text/plain\r
            Content-Disposition: attachment; filename=x.txt\r
            \r
            attached\r
            --b--\r

            """
        #expect(Self.preview(message) == "Café = cafe")
    }

    @Test func htmlWhenThereIsNoPlainText() {
        let message = """
            Subject: a\r
            Content-Type: text/html\r
            Content-Transfer-Encoding: base64\r
            \r
            PGh0bWw+PGJvZHk+PHA+SGk8L3A+PHA+dGhlcmUmYW1wOzwvcD48L2JvZHk+PC9odG1sPg==\r

            """
        #expect(Self.preview(message) == "Hi there&")
    }

    @Test func noTextGivesNil() {
        let message = """
            Subject: a\r
            Content-Type: multipart/mixed; boundary=b\r
            \r
            --b\r
            Content-Type: image/png\r
            Content-Transfer-Encoding: base64\r
            \r
            iVBORw0KGgo=\r
            --b\r
            Content-Type: text/plain\r
            Content-Disposition: attachment\r
            \r
            only an attachment\r
            --b--\r

            """
        #expect(Self.preview(message) == nil)
    }
}
