import Foundation
import IMAPEngine
import Testing

/// FETCH data items (RFC 9051 §6.4.5, §7.5.2; RFC 3501 §6.4.5; RFC 3516 BINARY) on a realistic multipart message,
/// against the real server, PostgreSQL and PAM.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct FetchTests {
    // Message 1: multipart/mixed with (1) a base64 text/plain part, (2) a multipart/alternative, (3) a
    // message/rfc822 and (4) a base64 attachment whose decoded bytes contain NUL.
    static let header =
        "From: Alice Example <alice@example.com>\r\n" + "To: Tim <tim@example.com>, \"Bob B.\" <bob@example.org>\r\n"
        + "Cc: Carol <carol@example.net>\r\n" + "Subject: Quarterly report\r\n"
        + "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n" + "Message-ID: <report-1@example.com>\r\n"
        + "MIME-Version: 1.0\r\n" + "Content-Type: multipart/mixed; boundary=\"outer\"\r\n" + "\r\n"
    static let part1Text = "Hello Tim,\r\nplease find the report attached. Caf\u{E9} au lait.\r\n"
    static let part1MIME = "Content-Type: text/plain; charset=utf-8\r\n" + "Content-Transfer-Encoding: base64\r\n\r\n"
    static let part1Body =
        "SGVsbG8gVGltLA0KcGxlYXNlIGZpbmQgdGhlIHJlcG9ydCBhdHRhY2hlZC4gQ2Fmw6kgYXUgbGFp\r\n" + "dC4NCg=="
    static let part21Body = "Plain version."
    static let part22Body = "<p>HTML version: caf=C3=A9</p>"
    static let nestedHeader =
        "From: Bob <bob@example.org>\r\n" + "To: Alice <alice@example.com>\r\n" + "Subject: Original figures\r\n"
        + "Date: Mon, 13 Nov 2023 09:00:00 +0000\r\n" + "\r\n"
    static let nestedBody = "The figures are 1, 2, 3.\r\n"
    static let text =
        "This is a multi-part message in MIME format.\r\n" + "\r\n" + "--outer\r\n" + part1MIME + part1Body + "\r\n"
        + "--outer\r\n" + "Content-Type: multipart/alternative; boundary=\"inner\"\r\n" + "\r\n" + "--inner\r\n"
        + "Content-Type: text/plain; charset=us-ascii\r\n" + "\r\n" + part21Body + "\r\n" + "--inner\r\n"
        + "Content-Type: text/html; charset=utf-8\r\n" + "Content-Transfer-Encoding: quoted-printable\r\n" + "\r\n"
        + part22Body + "\r\n" + "--inner--\r\n" + "\r\n" + "--outer\r\n" + "Content-Type: message/rfc822\r\n"
        + "\r\n" + nestedHeader + nestedBody + "\r\n" + "--outer\r\n"
        + "Content-Type: application/octet-stream; name=\"blob.bin\"\r\n"
        + "Content-Disposition: attachment; filename=\"blob.bin\"\r\n" + "Content-Transfer-Encoding: base64\r\n"
        + "\r\n" + "AAECAwQ=\r\n" + "--outer--\r\n"
    static let message = header + text

    /// Message 3: every envelope field, a group address and an encoded-word subject (ENVELOPE keeps it encoded).
    static let reply =
        "Date: Wed, 15 Nov 2023 08:00:00 +0100\r\n" + "From: bob@example.org\r\n"
        + "Sender: Secretary <sec@example.org>\r\n" + "Reply-To: Replies <replies@example.org>\r\n"
        + "To: undisclosed-recipients:;\r\n" + "Bcc: Dave <dave@example.com>\r\n"
        + "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n" + "Message-ID: <m3@example.org>\r\n"
        + "In-Reply-To: <report-1@example.com>\r\n" + "\r\n" + "Thanks.\r\n"

    /// 14-Nov-2023 22:13:20 UTC, given in a -0500 zone.
    static let internalDate = InternalDate(secondsSinceEpoch: 1_700_000_000, zoneMinutes: -300)
    static let internalDateText = "\"14-Nov-2023 17:13:20 -0500\""
    static let envelope =
        "(\"Tue, 14 Nov 2023 22:13:20 +0000\" \"Quarterly report\" "
        + "((\"Alice Example\" NIL \"alice\" \"example.com\")) ((\"Alice Example\" NIL \"alice\" \"example.com\")) "
        + "((\"Alice Example\" NIL \"alice\" \"example.com\")) "
        + "((\"Tim\" NIL \"tim\" \"example.com\")(\"Bob B.\" NIL \"bob\" \"example.org\")) "
        + "((\"Carol\" NIL \"carol\" \"example.net\")) NIL NIL \"<report-1@example.com>\")"

    /// Seeds the report (1, \Flagged), a plain message (2) and the reply (3) into INBOX, logs in and selects it (or
    /// examines it).
    static func open(_ server: TestServer, examine: Bool = false) async throws -> IMAPTestClient {
        try await server.seed(messages: [message], flags: [MessageFlags(system: .flagged)], date: internalDate)
        try await server.seed(messages: [testMessage(subject: "plain"), reply])
        let c = try await server.login()
        try await c.expectOK("s", examine ? "EXAMINE INBOX" : "SELECT INBOX")
        return c
    }

    /// The single untagged response of a FETCH, literals inline; fails unless the command completed with OK.
    static func fetch(_ c: IMAPTestClient, _ tag: String, _ command: String) async throws -> String {
        let lines = try await c.expectOKKeepingLiterals(tag, command)
        guard lines.count == 1, let line = lines.first else {
            throw TestFailure("\(tag) \(command): expected one response, got \(lines)")
        }
        return line
    }

    /// The top-level header comes with the message row up to `FetchColumns.headerLimit`, and is read as a section
    /// beyond it: both ways give the exact bytes, whole and partial, in one FETCH over both kinds of message.
    @Test func headersUnderAndOverTheRowLimit() async throws {
        try await withTestServer { server in
            let padding = (0..<900).map { "X-Padding-\($0): " + String(repeating: "p", count: 70) + "\r\n" }.joined()
            let longHeader = "From: a@example.com\r\n" + padding + "Subject: long one\r\n\r\n"
            #expect(longHeader.utf8.count > FetchColumns.headerLimit)
            let shortHeader = "From: b@example.com\r\nSubject: short one\r\n\r\n"
            try await server.seed(messages: [longHeader + "body\r\n", shortHeader + "body\r\n"])
            let c = try await server.login()
            try await c.expectOK("s", "SELECT INBOX")
            let lines = try await c.expectOKKeepingLiterals(
                "f1", "FETCH 1:2 (BODY.PEEK[HEADER] BODY.PEEK[HEADER]<5.12> RFC822.HEADER)")
            #expect(lines.count == 2)
            for (line, header) in zip(lines, [longHeader, shortHeader]) {
                #expect(ResponseFields.nstring(after: "BODY[HEADER] ", in: line)?.value == .string(header))
                let partial = String(decoding: Array(header.utf8)[5..<17], as: UTF8.self)
                #expect(ResponseFields.nstring(after: "BODY[HEADER]<5> ", in: line)?.value == .string(partial))
                #expect(ResponseFields.nstring(after: "RFC822.HEADER ", in: line)?.value == .string(header))
            }
            // Peeking set no flag.
            #expect(try await c.expectOK("f2", "FETCH 1:2 (FLAGS)").filter { $0.contains("\\Seen") }.isEmpty)
        }
    }

    @Test func bodySectionsOfAMultipartMessage() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let cases: [(section: String, content: String)] = [
                ("[]", Self.message),
                ("[HEADER]", Self.header),
                ("[TEXT]", Self.text),
                ("[1]", Self.part1Body),
                ("[1.MIME]", Self.part1MIME),
                ("[2.1]", Self.part21Body),
                ("[2.2]", Self.part22Body),
                ("[3]", Self.nestedHeader + Self.nestedBody),
                ("[3.HEADER]", Self.nestedHeader),
                ("[3.TEXT]", Self.nestedBody),
                // A message/rfc822 part whose body is not multipart has a part 1: its body (RFC 9051 §6.4.5).
                ("[3.1]", Self.nestedBody),
                ("[4]", "AAECAwQ="),
            ]
            for (i, item) in cases.enumerated() {
                let line = try await Self.fetch(c, "f\(i)", "FETCH 1 (BODY.PEEK\(item.section))")
                let prefix = "* 1 FETCH (BODY\(item.section) "
                #expect(line.hasPrefix(prefix), "\(item.section): \(line)")
                let value = ResponseFields.nstring(after: prefix, in: line)
                #expect(value?.value == .string(item.content), "\(item.section)")
                #expect(value?.rest == ")", "\(item.section): BODY.PEEK must not report FLAGS")
            }
        }
    }

    @Test func headerFieldsAreMatchedCaseInsensitively() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let cases: [(request: String, content: String)] = [
                (
                    "HEADER.FIELDS (subject FROM)",
                    "From: Alice Example <alice@example.com>\r\nSubject: Quarterly report\r\n\r\n"
                ),
                (
                    "HEADER.FIELDS.NOT (subject FROM to CC Date message-ID)",
                    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
                ),
                (
                    "3.HEADER.FIELDS (SUBJECT date)",
                    "Subject: Original figures\r\nDate: Mon, 13 Nov 2023 09:00:00 +0000\r\n\r\n"
                ),
                // The blank line ending the header is always part of header data (RFC 9051 §6.4.5).
                ("HEADER.FIELDS (X-Not-There)", "\r\n"),
            ]
            for (i, item) in cases.enumerated() {
                let line = try await Self.fetch(c, "h\(i)", "FETCH 1 (BODY.PEEK[\(item.request)])")
                // The field names are echoed; their case is the server's choice (they are case-insensitive).
                #expect(line.uppercased().hasPrefix("* 1 FETCH (BODY[\(item.request.uppercased())] "), "\(line)")
                #expect(ResponseFields.nstring(after: ")] ", in: line)?.value == .string(item.content), "\(line)")
            }
        }
    }

    /// HEADER.FIELDS of the names message lists ask for is served, on PostgreSQL, from the header's summary stored
    /// with the content (schema migration 8); other names, and contents without a summary (stored before and not yet
    /// backfilled, or whose summary would be longer than `FetchColumns.headerLimit`), from the header. Every way
    /// gives the header's own fields, exactly: folded lines, repeated fields, partials, a header over the row limit.
    @Test func headerFieldsOfMessageListsComeFromTheSummary() async throws {
        try await withTestServer { server in
            let folded =
                "Received: from relay.example.net\r\n\tby mx.example.com\r\nFrom: Alice <alice@example.com>\r\n"
                + "X-Spam-Score: 1.5\r\nSubject: a subject\r\n folded twice\r\n\tand again\r\nTo: t@example.com\r\n"
                + "to: second@example.com\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n"
            let padding = (0..<900).map { "X-Padding-\($0): " + String(repeating: "p", count: 70) + "\r\n" }.joined()
            let overLimit = "From: b@example.com\r\n" + padding + "Subject: long header\r\n\r\n"
            let recipients = (0..<3000).map { "recipient\($0)@example.com" }.joined(separator: ",\r\n ")
            let longSummary = "Subject: many recipients\r\nTo: " + recipients + "\r\n\r\n"
            #expect(
                overLimit.utf8.count > FetchColumns.headerLimit && longSummary.utf8.count > FetchColumns.headerLimit)
            let headers = [folded, overLimit, longSummary]
            try await server.seed(messages: headers.map { $0 + "body\r\n" })
            let c = try await server.login()
            try await c.expectOK("s", "SELECT INBOX")
            let listNames = ["FROM", "subject", "To", "Date", "Message-ID"]
            let command =
                "FETCH 1:3 (BODY.PEEK[HEADER.FIELDS (\(listNames.joined(separator: " ")))] "
                + "BODY.PEEK[HEADER.FIELDS (to)]<4.20>)"
            func check(_ tag: String, planted: String? = nil) async throws {
                let lines = try await c.expectOKKeepingLiterals(tag, command)
                #expect(lines.count == 3)
                for (i, (line, header)) in zip(lines, headers).enumerated() {
                    let whole = planted.flatMap { i == 0 ? $0 : nil } ?? header
                    let expected = String(
                        decoding: HeaderFilter.filter(Array(whole.utf8), names: listNames, not: false), as: UTF8.self)
                    let fields = ResponseFields.nstring(after: ")] ", in: line)
                    #expect(fields?.value == .string(expected), "\(tag) message \(i + 1)")
                    let to = Array(HeaderFilter.filter(Array(whole.utf8), names: ["to"], not: false))
                    let partial = String(decoding: to[min(4, to.count)..<min(24, to.count)], as: UTF8.self)
                    #expect(
                        ResponseFields.nstring(after: ")]<4> ", in: line)?.value
                            == .string(partial), "\(tag) message \(i + 1): \(line.prefix(300))")
                }
                // A name the summary does not keep is read from the header.
                let spam = try await Self.fetch(c, tag + "x", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-Spam-Score From)])")
                #expect(
                    ResponseFields.nstring(after: ")] ", in: spam)?.value
                        == .string("From: Alice <alice@example.com>\r\nX-Spam-Score: 1.5\r\n\r\n"), "\(spam)")
            }
            try await check("a")
            guard TestEnvironment.storeKind == .postgres else { return }
            let stored = try await server.storage.queryStrings(
                "SELECT coalesce(convert_from(summary_header, 'UTF8'), 'none') FROM contents ORDER BY content_id")
            let foldedSummary =
                "From: Alice <alice@example.com>\r\nSubject: a subject\r\n folded twice\r\n\tand again\r\n"
                + "To: t@example.com\r\nto: second@example.com\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n"
            // Empty: too long to keep (a summary is never empty otherwise: it ends with the blank line).
            let summaries = [foldedSummary, "From: b@example.com\r\nSubject: long header\r\n\r\n", ""]
            #expect(stored == summaries, "\(stored.map { $0.prefix(200) })")
            // The summary is what is read: planted, it is what the list names show (and only they).
            let planted = "From: planted@example.com\r\nTo: planted\r\n\r\n"
            try await server.executeSQL(
                """
                UPDATE contents
                SET summary_header = convert_to(E'From: planted@example.com\\r\\nTo: planted\\r\\n\\r\\n', 'UTF8')
                WHERE content_id = (SELECT min(content_id) FROM contents)
                """)
            try await check("b", planted: planted)
            // Contents stored before migration 8 have none: the header is read, as before.
            try await server.executeSQL("UPDATE contents SET summary_header = NULL")
            try await check("c")
            // `db backfill` stores them, walking the contents two at a time.
            let run = try await mailadmin(server.storage, "db", "backfill", "--batch", "2")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("header summaries are up to date (3 messages backfilled)"), "\(run.stdout)")
            let backfilled = try await server.storage.queryStrings(
                "SELECT coalesce(convert_from(summary_header, 'UTF8'), 'none') FROM contents ORDER BY content_id")
            #expect(backfilled == summaries, "\(backfilled.map { $0.prefix(200) })")
            try await check("d")
            await c.close()
        }
    }

    @Test func partialFetchesCountOctetsFromTheOrigin() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let text = Array(Self.text.utf8)
            let cases: [(request: String, response: String, content: String)] = [
                ("BODY.PEEK[HEADER]<0.10>", "BODY[HEADER]<0> ", "From: Alic"),
                ("BODY.PEEK[TEXT]<10.20>", "BODY[TEXT]<10> ", String(decoding: text[10..<30], as: UTF8.self)),
                // A partial range reaching past the end returns what there is.
                ("BODY.PEEK[2.1]<8.100>", "BODY[2.1]<8> ", "rsion."),
                // An origin past the end returns the empty string (RFC 9051 §6.4.5).
                ("BODY.PEEK[]<99999.10>", "BODY[]<99999> ", ""),
                // BINARY partials count octets of the decoded content (RFC 9051 §7.5.2).
                ("BINARY.PEEK[1]<0.5>", "BINARY[1]<0> ", "Hello"),
            ]
            for (i, item) in cases.enumerated() {
                let line = try await Self.fetch(c, "p\(i)", "FETCH 1 (\(item.request))")
                #expect(line.hasPrefix("* 1 FETCH (\(item.response)"), "\(line)")
                #expect(
                    ResponseFields.nstring(after: item.response, in: line)?.value == .string(item.content), "\(line)")
            }
        }
    }

    @Test func nonexistentPartsAreNil() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            for (i, section) in ["9", "2.3", "3.2", "4.1.2"].enumerated() {
                #expect(
                    try await Self.fetch(c, "n\(i)", "FETCH 1 (BODY.PEEK[\(section)])")
                        == "* 1 FETCH (BODY[\(section)] NIL)")
            }
            #expect(try await Self.fetch(c, "n9", "FETCH 1 (BINARY.PEEK[9])") == "* 1 FETCH (BINARY[9] NIL)")
        }
    }

    /// RFC 9051 §7.5.2 ABNF: `"BINARY.SIZE" section-binary SP number` — NIL is not a number, so a part that does
    /// not exist must be refused rather than sized as NIL.
    @Test func binarySizeOfANonexistentPartIsNotNil() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let lines = try await c.command("b1", "FETCH 1 (BINARY.SIZE[9])")
            #expect(!lines.contains("* 1 FETCH (BINARY.SIZE[9] NIL)"), "\(lines)")
            for line in lines.dropLast() {
                #expect(
                    line.range(of: #"^\* 1 FETCH \(BINARY\.SIZE\[9\] [0-9]+\)$"#, options: .regularExpression) != nil)
            }
            #expect(lines.last?.hasPrefix("b1 NO") == true || lines.last?.hasPrefix("b1 OK") == true)
        }
    }

    @Test func rfc822ItemsAndWhichOfThemSetSeen() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // RFC822.SIZE is the exact octet count of the message.
            #expect(
                try await Self.fetch(c, "r1", "FETCH 1 RFC822.SIZE")
                    == "* 1 FETCH (RFC822.SIZE \(Self.message.utf8.count))")
            // RFC822.HEADER is BODY.PEEK[HEADER]: no \Seen, no FLAGS (RFC 3501 §6.4.5).
            let header = try await Self.fetch(c, "r2", "FETCH 1 RFC822.HEADER")
            #expect(header.hasPrefix("* 1 FETCH (RFC822.HEADER "))
            #expect(ResponseFields.nstring(after: "RFC822.HEADER ", in: header)?.value == .string(Self.header))
            #expect(ResponseFields.nstring(after: "RFC822.HEADER ", in: header)?.rest == ")")
            #expect(try await Self.fetch(c, "r3", "FETCH 1 FLAGS") == "* 1 FETCH (FLAGS (\\Flagged \\Recent))")

            // RFC822.TEXT is BODY[TEXT]: sets \Seen, and the new flags come in the same FETCH response.
            let text = try await c.expectOKKeepingLiterals("r4", "FETCH 1 RFC822.TEXT")
            let textLine = ResponseFields.first(text, startingWith: "* 1 FETCH (RFC822.TEXT ") ?? ""
            #expect(ResponseFields.nstring(after: "RFC822.TEXT ", in: textLine)?.value == .string(Self.text))
            #expect(
                ResponseFields.flags(in: ResponseFields.nstring(after: "RFC822.TEXT ", in: textLine)?.rest ?? "")
                    == ["\\Flagged", "\\Seen", "\\Recent"], "\(text)")

            // RFC822 is BODY[]: the whole message, and \Seen again.
            try await c.expectOK("r5", "STORE 1 -FLAGS.SILENT (\\Seen)")
            let whole = try await c.expectOKKeepingLiterals("r6", "FETCH 1 RFC822")
            let wholeLine = ResponseFields.first(whole, startingWith: "* 1 FETCH (RFC822 ") ?? ""
            #expect(ResponseFields.nstring(after: "RFC822 ", in: wholeLine)?.value == .string(Self.message))
            #expect(
                ResponseFields.flags(in: ResponseFields.nstring(after: "RFC822 ", in: wholeLine)?.rest ?? "")
                    == ["\\Flagged", "\\Seen", "\\Recent"], "\(whole)")
        }
    }

    @Test func envelopeAndInternalDate() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            #expect(
                try await Self.fetch(c, "e1", "FETCH 1 INTERNALDATE")
                    == "* 1 FETCH (INTERNALDATE \(Self.internalDateText))")
            #expect(try await Self.fetch(c, "e2", "FETCH 1 ENVELOPE") == "* 1 FETCH (ENVELOPE \(Self.envelope))")
            // Sender and Reply-To of their own, a group (RFC 9051 §7.5.2: a NIL host name starts a group, a NIL
            // mailbox name ends it), a From without a display name, and the subject as sent (not decoded).
            #expect(
                try await Self.fetch(c, "e3", "FETCH 3 ENVELOPE")
                    == "* 3 FETCH (ENVELOPE (\"Wed, 15 Nov 2023 08:00:00 +0100\" \"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\" "
                    + "((NIL NIL \"bob\" \"example.org\")) ((\"Secretary\" NIL \"sec\" \"example.org\")) "
                    + "((\"Replies\" NIL \"replies\" \"example.org\")) "
                    + "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL "
                    + "((\"Dave\" NIL \"dave\" \"example.com\")) \"<report-1@example.com>\" \"<m3@example.org>\"))")
        }
    }

    @Test func bodyStructureShape() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let structure = try await Self.fetch(c, "b1", "FETCH 1 BODYSTRUCTURE")
            #expect(
                structure.hasPrefix(
                    "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 86 "))
            for piece in [
                // The alternative: two parts, subtype, then its extension data with the boundary.
                "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 ",
                "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 30 ",
                " \"alternative\" (\"boundary\" \"inner\")",
                // message/rfc822: size, then the nested envelope and body structure, then the line count (6).
                "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 154 (\"Mon, 13 Nov 2023 09:00:00 +0000\" "
                    + "\"Original figures\" ((\"Bob\" NIL \"bob\" \"example.org\")) ((\"Bob\" NIL \"bob\" \"example.org\")) "
                    + "((\"Bob\" NIL \"bob\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.com\")) NIL NIL NIL NIL) "
                    + "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 26 1",
                ") 6",
                "(\"application\" \"octet-stream\" (\"name\" \"blob.bin\") NIL NIL \"base64\" 8 NIL "
                    + "(\"attachment\" (\"filename\" \"blob.bin\"))",
                " \"mixed\" (\"boundary\" \"outer\")",
            ] {
                #expect(structure.contains(piece), "missing \(piece)")
            }
            #expect(structure.hasSuffix("))"))

            // BODY is the same without extension data: no boundary, no disposition.
            let body = try await Self.fetch(c, "b2", "FETCH 1 BODY")
            #expect(
                body.hasPrefix("* 1 FETCH (BODY ((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 86 "))
            #expect(body.hasSuffix(" \"mixed\"))"))
            #expect(!body.contains("boundary") && !body.contains("attachment"))

            // A message without Content-Type is text/plain; charset=us-ascii (RFC 2045 §5.2), 8 octets, 1 line.
            let plain = try await Self.fetch(c, "b3", "FETCH 2 BODYSTRUCTURE")
            #expect(
                plain.hasPrefix(
                    "* 2 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 1"))
        }
    }

    @Test func binaryDecodesTheTransferEncoding() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // base64 text: decoded; without NUL it SHOULD be a plain string, not literal8 (RFC 9051 §7.5.2).
            let text = try await Self.fetch(c, "b1", "FETCH 1 (BINARY.PEEK[1])")
            #expect(text.hasPrefix("* 1 FETCH (BINARY[1] "))
            #expect(ResponseFields.nstring(after: "BINARY[1] ", in: text)?.value == .string(Self.part1Text))
            #expect(
                try await Self.fetch(c, "b2", "FETCH 1 (BINARY.SIZE[1])")
                    == "* 1 FETCH (BINARY.SIZE[1] \(Self.part1Text.utf8.count))")
            // quoted-printable: decoded to the UTF-8 octets.
            let html = try await Self.fetch(c, "b3", "FETCH 1 (BINARY.PEEK[2.2])")
            #expect(
                ResponseFields.nstring(after: "BINARY[2.2] ", in: html)?.value
                    == .string("<p>HTML version: caf\u{E9}</p>"))
            #expect(
                try await Self.fetch(c, "b4", "FETCH 1 (BINARY.SIZE[2.2])")
                    == "* 1 FETCH (BINARY.SIZE[2.2] \("<p>HTML version: caf\u{E9}</p>".utf8.count))")
            // Decoded data with NUL can only travel as literal8: ~{5} (RFC 9051 §4.3, §7.5.2).
            let blob = try await Self.fetch(c, "b5", "FETCH 1 (BINARY.PEEK[4])")
            #expect(blob.hasPrefix("* 1 FETCH (BINARY[4] ~{5}\r\n"), "\(blob.debugDescription)")
            #expect(
                ResponseFields.nstring(after: "BINARY[4] ", in: blob)?.value == .literal8("\u{0}\u{1}\u{2}\u{3}\u{4}"))
            #expect(try await Self.fetch(c, "b6", "FETCH 1 (BINARY.SIZE[4])") == "* 1 FETCH (BINARY.SIZE[4] 5)")
            // Nothing so far set \Seen.
            #expect(try await Self.fetch(c, "b7", "FETCH 1 FLAGS") == "* 1 FETCH (FLAGS (\\Flagged \\Recent))")
        }
    }

    @Test func binaryOfAnUnknownTransferEncodingIsUnknownCTE() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [
                "Subject: uu\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
                    + "begin 644 x\r\n#86)C\r\n`\r\nend\r\n"
            ])
            let c = try await server.login()
            try await c.expectOK("s", "SELECT INBOX")
            // RFC 9051 §7.5.2: a server that cannot decode the part MUST fail with NO [UNKNOWN-CTE].
            #expect(
                try await c.command("u1", "FETCH 1 (BINARY.PEEK[1])").last?.hasPrefix("u1 NO [UNKNOWN-CTE]") == true)
            #expect(
                try await c.command("u2", "FETCH 1 (BINARY.SIZE[1])").last?.hasPrefix("u2 NO [UNKNOWN-CTE]") == true)
            // BODY[1] still returns the encoded octets.
            #expect(try await c.command("u3", "FETCH 1 (BODY.PEEK[1])").last?.hasPrefix("u3 OK") == true)
        }
    }

    @Test func flagsAndMacros() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            #expect(try await Self.fetch(c, "m1", "FETCH 1 FLAGS") == "* 1 FETCH (FLAGS (\\Flagged \\Recent))")
            let size = "RFC822.SIZE \(Self.message.utf8.count)"
            let date = "INTERNALDATE \(Self.internalDateText)"
            // RFC 9051 §6.4.5: FAST = (FLAGS INTERNALDATE RFC822.SIZE), ALL = FAST + ENVELOPE, FULL = ALL + BODY.
            let fast = try await Self.fetch(c, "m2", "FETCH 1 FAST")
            #expect(ResponseFields.flags(in: fast) == ["\\Flagged", "\\Recent"])
            #expect(fast.contains(date) && fast.contains(size))
            #expect(!fast.contains("ENVELOPE") && !fast.contains("BODY"))
            let all = try await Self.fetch(c, "m3", "FETCH 1 ALL")
            #expect(ResponseFields.flags(in: all) == ["\\Flagged", "\\Recent"])
            #expect(all.contains(date) && all.contains(size) && all.contains("ENVELOPE \(Self.envelope)"))
            #expect(!all.contains("BODY"))
            let full = try await Self.fetch(c, "m4", "FETCH 1 FULL")
            #expect(ResponseFields.flags(in: full) == ["\\Flagged", "\\Recent"])
            #expect(full.contains(date) && full.contains(size) && full.contains("ENVELOPE \(Self.envelope)"))
            #expect(full.contains(" BODY ((\"text\" \"plain\"") && !full.contains("BODYSTRUCTURE"))
            // None of the macros sets \Seen.
            #expect(try await Self.fetch(c, "m5", "FETCH 1 FLAGS") == "* 1 FETCH (FLAGS (\\Flagged \\Recent))")
        }
    }

    @Test func uidFetchReportsUIDsAndIgnoresMissingOnes() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // RFC 9051 §6.4.9: UID FETCH responses always include UID, requested or not.
            let lines = try await c.expectOK("u1", "UID FETCH 1:2 (FLAGS)")
            #expect(lines.count == 2)
            #expect(lines.first?.hasPrefix("* 1 FETCH (") == true && lines.first?.contains("UID 1") == true)
            #expect(lines.last?.hasPrefix("* 2 FETCH (") == true && lines.last?.contains("UID 2") == true)
            #expect(ResponseFields.flags(in: lines.first ?? "") == ["\\Flagged", "\\Recent"])
            // UIDs that do not exist are no error: no responses, tagged OK.
            #expect(try await c.expectOK("u2", "UID FETCH 50:60 (FLAGS)") == [])
            #expect(try await c.expectOK("u3", "UID FETCH 7,9 (UID)") == [])
            // "50:*" always includes the highest UID, even when 50 is above it (RFC 9051 §6.4.9).
            #expect(try await c.expectOK("u4", "UID FETCH 50:* (UID)") == ["* 3 FETCH (UID 3)"])
        }
    }

    @Test func fetchBeyondExistsIsBad() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // RFC 9051 §9 (seq-number): a sequence number above the number of messages is a BAD command.
            #expect(try await c.command("x1", "FETCH 4 (FLAGS)").last?.hasPrefix("x1 BAD") == true)
            let range = try await c.command("x2", "FETCH 2:9 (FLAGS)")
            #expect(range.count == 1 && range.last?.hasPrefix("x2 BAD") == true, "\(range)")
            #expect(try await c.expectOK("x3", "FETCH * (UID)") == ["* 3 FETCH (UID 3)"])
        }
    }

    @Test func nonPeekBodySetsSeenAndReportsFlagsAtOnce() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // BODY.PEEK leaves \Seen alone.
            let peek = try await Self.fetch(c, "s1", "FETCH 2 (BODY.PEEK[])")
            #expect(ResponseFields.nstring(after: "BODY[] ", in: peek)?.rest == ")")
            #expect(try await Self.fetch(c, "s2", "FETCH 2 (FLAGS)") == "* 2 FETCH (FLAGS (\\Recent))")
            // BODY[] sets it, and the changed flags come in the same FETCH response (RFC 9051 §6.4.5).
            let body = try await c.expectOKKeepingLiterals("s3", "FETCH 2 (BODY[])")
            let bodyLine = ResponseFields.first(body, startingWith: "* 2 FETCH (BODY[] ") ?? ""
            let rest = ResponseFields.nstring(after: "BODY[] ", in: bodyLine)?.rest ?? ""
            #expect(ResponseFields.flags(in: rest) == ["\\Seen", "\\Recent"], "\(body)")
            // A partial BODY[…]<…> and BINARY[…] set it too.
            let partial = try await c.expectOKKeepingLiterals("s4", "FETCH 1 (BODY[HEADER]<0.4>)")
            let partialLine = ResponseFields.first(partial, startingWith: "* 1 FETCH (BODY[HEADER]<0> ") ?? ""
            #expect(ResponseFields.flags(in: partialLine) == ["\\Flagged", "\\Seen", "\\Recent"], "\(partial)")
            let binary = try await c.expectOKKeepingLiterals("s5", "FETCH 3 (BINARY[1])")
            let binaryLine = ResponseFields.first(binary, startingWith: "* 3 FETCH (BINARY[1] ") ?? ""
            #expect(ResponseFields.flags(in: binaryLine) == ["\\Seen", "\\Recent"], "\(binary)")
            let flags = try await c.expectOK("s6", "FETCH 1:3 (FLAGS)").filter { !$0.contains("UID") }
            #expect(
                flags == [
                    "* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))", "* 2 FETCH (FLAGS (\\Seen \\Recent))",
                    "* 3 FETCH (FLAGS (\\Seen \\Recent))",
                ])
        }
    }

    @Test func examineNeverSetsSeen() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server, examine: true)
            for (i, item) in ["BODY[]", "BODY[TEXT]", "RFC822", "RFC822.TEXT", "BINARY[1]", "BODY[1]<0.3>"].enumerated()
            {
                let lines = try await c.expectOKKeepingLiterals("x\(i)", "FETCH 1:3 (\(item))")
                #expect(lines.count == 3, "\(item): \(lines)")
                let seen = lines.filter { $0.contains("\\Seen") }
                #expect(seen.isEmpty, "\(item): \(lines)")
            }
            // Whether this session shows \Recent is its business; \Seen must be absent everywhere.
            let flags = try await c.expectOK("y1", "FETCH 1:3 (FLAGS)")
            let permanent = flags.map { ResponseFields.flags(in: $0)?.subtracting(["\\Recent"]) }
            #expect(permanent == [["\\Flagged"], [], []])
            let other = try await server.login()
            #expect(try await other.expectOK("z1", "STATUS INBOX (UNSEEN)") == ["* STATUS INBOX (UNSEEN 3)"])
            // EXAMINE MUST NOT cause messages to lose \Recent (RFC 3501 §6.3.2): a later SELECT still gets them.
            #expect(try await other.expectOK("z2", "SELECT INBOX").contains("* 3 RECENT"))
        }
    }
}
