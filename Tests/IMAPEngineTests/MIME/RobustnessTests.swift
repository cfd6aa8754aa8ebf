import Foundation
import Testing

@testable import IMAPEngine

/// Degenerate and hostile input: best-effort results, no trap, linear time.
@Suite struct MIMERobustnessTests {
    // MARK: - Degenerate messages

    @Test func emptyMessage() {
        let message = ParsedMessage(parsing: [])
        #expect(message.bytes.isEmpty)
        #expect(message.headerLength == 0)
        #expect(message.root == MessagePart(headerStart: 0, bodyStart: 0, bodyEnd: 0, decodedSize: 0))
        #expect(MIMEFixture.text(message.envelope) == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
        #expect(MIMEFixture.text(message.body) == #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)"#)
        #expect(message.root.range(part: [], text: .header) == 0..<0)
        #expect(message.root.range(part: [1], text: nil) == 0..<0)
        #expect(message.search == SearchText(headers: "\n"))
        #expect(message.sentDate == nil)
    }

    @Test func messagesWithoutHeaderOrBody() {
        let bodyOnly = ParsedMessage(parsing: Array("\r\nbody only\r\n".utf8))
        #expect(bodyOnly.headerLength == 2)
        #expect(bodyOnly.root.range(part: [], text: .text) == 2..<13)
        #expect(MIMEFixture.text(bodyOnly.body) == #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1)"#)

        let headerOnly = ParsedMessage(parsing: Array("Subject: no body".utf8))
        #expect(headerOnly.headerLength == 16)
        #expect(headerOnly.root.range(part: [], text: .text) == 16..<16)
        #expect(MIMEFixture.text(headerOnly.envelope) == #"(NIL "no body" NIL NIL NIL NIL NIL NIL NIL NIL)"#)
        #expect(MIMEFixture.text(headerOnly.body) == #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)"#)

        #expect(ParsedMessage(parsing: Array("Subject: x\r\n".utf8)).headerLength == 12)
        #expect(ParsedMessage(parsing: Array("\n".utf8)).bytes == [0x0D, 0x0A])
        #expect(ParsedMessage(parsing: Array("\n".utf8)).headerLength == 2)

        // Old Mac line ends (CR only): no line break at all, so everything is one header field.
        let crOnly = ParsedMessage(parsing: Array("Subject: x\rFrom: a@b\r\rbody".utf8))
        #expect(crOnly.headerLength == crOnly.bytes.count)
        #expect(
            MIMEFixture.text(crOnly.envelope)
                == "(NIL {17}\r\nx\rFrom: a@b\r\rbody NIL NIL NIL NIL NIL NIL NIL NIL)")

        let junk = ParsedMessage(parsing: Array("From nobody Mon Jan 1\r\n no colon here\r\nSubject: ok\r\n\r\nx".utf8))
        #expect(MIMEFixture.text(junk.envelope) == #"(NIL "ok" NIL NIL NIL NIL NIL NIL NIL NIL)"#)
        #expect(junk.search.headers == "\nsubject: ok\n")
    }

    @Test func lineEndingsAreRepaired() {
        let raw = Array("A: 1\nB: 2\r\n\nx\ry\n\r".utf8)
        let message = ParsedMessage(parsing: raw)
        #expect(message.bytes == Array("A: 1\r\nB: 2\r\n\r\nx\ry\r\n\r".utf8))
        #expect(message.headerLength == 14)
        #expect(LineEndings.normalized(Array("\n\n\r\n\r\r".utf8)) == Array("\r\n\r\n\r\n\r\r".utf8))
        let crlf = Array("a\r\nb".utf8)
        #expect(LineEndings.normalized(crlf) == crlf)

        let bareLF = MIMEFixture.bytes("bare-lf.eml")
        let converted = String(decoding: bareLF, as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n")
        #expect(ParsedMessage(parsing: bareLF).bytes == Array(converted.utf8))
        #expect(
            ParsedMessage(parsing: Array(converted.utf8)).bodyStructure == ParsedMessage(parsing: bareLF).bodyStructure)
    }

    // MARK: - Broken MIME structure

    @Test func multipartWithoutUsableBoundary() {
        let noParameter = ParsedMessage(parsing: Array("Content-Type: multipart/mixed\r\n\r\nhello\r\n".utf8))
        #expect(
            MIMEFixture.text(noParameter.bodyStructure)
                == #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)"#
                + #" "mixed" NIL NIL NIL NIL)"#
        )
        #expect(noParameter.root.range(part: [1], text: nil) == 33..<40)
        #expect(noParameter.root.range(part: [1], text: .mime) == 33..<33)
        #expect(noParameter.search.body == "hello")

        let neverSeen = ParsedMessage(
            parsing: Array("Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n--zy\r\n".utf8))
        #expect(
            MIMEFixture.text(neverSeen.bodyStructure)
                == #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 2 NIL NIL NIL NIL) "mixed""#
                + #" ("boundary" "zz") NIL NIL NIL)"#
        )

        let closeOnly = ParsedMessage(
            parsing: Array("Content-Type: multipart/mixed; boundary=zz\r\n\r\npreamble\r\n--zz--\r\nepilogue\r\n".utf8))
        #expect(
            MIMEFixture.text(closeOnly.bodyStructure)
                == #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed""#
                + #" ("boundary" "zz") NIL NIL NIL)"#
        )
        #expect(closeOnly.root.range(part: [1], text: nil) == 54..<54)
        #expect(closeOnly.root.range(part: [], text: .text) == 46..<closeOnly.bytes.count)
    }

    @Test func partHeadersCutByBoundaries() {
        let cut = ParsedMessage(
            parsing: Array(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n--b--\r\n".utf8))
        #expect(
            MIMEFixture.text(cut.bodyStructure)
                == #"(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed""#
                + #" ("boundary" "b") NIL NIL NIL)"#
        )
        #expect(cut.root.range(part: [1], text: .mime) == 50..<73)
        #expect(cut.root.range(part: [1], text: nil) == 73..<73)

        let blankThenBoundary = ParsedMessage(
            parsing: Array(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--b--\r\n".utf8
            ))
        #expect(blankThenBoundary.root.range(part: [1], text: .mime) == 50..<76)
        #expect(blankThenBoundary.root.range(part: [1], text: nil) == 76..<76)

        let twoDelimiters = ParsedMessage(
            parsing: Array("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\nsecond\r\n--b--".utf8))
        #expect(twoDelimiters.root.children.count == 2)
        #expect(twoDelimiters.root.range(part: [1], text: nil) == 50..<50)
        #expect(twoDelimiters.sectionString([2]) == "second")

        // An inner delimiter right before an outer one: the empty last part stays inside its multipart.
        let innerThenOuter = ParsedMessage(
            parsing: Array(
                ("Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
                    + "Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n--o--\r\n").utf8))
        #expect(innerThenOuter.root.range(part: [1], text: nil) == 95..<98)
        #expect(innerThenOuter.root.range(part: [1, 1], text: nil) == 98..<98)
        #expect(innerThenOuter.sectionString([1]) == "--i")
    }

    @Test func boundaryMatching() {
        // Prefix matching (RFC 2046 §5.1.1), the innermost boundary first, the longest match among the rest.
        let text = """
            Content-Type: multipart/mixed; boundary="abc"

            --abc
            Content-Type: multipart/alternative; boundary="abc-inner"

            --abc-inner

            one
            --abc-inner--
            --abc\tjunk after the boundary

            two
            --abc--
            """
        let message = ParsedMessage(parsing: Array(text.utf8))
        #expect(message.root.children.count == 2)
        #expect(message.partNode(0)?.children.count == 1)
        #expect(message.sectionString([1, 1]) == "one")
        #expect(message.sectionString([2]) == "two")

        // The same boundary nested: the inner multipart takes its lines, the outer gets the rest.
        let same = """
            Content-Type: multipart/mixed; boundary=x

            --x
            Content-Type: multipart/mixed; boundary=x

            --x

            inner
            --x--
            --x

            outer two
            --x--
            """
        let nested = ParsedMessage(parsing: Array(same.utf8))
        #expect(nested.root.children.count == 2)
        #expect(nested.sectionString([1, 1]) == "inner")
        #expect(nested.sectionString([2]) == "outer two")
    }

    @Test func encodedMessageRFC822IsStillParsed() {
        let text = "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==\r\n"
        let message = ParsedMessage(parsing: Array(text.utf8))
        #expect(message.root.children.count == 1)
        #expect(MIMEFixture.isBalanced(message.bodyStructure))
        #expect(message.root.range(part: [1], text: .header) == 67..<85)
    }

    @Test func nestingDepthIsCapped() {
        var multipart: [UInt8] = []
        for level in 0..<5_000 {
            multipart += Array("Content-Type: multipart/mixed; boundary=b\(level)\r\n\r\n--b\(level)\r\n".utf8)
        }
        multipart += Array("deepest\r\n".utf8)
        var message822: [UInt8] = []
        for _ in 0..<5_000 { message822 += Array("Content-Type: message/rfc822\r\n\r\n".utf8) }
        message822 += Array("Subject: deepest\r\n\r\nbody\r\n".utf8)
        for raw in [multipart, message822] {
            let message = ParsedMessage(parsing: raw)
            var depth = 1
            var node = message.root
            while let child = node.children.first {
                node = child
                depth += 1
            }
            #expect(depth == MIMETreeParser.maxDepth)
            #expect(node.type == "application" && node.subtype == "octet-stream")
            #expect(MIMEFixture.isBalanced(message.bodyStructure))
            #expect(MIMEFixture.isBalanced(message.body))
            #expect(message.root.range(part: Array(repeating: 1, count: 98), text: nil) != nil)
        }
    }

    @Test func partCountIsCapped() {
        var raw = Array("Content-Type: multipart/mixed; boundary=p\r\n\r\n".utf8)
        for index in 0..<20_000 { raw += Array("--p\r\n\r\npart \(index)\r\n".utf8) }
        raw += Array("--p--\r\n".utf8)
        let message = ParsedMessage(parsing: raw)
        #expect(message.root.children.count < MIMETreeParser.maxParts)
        #expect(message.root.children.count > MIMETreeParser.maxParts - 10)
        #expect(message.root.children.last?.bodyEnd == message.bytes.count)
        #expect(MIMEFixture.isBalanced(message.bodyStructure))
    }

    @Test func messagePartIsCodable() throws {
        let root = MIMEFixture.parsed("rfc822-attachment.eml").root
        let decoded = try JSONDecoder().decode(MessagePart.self, from: JSONEncoder().encode(root))
        #expect(decoded == root)
    }

    // MARK: - Performance

    @Test func tenMebibyteMessageParsesQuickly() {
        var raw = Array(
            ("From: a@b.c\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\n"
                + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n").utf8
        )
        let textLine = Array(
            "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, this is a line of quoted-printable text for the index=\r\n".utf8)
        while raw.count < 3_000_000 { raw += textLine }
        raw += Array(
            "\r\n--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n".utf8)
        let base64Line = Array("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n".utf8)
        while raw.count < 10 * 1024 * 1024 { raw += base64Line }
        raw += Array("\r\n--big--\r\n".utf8)
        let clock = ContinuousClock()
        var message: ParsedMessage?
        let elapsed = clock.measure { message = ParsedMessage(parsing: raw) }
        print("10 MiB message parsed in \(elapsed)")
        #expect(message?.root.children.count == 2)
        #expect((message?.search.body.utf8.count ?? 0) > 1_000_000)
        // Linear work takes about a second; only a blow-up (quadratic on 10 MiB is hours) reaches this bound.
        #expect(elapsed < .seconds(120))
    }

    @Test func pathologicalInputsStayLinear() {
        let size = 1_000_000
        let patterns: [[UInt8]] = [
            Array("To: ".utf8) + Array(repeating: UInt8(ascii: "<"), count: size),
            Array("To: ".utf8) + Array(repeating: UInt8(ascii: "("), count: size),
            Array("To: ".utf8) + [UInt8](String(repeating: "a@b, ", count: size / 5).utf8),
            Array("Subject: ".utf8) + [UInt8](String(repeating: "=?", count: size / 2).utf8),
            Array("Subject: ".utf8) + [UInt8](String(repeating: "=?utf-8?q?a?= ", count: size / 14).utf8),
            Array("Content-Type: text/html\r\n\r\n".utf8) + Array(repeating: UInt8(ascii: "<"), count: size),
            Array("Content-Type: text/html\r\n\r\n".utf8)
                + [UInt8](String(repeating: "<script>", count: size / 8).utf8),
            Array("Content-Type: text/html\r\n\r\n".utf8) + [UInt8](String(repeating: "<!--", count: size / 4).utf8),
            Array("Content-Type: text/plain; ".utf8) + [UInt8](String(repeating: "a*0=b; ", count: size / 7).utf8),
            Array("Content-Type: multipart/mixed; boundary=x\r\n\r\n".utf8)
                + [UInt8](String(repeating: "--y\r\n", count: size / 5).utf8),
        ]
        let clock = ContinuousClock()
        for pattern in patterns {
            var message: ParsedMessage?
            let elapsed = clock.measure { message = ParsedMessage(parsing: pattern) }
            // Linear parsing of 1 MB takes well under a second; a quadratic path (10^12 steps) would take hours.
            #expect(elapsed < .seconds(120), "\(String(decoding: pattern.prefix(40), as: UTF8.self))")
            #expect(MIMEFixture.isBalanced(message?.bodyStructure ?? []))
            #expect(MIMEFixture.isBalanced(message?.envelope ?? []))
        }
    }

    // MARK: - Fuzzing

    @Test func mutatedFixturesNeverBreakTheParser() {
        var random = MIMEFuzz.Generator(state: 0x4D49_4D45)
        let fixtures = MIMEFixture.all.map(MIMEFixture.bytes)
        let texts: [SectionText?] = [nil, .header, .headerFields(["Subject"]), .headerFieldsNot(["To"]), .text, .mime]
        var failures = 0
        for round in 0..<2_000 {
            let input = MIMEFuzz.mutate(fixtures[round % fixtures.count], &random)
            let message = ParsedMessage(parsing: input)
            var ok =
                MIMEFixture.isBalanced(message.bodyStructure) && MIMEFixture.isBalanced(message.body)
                && MIMEFixture.isBalanced(message.envelope)
                && MIMEFuzz.checkTree(message.root, size: message.bytes.count)
                && message.headerLength == message.root.bodyStart
                && !zip(message.bytes, message.bytes.dropFirst()).contains { $0.0 != 0x0D && $0.1 == 0x0A }
                && message.bytes.first != 0x0A
            for path in [[], [1], [2], [1, 1], [1, 2], [2, 1], [2, 2], [3, 1, 1], [1, 1, 1, 1]] as [[Int]] {
                for text in texts {
                    if let range = message.root.range(part: path, text: text) {
                        ok = ok && range.lowerBound >= 0 && range.upperBound <= message.bytes.count
                        if case .headerFields = text {
                            ok =
                                ok
                                && HeaderFilter.filter(message.bytes[range], names: ["subject"], not: false).last
                                    == 0x0A
                        }
                    }
                }
                if let leaf = message.root.binaryPart(path) {
                    ok = ok && leaf.type != "multipart"
                    _ = TransferEncoding.decode(message.bytes[leaf.bodyStart..<leaf.bodyEnd], encoding: leaf.encoding)
                }
            }
            let search = message.search
            ok = ok && search.body.utf8.count <= SearchText.maxBodyBytes
            ok =
                ok
                && ![search.from, search.to, search.subject, search.headers, search.body].contains {
                    $0.contains("\u{0}")
                }
            if !ok {
                failures += 1
                Issue.record("round \(round): \(input.map { String(format: "%02x", $0) }.joined())")
                if failures > 3 { return }
            }
        }
    }
}

/// Seeded mutations of the fixtures.
enum MIMEFuzz {
    /// SplitMix64: a small seeded generator, so that every run mutates the same way.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let interestingTokens: [[UInt8]] = [
        "--", "\r\n", "\n", "\r", "\r\n\r\n", "--b--", "=?utf-8?b?", "?=", "=?", "\"", "(", ")", "<", ">", "@", ":",
        ";",
        ",", "=", "*0*=", "'", "%", "Content-Type: multipart/mixed; boundary=\"==outer==\"\r\n",
        "Content-Type: message/rfc822\r\n", "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n",
        "--==outer==\r\n",
        "--==related==--", "--fwd\r\n", "--simple", "--enc", "Content-Transfer-Encoding: base64\r\n", "=\r\n", "=4",
        "\u{0}",
        "\u{FF}", " ", "\t",
    ].map { Array($0.utf8) }

    static func mutate(_ input: [UInt8], _ random: inout Generator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...8, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0 where position < bytes.count:
                bytes[position] = UInt8.random(in: 0...255, using: &random)
            case 1:
                bytes.insert(contentsOf: interestingTokens.randomElement(using: &random) ?? [], at: position)
            case 2 where position < bytes.count:
                bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...60, using: &random)))
            case 3 where position < bytes.count:
                let end = min(bytes.count, position + Int.random(in: 1...200, using: &random))
                bytes.insert(contentsOf: bytes[position..<end], at: Int.random(in: 0...bytes.count, using: &random))
            case 4:
                bytes.removeSubrange(position...)
            case 5:
                bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
            default:
                if let lf = bytes[position...].firstIndex(of: 0x0A), lf > 0, bytes[lf - 1] == 0x0D {
                    bytes.remove(at: Bool.random(using: &random) ? lf - 1 : lf)
                }
            }
        }
        return bytes
    }

    /// The tree invariants of `MessagePart`.
    static func checkTree(_ part: MessagePart, size: Int, depth: Int = 0) -> Bool {
        guard 0 <= part.headerStart, part.headerStart <= part.bodyStart, part.bodyStart <= part.bodyEnd,
            part.bodyEnd <= size, depth < MIMETreeParser.maxDepth
        else { return false }
        if part.type == "multipart", part.children.isEmpty { return false }
        if part.isEncapsulatedMessage {
            guard let child = part.children.first, child.headerStart == part.bodyStart, child.bodyEnd == part.bodyEnd
            else { return false }
        }
        if part.children.isEmpty,
            (part.decodedSize == nil) == (TransferEncoding.decode([], encoding: part.encoding) != nil)
        {
            return false
        }
        for child in part.children {
            guard child.headerStart >= part.bodyStart, child.bodyEnd <= part.bodyEnd,
                checkTree(child, size: size, depth: depth + 1)
            else { return false }
        }
        return true
    }
}
