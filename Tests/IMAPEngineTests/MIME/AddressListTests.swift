import Testing

@testable import IMAPEngine

@Suite struct MIMEAddressTests {
    /// RFC 5322 §3.4 address lists (and §4.4 obsolete forms) as ENVELOPE address lists (RFC 9051 §7.5.2).
    @Test(arguments: [
        ("user@example.com", #"((NIL NIL "user" "example.com"))"#),
        ("John Doe <jdoe@example.com>", #"(("John Doe" NIL "jdoe" "example.com"))"#),
        (#""Doe, John" <jdoe@example.com>"#, #"(("Doe, John" NIL "jdoe" "example.com"))"#),
        (#""John \"Q\" Doe" <jdoe@example.com>"#, #"(("John \"Q\" Doe" NIL "jdoe" "example.com"))"#),
        ("jdoe@example.com (John Doe)", #"(("John Doe" NIL "jdoe" "example.com"))"#),
        ("<jdoe@example.com>", #"((NIL NIL "jdoe" "example.com"))"#),
        ("<jdoe@example.com> (comment)", #"((NIL NIL "jdoe" "example.com"))"#),
        (#""john doe"@example.com"#, #"((NIL NIL "john doe" "example.com"))"#),
        (#""john"."doe"@example.com"#, #"((NIL NIL "john.doe" "example.com"))"#),
        ("john . doe @ example . com", #"((NIL NIL "john.doe" "example.com"))"#),
        ("user@[192.0.2.1]", #"((NIL NIL "user" "[192.0.2.1]"))"#),
        (
            "Route <@relay1.example,@relay2.example:user@example.com>",
            #"(("Route" "@relay1.example,@relay2.example" "user" "example.com"))"#
        ),
        ("=?utf-8?q?J=C3=B6rg?= <j@example.com>", #"(("=?utf-8?q?J=C3=B6rg?=" NIL "j" "example.com"))"#),
        ("a@b.c, , d@e.f,", #"((NIL NIL "a" "b.c")(NIL NIL "d" "e.f"))"#),
        ("undisclosed-recipients:;", #"((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))"#),
        (
            "team: a@b.c, Bee <d@e.f>;",
            #"((NIL NIL "team" NIL)(NIL NIL "a" "b.c")("Bee" NIL "d" "e.f")(NIL NIL NIL NIL))"#
        ),
        ("team: a@b.c", #"((NIL NIL "team" NIL)(NIL NIL "a" "b.c")(NIL NIL NIL NIL))"#),
        ("x@y.z, team: ;, w@v.u", #"((NIL NIL "x" "y.z")(NIL NIL "team" NIL)(NIL NIL NIL NIL)(NIL NIL "w" "v.u"))"#),
        ("localonly", #"((NIL NIL "localonly" "MISSING_DOMAIN"))"#),
        ("Just A Name", #"(("Just A Name" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#),
        ("<>", #"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#),
        ("@example.com", #"((NIL NIL "MISSING_MAILBOX" "example.com"))"#),
        ("user@", #"((NIL NIL "user" "MISSING_DOMAIN"))"#),
        ("Name <user@example.com", #"(("Name" NIL "user" "example.com"))"#),
        (
            "Name <user@example.com, other@example.org",
            #"(("Name" NIL "user" "example.com")(NIL NIL "other" "example.org"))"#
        ),
        (#""John Smith" john@smith.test"#, #"(("John Smith" NIL "john" "smith.test"))"#),
        ("John Smith john@smith.test", #"(("John Smith" NIL "john" "smith.test"))"#),
        (#""unterminated <a@b.c>"#, #"(("unterminated <a@b.c>" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#),
        ("(only a comment)", "NIL"),
        ("", "NIL"),
        (";;,,>>", "NIL"),
        ("Jörg <jörg@bücher.example>", "(({5}\r\nJörg NIL {5}\r\njörg {15}\r\nbücher.example))"),
    ])
    func addressList(_ value: String, _ expected: String) {
        var out: [UInt8] = []
        MessageEnvelope.write(AddressList.parse(Array(value.utf8)), to: &out)
        #expect(MIMEFixture.text(out) == expected)
    }

    @Test func senderAndReplyToDefaultToFrom() {
        let header =
            "From: a@b.c\r\nFrom: Second <d@e.f>\r\nSender:\r\nReply-To: (nobody)\r\n"
            + "Subject: s\r\nSubject: last wins\r\n\r\n"
        let message = ParsedMessage(parsing: Array(header.utf8))
        let from = #"((NIL NIL "a" "b.c")("Second" NIL "d" "e.f"))"#
        #expect(MIMEFixture.text(message.envelope) == "(NIL \"last wins\" \(from) \(from) \(from) NIL NIL NIL NIL NIL)")
    }

    @Test func envelopeStringsNeedingLiterals() {
        let header = Array("Subject: a\rb\r\nDate: x\u{0}y\r\nMessage-ID:\r\nIn-Reply-To:   <a@b>  \r\n\r\n".utf8)
        let message = ParsedMessage(parsing: header)
        #expect(
            MIMEFixture.text(message.envelope)
                == "({5}\r\nx\u{FFFD}y {3}\r\na\rb NIL NIL NIL NIL NIL NIL \"<a@b>\" \"\")")
        let long = String(repeating: "x", count: 2000)
        let longSubject = ParsedMessage(parsing: Array("Subject: \(long)\r\n\r\n".utf8))
        #expect(MIMEFixture.text(longSubject.envelope) == "(NIL {2000}\r\n\(long) NIL NIL NIL NIL NIL NIL NIL NIL)")
    }
}
