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

    /// `collapse` reads ASCII byte by byte and the rest by character: on any mix of ASCII, whitespace, controls,
    /// combining marks, CRLF and multi-scalar characters, around the length where the cut falls, it answers exactly
    /// what a loop over characters does.
    @Test func collapseAgreesWithTheCharacterLoop() {
        func reference(_ text: String) -> String {
            var out = ""
            var scalars = 0
            var pendingSpace = false
            for character in text {
                if character.isWhitespace {
                    pendingSpace = !out.isEmpty
                    continue
                }
                if character.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) { continue }
                let cost = character.unicodeScalars.count + (pendingSpace ? 1 : 0)
                if scalars + cost > Preview.maxScalars { break }
                if pendingSpace { out.append(" ") }
                out.append(character)
                scalars += cost
                pendingSpace = false
            }
            return out
        }
        let pieces = [
            "a", "Z", "7", " ", "\t", "\r\n", "\r", "\n", "\u{0B}", "\u{00}", "\u{1F}", "\u{7F}", "e\u{301}", "\u{301}",
            "\u{0308}", "é", "ß", "\u{85}", "\u{A0}", "\u{2028}", "🇫🇷", "👩‍👩‍👧", "日本", "\u{200D}", "x\u{20E3}",
        ]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<3000 {
            var text = ""
            let asciiRun = round % 3 == 0 ? Int.random(in: 150...260, using: &generator) : 0
            text += String(repeating: "w", count: asciiRun)
            for _ in 0..<Int.random(in: 0...260, using: &generator) {
                text += pieces.randomElement(using: &generator) ?? "a"
            }
            #expect(Preview.collapse(text) == reference(text), "\(text.debugDescription)")
        }
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
