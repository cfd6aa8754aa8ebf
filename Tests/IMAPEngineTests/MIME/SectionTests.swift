import Testing

@testable import IMAPEngine

@Suite struct MIMESectionTests {
    /// BODY[section] ranges (RFC 9051 §6.4.5), HEADER.FIELDS filtering, BINARY and BINARY.SIZE. Offsets were counted by
    /// hand on the CRLF-normalised fixtures.
    struct SectionCase: Sendable, CustomTestStringConvertible {
        var file: String
        var part: [Int]
        var text: SectionText?
        var range: Range<Int>?

        init(_ file: String, _ part: [Int], _ text: SectionText? = nil, _ range: Range<Int>?) {
            self.file = file
            self.part = part
            self.text = text
            self.range = range
        }

        var testDescription: String {
            let number = part.map(String.init).joined(separator: ".")
            let suffix = text.map { "\($0)" } ?? ""
            return "\(file) BODY[\(number)\(number.isEmpty || suffix.isEmpty ? "" : ".")\(suffix)]"
        }

        static let all: [SectionCase] = [
            SectionCase("simple.eml", [], nil, 0..<626),
            SectionCase("simple.eml", [], .header, 0..<574),
            SectionCase("simple.eml", [], .headerFields(["From"]), 0..<574),
            SectionCase("simple.eml", [], .text, 574..<626),
            SectionCase("simple.eml", [], .mime, nil),
            SectionCase("simple.eml", [1], nil, 574..<626),
            SectionCase("simple.eml", [1], .mime, 0..<574),
            SectionCase("simple.eml", [1], .header, nil),
            SectionCase("simple.eml", [1], .text, nil),
            SectionCase("simple.eml", [2], nil, nil),
            SectionCase("simple.eml", [0], nil, nil),
            SectionCase("simple.eml", [1, 1], nil, nil),
            SectionCase("alternative.eml", [], .text, 209..<619),
            SectionCase("alternative.eml", [1], nil, 369..<400),
            SectionCase("alternative.eml", [1], .mime, 276..<369),
            SectionCase("alternative.eml", [2], nil, 508..<579),
            SectionCase("alternative.eml", [2], .mime, 421..<508),
            SectionCase("alternative.eml", [3], nil, nil),
            SectionCase("alternative.eml", [1, 1], nil, nil),
            SectionCase("mixed-related.eml", [1], nil, 325..<727),
            SectionCase("mixed-related.eml", [1], .mime, 248..<325),
            SectionCase("mixed-related.eml", [1, 1], nil, 385..<429),
            SectionCase("mixed-related.eml", [1, 2], nil, 610..<708),
            SectionCase("mixed-related.eml", [1, 2], .mime, 446..<610),
            SectionCase("mixed-related.eml", [1, 3], nil, nil),
            SectionCase("mixed-related.eml", [2], nil, 1047..<1067),
            SectionCase("mixed-related.eml", [2], .mime, 742..<1047),
            SectionCase("mixed-related.eml", [2], .header, nil),
            SectionCase("mixed-related.eml", [2], .text, nil),
            SectionCase("mixed-related.eml", [2, 1], nil, nil),
            SectionCase("mixed-related.eml", [3], nil, nil),
            SectionCase("rfc822-attachment.eml", [1], nil, 227..<253),
            SectionCase("rfc822-attachment.eml", [1], .header, nil),
            SectionCase("rfc822-attachment.eml", [2], nil, 334..<712),
            SectionCase("rfc822-attachment.eml", [2], .mime, 262..<334),
            SectionCase("rfc822-attachment.eml", [2], .header, 334..<559),
            SectionCase("rfc822-attachment.eml", [2], .headerFieldsNot(["To"]), 334..<559),
            SectionCase("rfc822-attachment.eml", [2], .text, 559..<712),
            SectionCase("rfc822-attachment.eml", [2, 1], nil, 611..<625),
            SectionCase("rfc822-attachment.eml", [2, 2], nil, 678..<699),
            SectionCase("rfc822-attachment.eml", [2, 2], .mime, 636..<678),
            SectionCase("rfc822-attachment.eml", [2, 3], nil, nil),
            SectionCase("rfc822-attachment.eml", [2, 1], .header, nil),
            SectionCase("digest.eml", [1], nil, 96..<138),
            SectionCase("digest.eml", [1], .mime, 94..<96),
            SectionCase("digest.eml", [1], .header, 96..<135),
            SectionCase("digest.eml", [1], .text, 135..<138),
            SectionCase("digest.eml", [1, 1], nil, 135..<138),
            SectionCase("digest.eml", [1, 1], .mime, 96..<135),
            SectionCase("digest.eml", [1, 2], nil, nil),
            SectionCase("digest.eml", [2], nil, 173..<191),
            SectionCase("broken-boundary.eml", [1], nil, 185..<285),
            SectionCase("broken-boundary.eml", [1], .mime, 128..<185),
            SectionCase("broken-boundary.eml", [1, 1], nil, 222..<231),
            SectionCase("broken-boundary.eml", [1, 2], nil, 269..<285),
            SectionCase("broken-boundary.eml", [2], nil, 339..<371),
            SectionCase("broken-boundary.eml", [2], .mime, 296..<339),
            SectionCase("bare-lf.eml", [1], nil, 197..<215),
            SectionCase("bare-lf.eml", [2], nil, 314..<327),
            SectionCase("binary-nul.eml", [1], nil, 209..<220),
            SectionCase("binary-nul.eml", [2], nil, 292..<312),
            SectionCase("base64-qp.eml", [1], nil, 197..<311),
            SectionCase("base64-qp.eml", [2], .mime, 320..<397),
            SectionCase("rfc2231.eml", [2], nil, 515..<523),
            SectionCase("rfc2231.eml", [3], nil, 757..<758),
            SectionCase("rfc2231.eml", [4], nil, 962..<970),
            SectionCase("rfc2231.eml", [4], .mime, 770..<962),
            SectionCase("rfc2231.eml", [5], nil, nil),
        ]
    }

    @Test(arguments: SectionCase.all)
    func sectionRange(_ section: SectionCase) {
        let message = MIMEFixture.parsed(section.file)
        #expect(message.root.range(part: section.part, text: section.text) == section.range)
    }

    @Test func sectionContents() {
        let alternative = MIMEFixture.parsed("alternative.eml")
        #expect(alternative.sectionString([1]) == "Caf=E9 au lait for =\r\neveryone.")
        #expect(
            alternative.sectionString([1], .mime)
                == "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        )

        let forwarded = MIMEFixture.parsed("rfc822-attachment.eml")
        let encapsulatedHeader = forwarded.sectionString([2], .header) ?? ""
        #expect(encapsulatedHeader.hasPrefix("From: Eve <eve@example.com>\r\n"))
        #expect(encapsulatedHeader.hasSuffix("boundary=\"inner\"\r\n\r\n"))
        #expect(forwarded.sectionString([2, 1]) == "Plan: ship it.")
        #expect(forwarded.sectionString([2, 2]) == "<b>Plan:</b> ship it.")
        #expect(forwarded.sectionString([2], .text)?.hasSuffix("--inner--\r\n") == true)

        let simple = MIMEFixture.parsed("simple.eml")
        #expect(simple.sectionString([1]) == "Hi Bob,\r\n\r\nShall we have lunch on Friday?\r\n\r\nAlice\r\n")
        #expect(simple.sectionString([], .header)?.hasSuffix("7bit\r\n\r\n") == true)
    }

    @Test func treeShape() {
        let forwarded = MIMEFixture.parsed("rfc822-attachment.eml")
        let attachment = forwarded.partNode(1)
        let encapsulated = forwarded.partNode(1, 0)
        #expect(attachment?.type == "message" && attachment?.subtype == "rfc822")
        #expect(encapsulated?.headerStart == attachment?.bodyStart)
        #expect(encapsulated?.bodyEnd == attachment?.bodyEnd)
        #expect(encapsulated?.type == "multipart" && encapsulated?.subtype == "alternative")
        #expect(encapsulated?.children.count == 2)
        #expect(attachment?.decodedSize == nil)

        let digest = MIMEFixture.parsed("digest.eml")
        #expect(digest.partNode(0)?.type == "message" && digest.partNode(0)?.subtype == "rfc822")
        #expect(digest.partNode(0, 0)?.type == "text")
        #expect(digest.partNode(1)?.type == "text")

        let encodings = MIMEFixture.parsed("base64-qp.eml")
        #expect(encodings.partNode(0)?.encoding == "quoted-printable")
        #expect(encodings.partNode(1)?.encoding == "base64")
        #expect(encodings.root.encoding == "7bit")
    }

    @Test func headerFieldsFilter() {
        let simple = MIMEFixture.parsed("simple.eml")
        let header = simple.sectionBytes([], .header) ?? []
        #expect(
            MIMEFixture.text(HeaderFilter.filter(header, names: ["From", "SUBJECT"], not: false))
                == "From: Alice Example <alice@example.org>\r\nSubject: Lunch on\r\n Friday?\r\n\r\n")
        #expect(
            MIMEFixture.text(HeaderFilter.filter(header, names: ["received"], not: false))
                == "Received: from mail.example.org (mail.example.org [192.0.2.1])\r\n"
                + "\tby mx.example.net with ESMTP id 4F2A; Mon, 12 Feb 2024 10:00:02 +0000\r\n\r\n"
        )
        #expect(
            MIMEFixture.text(
                HeaderFilter.filter(
                    header,
                    names: [
                        "Return-Path", "Received", "to", "cc", "Message-ID", "In-Reply-To", "MIME-Version",
                        "Content-Type",
                        "Content-Transfer-Encoding",
                    ], not: true))
                == "Date: Mon, 12 Feb 2024 10:00:00 +0100\r\nFrom: Alice Example <alice@example.org>\r\n"
                + "Subject: Lunch on\r\n Friday?\r\n\r\n"
        )
        #expect(MIMEFixture.text(HeaderFilter.filter(header, names: ["X-Absent"], not: false)) == "\r\n")
        #expect(MIMEFixture.text(HeaderFilter.filter(header, names: [], not: true)) == MIMEFixture.text(header))

        let forwarded = MIMEFixture.parsed("rfc822-attachment.eml")
        let inner = forwarded.sectionBytes([2], .headerFields(["subject"])) ?? []
        #expect(
            MIMEFixture.text(HeaderFilter.filter(inner, names: ["subject"], not: false)) == "Subject: Planning\r\n\r\n")

        // A header that runs to the end, a junk line without a colon, bare LFs, a field with white space before ":".
        #expect(
            MIMEFixture.text(HeaderFilter.filter(Array("Subject: x".utf8), names: ["subject"], not: false))
                == "Subject: x\r\n\r\n")
        #expect(
            MIMEFixture.text(
                HeaderFilter.filter(Array("Junk line\r\nSubject: a\r\n\r\n".utf8), names: ["subject"], not: true))
                == "Junk line\r\n\r\n")
        #expect(
            MIMEFixture.text(HeaderFilter.filter(Array("A: 1\nB: 2\n b\n\nbody".utf8), names: ["b"], not: false))
                == "B: 2\n b\n\r\n")
        #expect(
            MIMEFixture.text(HeaderFilter.filter(Array("Subject : y\r\n\r\n".utf8), names: ["subject"], not: false))
                == "Subject : y\r\n\r\n")
        #expect(MIMEFixture.text(HeaderFilter.filter([], names: ["subject"], not: false)) == "\r\n")
    }

    /// The names are matched by length first (a bit per length under 64), then byte by byte without case: a name of
    /// the same length that differs, names of 64 bytes and more, repeated and padded names, non-ASCII bytes.
    @Test func headerFieldNamesMatchWithoutCaseAtAnyLength() {
        let long = String(repeating: "X-Long", count: 12)  // 72 bytes
        let header = Array(
            ("Subject: s\r\nSubjecT: t\r\nSubjekt: u\r\n\(long): l\r\n\(long.uppercased())Z: m\r\nX-\u{E9}: e\r\n"
                + "Date: d\r\n\r\n").utf8)
        #expect(
            MIMEFixture.text(HeaderFilter.filter(header, names: ["SUBJECT", " subject ", "subject"], not: false))
                == "Subject: s\r\nSubjecT: t\r\n\r\n")
        #expect(
            MIMEFixture.text(HeaderFilter.filter(header, names: [long.lowercased()], not: false))
                == "\(long): l\r\n\r\n")
        #expect(MIMEFixture.text(HeaderFilter.filter(header, names: ["x-\u{E9}"], not: false)) == "X-\u{E9}: e\r\n\r\n")
        #expect(MIMEFixture.text(HeaderFilter.filter(header, names: ["X-\u{C9}"], not: false)) == "\r\n")
        #expect(
            MIMEFixture.text(HeaderFilter.filter(header, names: ["subject", long, "x-\u{E9}"], not: true))
                == "Subjekt: u\r\n\(long.uppercased())Z: m\r\nDate: d\r\n\r\n")
    }

    /// Filtering a header's summary gives what filtering the header gives, for names the summary covers: over
    /// hand-made headers with the shapes that trip filters (folded fields, lines without a colon, LF-only lines, a
    /// first line that starts with a space, no blank line, no last line break), and 2,000 generated ones.
    @Test func aHeaderSummaryFiltersAsTheHeaderDoes() {
        let fixed = [
            "From: a@example.com\r\nReceived: from x\r\n\tby y\r\nSubject: s\r\n  folded\r\nX-Spam: 1\r\n\r\n",
            "Subject: no blank line\r\nTo: t@example.com\r\n",
            "To: t@example.com\r\nSubject: no last break",
            " subject: starts with a space\r\nfrom: f\r\n\r\n",
            "Subject\r\nsubject: the line before has no colon\r\nX-Other\r\n\r\n",
            "From: lf only\nSubject: s\n\nbody\n",
            "Subject : padded name\r\nDATE: d\r\nMessage-ID: <m>\r\nmessage-id: <m2>\r\n\r\n",
            "X-A: 1\r\n\r\n",
            "\r\n",
            "",
        ].map { Array($0.utf8) }
        var random = MIMEFuzz.Generator(state: 7)  // seeded: every run tests the same headers
        let others = [
            "Received", "X-Spam-Score", "DKIM-Signature", "Subjectx", "X-Long-Name-Of-A-Field", "Return-Path",
        ]
        func generatedHeader() -> [UInt8] {
            var text = ""
            for _ in 0..<Int(random.next() % 12) {
                let endings = ["\r\n", "\n"]
                let ending = endings[Int(random.next() % 2)]
                switch random.next() % 6 {
                case 0: text += [" ", "\t"][Int(random.next() % 2)] + "continued" + ending
                case 1: text += others[Int(random.next() % UInt64(others.count))] + ": v" + ending
                case 2: text += "no colon here" + ending
                default:
                    let name = HeaderFilter.summaryNames[Int(random.next() % UInt64(HeaderFilter.summaryNames.count))]
                    text += (random.next() % 2 == 0 ? name.uppercased() : name) + ": v\u{0}\u{E9}" + ending
                }
            }
            switch random.next() % 3 {
            case 0: text += "\r\nbody"
            case 1: text += "Subject: unterminated"
            default: break
            }
            return Array(text.utf8)
        }
        let headers = fixed + (0..<2000).map { _ in generatedHeader() }
        for header in headers {
            let summary = HeaderFilter.summary(header)
            #expect(summary == HeaderFilter.filter(header, names: HeaderFilter.summaryNames, not: false))
            var lists = [
                ["From", "Subject"], ["subject"], [" DATE ", "Message-ID", "message-id"], HeaderFilter.summaryNames,
            ]
            lists.append(HeaderFilter.summaryNames.filter { _ in random.next() % 3 == 0 }.map { $0.uppercased() })
            for names in lists where !names.isEmpty {
                #expect(HeaderFilter.coveredBySummary(names))
                #expect(
                    HeaderFilter.filter(summary, names: names, not: false)
                        == HeaderFilter.filter(header, names: names, not: false),
                    "\(names) of \(MIMEFixture.text(header).debugDescription)")
            }
        }
    }

    @Test func aFetchUsesTheSummaryOnlyWhenItCoversEveryHeaderItem() {
        func fields(_ names: [String], part: [Int] = []) -> FetchAttribute {
            .bodySection(Section(part: part, text: .headerFields(names)), partial: nil, peek: true)
        }
        #expect(!HeaderFilter.coveredBySummary(["From", "X-Spam-Score"]))
        #expect(!HeaderFilter.coveredBySummary(["Subject:"]))
        #expect(HeaderFilter.coveredBySummary([" from", "SUBJECT ", "x-priority"]))
        // neomutt's header download (the list in Debian's neomutt binary) and imaptest's fields (its client-state.c).
        let neomutt =
            "DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO "
            + "REPLY-TO LINES LIST-POST LIST-SUBSCRIBE LIST-UNSUBSCRIBE X-LABEL X-ORIGINAL-TO"
        #expect(HeaderFilter.coveredBySummary(neomutt.split(separator: " ").map(String.init)))
        #expect(
            HeaderFilter.coveredBySummary(["From", "To", "Cc", "Subject", "References", "In-Reply-To", "Message-ID"]))
        let covered = fields(["From", "Subject", "DATE"])
        #expect(FetchPlan(items: [.uid, .flags, covered]).columns.isSuperset(of: [.header, .headerSummary]))
        #expect(FetchPlan(items: [covered, fields(["to"], part: [2])]).columns.contains(.headerSummary))
        for other: FetchAttribute in [
            fields(["From", "Received"]),
            .bodySection(Section(text: .header), partial: nil, peek: true),
            .bodySection(Section(text: .headerFieldsNot(["From"])), partial: nil, peek: true),
        ] {
            let columns = FetchPlan(items: [covered, other]).columns
            #expect(columns.contains(.header) && !columns.contains(.headerSummary), "\(other)")
        }
        #expect(!FetchPlan(items: [.envelope, fields(["From"], part: [1])]).columns.contains(.headerSummary))
    }

    @Test func binaryAndDecodedSize() {
        let alternative = MIMEFixture.parsed("alternative.eml")
        #expect(alternative.binaryBytes([1]) == Array("Caf".utf8) + [0xE9] + Array(" au lait for everyone.".utf8))
        #expect(alternative.partNode(0)?.decodedSize == 26)
        #expect(
            alternative.binaryBytes([2])
                == Array("<html><body><p>Café <b>au lait</b> for everyone.</p></body></html>".utf8))
        #expect(alternative.partNode(1)?.decodedSize == 67)
        #expect(alternative.root.decodedSize == nil)
        #expect(alternative.binaryBytes([]) == nil)
        #expect(alternative.binaryBytes([3]) == nil)

        let related = MIMEFixture.parsed("mixed-related.eml")
        let png = related.binaryBytes([1, 2]) ?? []
        #expect(png.count == 70)
        #expect(Array(png.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        #expect(related.partNode(0, 1)?.decodedSize == 70)
        #expect(related.binaryBytes([2]) == Array("%PDF-1.4\n%äü".utf8))
        #expect(related.partNode(1)?.decodedSize == 14)
        #expect(related.binaryBytes([1]) == nil)
        #expect(related.root.binaryPart([1]) == nil)

        let forwarded = MIMEFixture.parsed("rfc822-attachment.eml")
        // A message/rfc822 part is served whole (as Dovecot does); a multipart is not.
        #expect(forwarded.root.binaryPart([2])?.subtype == "rfc822")
        #expect(forwarded.root.binaryPart([2, 1])?.subtype == "plain")
        #expect(forwarded.binaryBytes([2, 1]) == Array("Plan: ship it.".utf8))

        let parameters = MIMEFixture.parsed("rfc2231.eml")
        #expect(parameters.binaryBytes([2]) == Array("Hallo".utf8))
        #expect(parameters.binaryBytes([4]) == Array("%PDF-".utf8))
        #expect(parameters.partNode(3)?.decodedSize == 5)

        let binary = MIMEFixture.parsed("binary-nul.eml")
        #expect(binary.binaryBytes([1]) == [0x41, 0x42, 0x00, 0x43, 0x44, 0x00, 0xFF, 0x0D, 0x0A, 0x45, 0x46])
        #expect(binary.partNode(0)?.decodedSize == 11)
        #expect(binary.binaryBytes([2]) == Array("Hello, world!".utf8))
        #expect(binary.partNode(1)?.decodedSize == 13)

        let encodings = MIMEFixture.parsed("base64-qp.eml")
        let quotedPrintable =
            "Line with trailing spaces\r\nSoftbreak and été = equals, bad =ZZ and =4\r\nTab at end\t\r\nLast line"
        #expect(encodings.binaryBytes([1]) == Array(quotedPrintable.utf8))
        #expect(encodings.partNode(0)?.decodedSize == 95)
        #expect(encodings.binaryBytes([2]) == [0, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect(encodings.partNode(1)?.decodedSize == 9)

        let bareLF = MIMEFixture.parsed("bare-lf.eml")
        #expect(bareLF.binaryBytes([2]) == Array("soft break".utf8))
        #expect(bareLF.partNode(0)?.decodedSize == 18)

        let simple = MIMEFixture.parsed("simple.eml")
        #expect(simple.root.binaryPart([1]) == simple.root)
        #expect(simple.root.decodedSize == 52)

        let unknown = ParsedMessage(parsing: Array("Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n".utf8))
        #expect(unknown.root.encoding == "x-uuencode")
        #expect(unknown.root.decodedSize == nil)
        #expect(unknown.binaryBytes([1]) == nil)
        #expect(unknown.root.binaryPart([1]) != nil)
    }
}

@Suite struct BinaryContentTests {
    /// literal8 APPENDs store binary parts base64-encoded; BINARY[] gives the original bytes back.
    @Test func binaryPartsAreStoredAsBase64() {
        let raw =
            Array(
                "From: a@b.c\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                    .utf8)
            + [0x00, 0x2D, 0xE4, 0x0A, 0x0D, 0x0A, 0x0A]
        let message = ParsedMessage(parsing: raw, binary: true)
        let text = String(decoding: message.bytes, as: UTF8.self)
        #expect(text.contains("Content-Transfer-Encoding: base64\r\n\r\n"))
        #expect(!text.contains("binary"))
        #expect(!message.bytes.contains(0))
        let leaf = message.root.binaryPart([1])
        #expect(leaf?.encoding == "base64")
        #expect(leaf?.decodedSize == 7)
        if let leaf {
            #expect(
                TransferEncoding.decode(message.bytes[leaf.bodyStart..<leaf.bodyEnd], encoding: leaf.encoding)
                    == [0x00, 0x2D, 0xE4, 0x0A, 0x0D, 0x0A, 0x0A])
        }
    }

    @Test func textPartsOfABinaryAppendAreLeftAlone() {
        let raw = Array("Subject: plain\r\n\r\nhello\nworld\n".utf8)
        #expect(
            ParsedMessage(parsing: raw, binary: true).bytes == Array("Subject: plain\r\n\r\nhello\r\nworld\r\n".utf8))
    }
}
