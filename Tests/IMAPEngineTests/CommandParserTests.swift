import Testing

@testable import IMAPEngine

/// One parser table row: the command text after the tag, and the expected command or error.
struct ParseCase: CustomTestStringConvertible, Sendable {
    let text: String
    let expected: Command?
    let error: String?

    init(_ text: String, _ expected: Command) {
        self.text = text
        self.expected = expected
        self.error = nil
    }

    init(_ text: String, bad error: String) {
        self.text = text
        self.expected = nil
        self.error = error
    }

    var testDescription: String { text }

    /// Parses with a random tag and checks the tag comes back, on success and on failure.
    func check() {
        let tag = "t\(Int.random(in: 1...99_999))"
        let result = CommandParser.parse(Array("\(tag) \(text)".utf8))
        if let expected {
            #expect(result == .command(tag, expected), "\(text)")
        } else {
            guard case .failure(let failedTag, let parseError) = result else {
                Issue.record("expected a parse failure for \(text), got \(result)")
                return
            }
            #expect(failedTag == tag)
            if let error { #expect(parseError.message.contains(error), "\(parseError.message)") }
        }
    }
}

func seq(_ text: String) -> NumberSet {
    var buffer = ParseBuffer(Array(text.utf8))
    return try! CommandParser.parseSequenceSet(&buffer)
}

func mbox(_ name: String) -> MailboxArgument { MailboxArgument(name) }

@Suite struct CommandParserTests {
    @Test(arguments: [
        ParseCase("CAPABILITY", .capability),
        ParseCase("capability", .capability),
        ParseCase("NoOp", .noop),
        ParseCase("LOGOUT", .logout),
        ParseCase("LOGIN tim timmy", .login(user: "tim", password: Secret("timmy"))),
        ParseCase("LOGIN \"tim\" \"pa ss\\\"w\\\\d\"", .login(user: "tim", password: Secret("pa ss\"w\\d"))),
        ParseCase("LOGIN {3}\r\ntim {5+}\r\ntimmy", .login(user: "tim", password: Secret("timmy"))),
        ParseCase("LOGIN tim", bad: "expected a space"),
        ParseCase("LOGIN tim \"unterminated", bad: "Unterminated"),
        ParseCase("AUTHENTICATE PLAIN", .authenticate(mechanism: "PLAIN", initialResponse: nil)),
        ParseCase(
            "AUTHENTICATE plain AHRpbQB0aW1teQ==",
            .authenticate(mechanism: "PLAIN", initialResponse: Secret("AHRpbQB0aW1teQ=="))),
        ParseCase("AUTHENTICATE PLAIN =", .authenticate(mechanism: "PLAIN", initialResponse: Secret("="))),
        ParseCase("ENABLE IMAP4rev2 CONDSTORE", .enable(["IMAP4REV2", "CONDSTORE"])),
        ParseCase("ID NIL", .id(nil)),
        ParseCase(
            "ID (\"name\" \"Thunderbird\" \"version\" NIL)",
            .id([IDField(key: "name", value: "Thunderbird"), IDField(key: "version", value: nil)])),
        ParseCase("NAMESPACE", .namespace),
        ParseCase("SELECT INBOX", .select(mbox("INBOX"), readOnly: false)),
        ParseCase("select \"Sent Items\"", .select(mbox("Sent Items"), readOnly: false)),
        ParseCase("EXAMINE {4+}\r\nwork", .select(mbox("work"), readOnly: true)),
        ParseCase(
            "SELECT INBOX (CONDSTORE)",
            .select(mbox("INBOX"), readOnly: false, parameters: SelectParameters(condstore: true))),
        ParseCase("CREATE a/b", .create(mbox("a/b"))),
        ParseCase("DELETE a", .delete(mbox("a"))),
        ParseCase("RENAME a b", .rename(from: mbox("a"), to: mbox("b"))),
        ParseCase("SUBSCRIBE a", .subscribe(mbox("a"))),
        ParseCase("UNSUBSCRIBE a", .unsubscribe(mbox("a"))),
        ParseCase("LSUB \"\" *", .lsub(reference: mbox(""), pattern: mbox("*"))),
        ParseCase(
            "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)",
            .status(mbox("INBOX"), [.messages, .uidNext, .uidValidity, .unseen, .deleted, .size, .recent])),
        ParseCase("STATUS INBOX (BOGUS)", bad: "Unknown STATUS item"),
        ParseCase("STATUS INBOX ()", bad: "expected a keyword"),
        ParseCase("IDLE", .idle),
        ParseCase("CHECK", .check),
        ParseCase("CLOSE", .close),
        ParseCase("UNSELECT", .unselect),
        ParseCase("EXPUNGE", .expunge(uids: nil)),
        ParseCase("UID EXPUNGE 1:3,7", .expunge(uids: seq("1:3,7"))),
        ParseCase("COPY 1:* Trash", .copy(.sequence(seq("1:*")), mbox("Trash"))),
        ParseCase("UID MOVE 4 Archive", .move(.uid(seq("4")), mbox("Archive"))),
        ParseCase("FROB", bad: "Unknown command"),
        ParseCase("UID FROB 1", bad: "Unknown UID command"),
        ParseCase("", bad: ""),
        ParseCase("SELECT", bad: "expected a space"),
        ParseCase("NOOP extra", bad: "expected end of line"),
    ])
    func commandGrammar(_ c: ParseCase) { c.check() }

    @Test(arguments: [
        ParseCase("FETCH 1:* (FLAGS UID)", .fetch(.sequence(seq("1:*")), [.flags, .uid])),
        ParseCase("FETCH 1 ALL", .fetch(.sequence(seq("1")), [.flags, .internalDate, .rfc822Size, .envelope])),
        ParseCase("FETCH 1 FAST", .fetch(.sequence(seq("1")), [.flags, .internalDate, .rfc822Size])),
        ParseCase("FETCH 1 FULL", .fetch(.sequence(seq("1")), [.flags, .internalDate, .rfc822Size, .envelope, .body])),
        ParseCase("FETCH 1 (ALL)", bad: "Unknown FETCH item"),
        ParseCase(
            "UID FETCH 7,9 BODY.PEEK[]", .fetch(.uid(seq("7,9")), [.bodySection(Section(), partial: nil, peek: true)])),
        ParseCase(
            "FETCH 12 body[header]",
            .fetch(.sequence(seq("12")), [.bodySection(Section(text: .header), partial: nil, peek: false)])),
        ParseCase(
            "FETCH 1 BODY[1.2.MIME]",
            .fetch(.sequence(seq("1")), [.bodySection(Section(part: [1, 2], text: .mime), partial: nil, peek: false)])),
        ParseCase(
            "FETCH 1 BODY[3.HEADER.FIELDS (From \"To\")]<0.100>",
            .fetch(
                .sequence(seq("1")),
                [
                    .bodySection(
                        Section(part: [3], text: .headerFields(["From", "To"])),
                        partial: Partial(origin: 0, length: 100), peek: false)
                ])),
        ParseCase(
            "FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (X-A)]",
            .fetch(
                .sequence(seq("1")), [.bodySection(Section(text: .headerFieldsNot(["X-A"])), partial: nil, peek: true)])
        ),
        ParseCase(
            "FETCH 1 BODY[TEXT]<5.10>",
            .fetch(
                .sequence(seq("1")),
                [.bodySection(Section(text: .text), partial: Partial(origin: 5, length: 10), peek: false)])),
        ParseCase(
            "FETCH 1 (BODY BODYSTRUCTURE ENVELOPE INTERNALDATE RFC822.SIZE)",
            .fetch(.sequence(seq("1")), [.body, .bodyStructure, .envelope, .internalDate, .rfc822Size])),
        ParseCase(
            "FETCH 1 (RFC822 RFC822.HEADER RFC822.TEXT)",
            .fetch(
                .sequence(seq("1")),
                [
                    .bodySection(Section(), partial: nil, peek: false, legacy: .rfc822),
                    .bodySection(Section(text: .header), partial: nil, peek: true, legacy: .rfc822Header),
                    .bodySection(Section(text: .text), partial: nil, peek: false, legacy: .rfc822Text),
                ])),
        ParseCase(
            "FETCH 1 (BINARY[1] BINARY.PEEK[2.1]<0.10> BINARY.SIZE[1])",
            .fetch(
                .sequence(seq("1")),
                [
                    .binary(part: [1], partial: nil, peek: false),
                    .binary(part: [2, 1], partial: Partial(origin: 0, length: 10), peek: true), .binarySize(part: [1]),
                ])),
        ParseCase("FETCH 0:* FLAGS", bad: "0 is not a valid message number"),
        ParseCase("FETCH 0 FLAGS", bad: "0 is not a valid message number"),
        ParseCase("FETCH 1 (FLAGS", bad: "Unexpected end of line"),
        ParseCase("FETCH 1 FLAGS)", bad: "expected end of line"),
        ParseCase("FETCH 1 ((FLAGS))", bad: "expected a keyword"),
        ParseCase("FETCH 1 BODY[0]", bad: "non-zero"),
        ParseCase("FETCH 1 BODY[MIME]", bad: "Invalid section"),
        ParseCase("FETCH 1 BODY[1]<0.0>", bad: "Partial length"),
        ParseCase("FETCH 1 BODY.PEEK", bad: "expected \"[\""),
        ParseCase("FETCH 99999999999 FLAGS", bad: "out of range"),
        ParseCase("FETCH * FLAGS", .fetch(.sequence(seq("*")), [.flags])),
        ParseCase(
            "FETCH 4:2,*:1 UID",
            .fetch(.sequence(NumberSet(ranges: [.init(.number(4), .number(2)), .init(.star, .number(1))])), [.uid])),
        ParseCase("FETCH $ FLAGS", .fetch(.sequence(.lastSearchResult), [.flags])),
    ])
    func fetchGrammar(_ c: ParseCase) { c.check() }

    @Test(arguments: [
        ParseCase(
            "STORE 1 FLAGS (\\Deleted)",
            .store(.sequence(seq("1")), StoreAction(kind: .replace, silent: false, flags: [.deleted]))),
        ParseCase(
            "STORE 12 flags \\deleted",
            .store(.sequence(seq("12")), StoreAction(kind: .replace, silent: false, flags: [.deleted]))),
        ParseCase(
            "UID STORE 1:3 +FLAGS.SILENT (\\Seen $Junk)",
            .store(.uid(seq("1:3")), StoreAction(kind: .add, silent: true, flags: [.seen, .keyword("$Junk")]))),
        ParseCase(
            "STORE 1 -FLAGS \\Seen \\Flagged",
            .store(.sequence(seq("1")), StoreAction(kind: .remove, silent: false, flags: [.seen, .flagged]))),
        ParseCase(
            "STORE 1 FLAGS ()", .store(.sequence(seq("1")), StoreAction(kind: .replace, silent: false, flags: []))),
        ParseCase(
            "STORE 1 FLAGS (\\Recent \\Foo)",
            .store(
                .sequence(seq("1")),
                StoreAction(kind: .replace, silent: false, flags: [.recent, .extensionFlag("Foo")]))),
        ParseCase("STORE 1 +X-GM-LABELS (a)", bad: "Unknown STORE item"),
        ParseCase("STORE 1 FLAGS (\\Seen", bad: "Unexpected end of line"),
    ])
    func storeGrammar(_ c: ParseCase) { c.check() }

    @Test(arguments: [
        ParseCase("SEARCH ALL", .search(isUID: false, SearchCommand(returnOptions: nil, charset: nil, key: .all))),
        ParseCase(
            "UID SEARCH UNSEEN FROM \"bob\" SINCE 1-Feb-1994",
            .search(
                isUID: true,
                SearchCommand(
                    returnOptions: nil, charset: nil,
                    key: .and([.unseen, .from("bob"), .since(IMAPDate(year: 1994, month: 2, day: 1))])))),
        ParseCase("SEARCH CHARSET UTF-8 SUBJECT {4+}\r\ncafé", bad: "Invalid UTF-8"),
        ParseCase(
            "SEARCH CHARSET UTF-8 SUBJECT {5+}\r\ncafé",
            .search(isUID: false, SearchCommand(returnOptions: nil, charset: "UTF-8", key: .subject("café")))),
        ParseCase(
            "SEARCH OR (DELETED FLAGGED) NOT SEEN",
            .search(
                isUID: false,
                SearchCommand(returnOptions: nil, charset: nil, key: .or(.and([.deleted, .flagged]), .not(.seen))))),
        ParseCase(
            "SEARCH 1:5 UID 10:* LARGER 100 SMALLER 5000",
            .search(
                isUID: false,
                SearchCommand(
                    returnOptions: nil, charset: nil,
                    key: .and([.sequence(seq("1:5")), .uid(seq("10:*")), .larger(100), .smaller(5000)])))),
        ParseCase(
            "SEARCH HEADER X-Mailer \"\" KEYWORD $Junk UNKEYWORD foo",
            .search(
                isUID: false,
                SearchCommand(
                    returnOptions: nil, charset: nil,
                    key: .and([.header("X-Mailer", ""), .keyword("$Junk"), .unkeyword("foo")])))),
        ParseCase(
            "SEARCH BEFORE \"3-Mar-2020\" ON 3-Mar-2020 SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000",
            .search(
                isUID: false,
                SearchCommand(
                    returnOptions: nil, charset: nil,
                    key: .and([
                        .before(IMAPDate(year: 2020, month: 3, day: 3)), .on(IMAPDate(year: 2020, month: 3, day: 3)),
                        .sentBefore(IMAPDate(year: 2000, month: 1, day: 1)),
                        .sentOn(IMAPDate(year: 2000, month: 1, day: 1)),
                        .sentSince(IMAPDate(year: 2000, month: 1, day: 1)),
                    ])))),
        ParseCase(
            "SEARCH RETURN (MIN MAX COUNT) DELETED",
            .search(isUID: false, SearchCommand(returnOptions: [.min, .max, .count], charset: nil, key: .deleted))),
        ParseCase(
            "UID SEARCH RETURN () ALL",
            .search(isUID: true, SearchCommand(returnOptions: .all, charset: nil, key: .all))),
        ParseCase(
            "SEARCH RETURN (SAVE) SEEN",
            .search(isUID: false, SearchCommand(returnOptions: .save, charset: nil, key: .seen))),
        ParseCase(
            "SEARCH $",
            .search(isUID: false, SearchCommand(returnOptions: nil, charset: nil, key: .sequence(.lastSearchResult)))),
        ParseCase(
            "SEARCH NEW OLD RECENT ANSWERED DRAFT UNDRAFT",
            .search(
                isUID: false,
                SearchCommand(
                    returnOptions: nil, charset: nil, key: .and([.new, .old, .recent, .answered, .draft, .undraft])))),
        ParseCase("SEARCH SINCE 31-Feb-2020", bad: "Invalid date"),
        ParseCase("SEARCH BOGUS", bad: "Unknown search key"),
        ParseCase("SEARCH (SEEN", bad: "expected \")\""),
        ParseCase("SEARCH SEEN)", bad: "expected end of line"),
        ParseCase(
            "SEARCH " + String(repeating: "(", count: 200) + "ALL" + String(repeating: ")", count: 200),
            bad: "nested too deeply"),
        ParseCase("SEARCH " + String(repeating: "NOT ", count: 200) + "ALL", bad: "nested too deeply"),
    ])
    func searchGrammar(_ c: ParseCase) { c.check() }

    @Test(arguments: [
        ParseCase("LIST \"\" *", .list(ListCommand(reference: mbox(""), patterns: [mbox("*")]))),
        ParseCase("LIST \"\" %", .list(ListCommand(reference: mbox(""), patterns: [mbox("%")]))),
        ParseCase("LIST foo/ bar%", .list(ListCommand(reference: mbox("foo/"), patterns: [mbox("bar%")]))),
        ParseCase(
            "LIST (SUBSCRIBED) \"\" (INBOX Sent*)",
            .list(
                ListCommand(
                    selectOptions: .subscribed, reference: mbox(""), patterns: [mbox("INBOX"), mbox("Sent*")],
                    isExtended: true))),
        ParseCase("LIST (RECURSIVEMATCH) \"\" *", bad: "RECURSIVEMATCH requires"),
        ParseCase("LIST (FOO) \"\" *", bad: "Unknown LIST selection option"),
    ])
    func listGrammar(_ c: ParseCase) { c.check() }

    /// RFC 7162 §7 and the examples of §3: CONDSTORE and QRESYNC syntax.
    @Test(arguments: [
        ParseCase("FETCH 1:* MODSEQ", .fetch(.sequence(seq("1:*")), [.modSeq])),
        ParseCase(
            "FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",
            .fetch(.sequence(seq("1:*")), [.flags], FetchModifiers(changedSince: ModSeq(12345)))),
        ParseCase(
            "UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
            .fetch(.uid(seq("300:500")), [.flags], FetchModifiers(changedSince: ModSeq(12345), vanished: true))),
        ParseCase("FETCH 1 (FLAGS) (CHANGEDSINCE 0)", bad: "non-zero mod-sequence"),
        ParseCase("FETCH 1 (FLAGS) (CHANGEDSINCE 5 VANISHED)", bad: "only allowed with UID FETCH"),
        ParseCase("UID FETCH 1 (FLAGS) (VANISHED)", bad: "VANISHED requires CHANGEDSINCE"),
        ParseCase("FETCH 1 (FLAGS) (FROBNICATE)", bad: "Unknown or repeated FETCH modifier"),
        ParseCase(
            "FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999)", bad: "out of range"),
        ParseCase(
            "UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)",
            .store(
                .uid(seq("6,4,8")),
                StoreAction(kind: .add, silent: true, flags: [.deleted], unchangedSince: ModSeq(12121230045)))),
        ParseCase(
            "STORE 1 (UNCHANGEDSINCE 0) FLAGS ()",
            .store(.sequence(seq("1")), StoreAction(kind: .replace, silent: false, flags: [], unchangedSince: .zero))),
        ParseCase("STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS ()", bad: "repeated STORE modifier"),
        ParseCase(
            "STATUS INBOX (HIGHESTMODSEQ)", .status(mbox("INBOX"), [.highestModSeq])),
        ParseCase(
            "SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338",
            .search(isUID: false, SearchCommand(returnOptions: nil, charset: nil, key: .modSeq(ModSeq(620_162_338))))),
        ParseCase(
            "SEARCH MODSEQ 0",
            .search(isUID: false, SearchCommand(returnOptions: nil, charset: nil, key: .modSeq(.zero)))),
        ParseCase("SEARCH MODSEQ \"/flags/x\" everyone 5", bad: "Unknown MODSEQ entry type"),
        ParseCase(
            "SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
            .select(
                mbox("INBOX"), readOnly: false,
                parameters: SelectParameters(
                    qresync: .init(
                        uidValidity: 67_890_007, modSeq: ModSeq(20_050_715_194_045_000),
                        knownUIDs: UIDRanges(ranges: [41...41, 43...211, 214...541]))))),
        ParseCase(
            "EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
                + "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
            .select(
                mbox("INBOX"), readOnly: true,
                parameters: SelectParameters(
                    qresync: .init(
                        uidValidity: 67_890_007, modSeq: ModSeq(90_060_115_194_045_000),
                        knownUIDs: UIDRanges(ranges: [1...29997]))))),
        ParseCase(
            "SELECT INBOX (QRESYNC (1 2) CONDSTORE)",
            .select(
                mbox("INBOX"), readOnly: false,
                parameters: SelectParameters(condstore: true, qresync: .init(uidValidity: 1, modSeq: ModSeq(2))))),
        ParseCase("SELECT INBOX (QRESYNC (1 2 1:*))", bad: "are not allowed"),
        ParseCase("SELECT INBOX (QRESYNC (1 2 (1:2 5)))", bad: "different lengths"),
        ParseCase("SELECT INBOX (QRESYNC (0 2))", bad: "non-zero"),
        ParseCase("SELECT INBOX (FROB)", bad: "Unknown select parameter"),
    ])
    func condstoreAndQResyncGrammar(_ c: ParseCase) { c.check() }

    @Test func listReturnOptions() {
        let result = CommandParser.parse(
            Array("a LIST \"\" * RETURN (CHILDREN SUBSCRIBED STATUS (MESSAGES UNSEEN))".utf8))
        guard case .command(_, .list(let list)) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(list.returnOptions.children)
        #expect(list.returnOptions.subscribed)
        #expect(list.returnOptions.status == [.messages, .unseen])
        #expect(list.isExtended)
    }

    @Test func appendWithFlagsAndDate() {
        let result = CommandParser.parse(
            Array("A003 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nhello".utf8))
        let date = InternalDate(year: 1994, month: 2, day: 7, hour: 21, minute: 52, second: 25, zoneMinutes: -480)
        #expect(
            result
                == .command(
                    "A003",
                    .append(
                        AppendCommand(
                            mailbox: mbox("saved-messages"), flags: [.seen], date: date, message: Array("hello".utf8))))
        )
        #expect(date?.wire == "\" 7-Feb-1994 21:52:25 -0800\"")
    }

    @Test func appendBinaryLiteral() {
        let result = CommandParser.parse(Array("a APPEND INBOX ~{3}\r\na\0b".utf8))
        guard case .command(_, .append(let append)) = result else {
            Issue.record("\(result)")
            return
        }
        #expect(append.isBinary)
        #expect(append.message == [0x61, 0, 0x62])
        #expect(
            CommandParser.parse(Array("a APPEND INBOX {3}\r\na\0b".utf8))
                == .failure("a", ParseError("NUL in literal; use literal8 (~{n}) for binary data")))
    }

    @Test(arguments: [
        ("a APPEND INBOX \"31-Feb-1994 21:52:25 -0800\" {1}\r\nx", "Invalid date-time"),
        ("a APPEND INBOX (\\Seen) x", "expected a literal"),
        ("a APPEND INBOX {10}\r\nabc", "Literal is incomplete"),
    ])
    func appendErrors(_ text: String, _ message: String) {
        guard case .failure("a", let error) = CommandParser.parse(Array(text.utf8)) else {
            Issue.record("expected failure for \(text)")
            return
        }
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func tagsAndUntaggedFailures() {
        #expect(CommandParser.parse(Array("+ NOOP".utf8)) == .failure(nil, ParseError("Invalid or missing tag")))
        #expect(CommandParser.parse([]) == .failure(nil, ParseError("Empty command line")))
        #expect(
            CommandParser.parse(Array("a\u{1}b NOOP".utf8)) == .failure(nil, ParseError("Invalid character in tag")))
        #expect(CommandParser.parse(Array("a]b NOOP".utf8)) == .command("a]b", .noop))
        // Bytes that are not UTF-8 inside a string are a clear error, not a crash.
        #expect(
            CommandParser.parse([0x61, 0x20, 0x4C, 0x4F, 0x47, 0x49, 0x4E, 0x20, 0xFF, 0xFE, 0x20, 0x78])
                == .failure("a", ParseError("Invalid UTF-8 in a user name")))
    }
}

/// RFC 5092 IMAP URLs as CATENATE reads them.
struct IMAPURLTests {
    @Test func parsesRelativeAndAbsoluteURLs() {
        let url = IMAPURL(parsing: "/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME", login: "tim")
        #expect(url?.mailbox == "INBOX" && url?.uidValidity == 385_759_045 && url?.uid == 20)
        #expect(url?.section == "1.MIME")
        let nested = IMAPURL(
            parsing: "imap://Tim;AUTH=*@mail.example.com:143/Lists%2FSwift/;uid=3/;partial=0.100", login: "tim")
        #expect(nested?.mailbox == "Lists/Swift" && nested?.uid == 3 && nested?.partial?.origin == 0)
        #expect(nested?.partial?.length == 100)
        #expect(nested?.fetchItem == .bodySection(Section(), partial: Partial(origin: 0, length: 100), peek: true))
        let header = IMAPURL(parsing: "/a/;UID=1/;SECTION=HEADER.FIELDS%20(FROM%20TO)", login: "tim")
        #expect(
            header?.fetchItem
                == .bodySection(Section(part: [], text: .headerFields(["FROM", "TO"])), partial: nil, peek: true))
        for bad in [
            "", "INBOX/;UID=1", "/INBOX", "/INBOX/;UID=0", "/INBOX/;UID=x", "/INBOX;UIDVALIDITY=0/;UID=1",
            "/INBOX/;UID=1/;UID=2", "/INBOX/;UID=1/;URLAUTH=anonymous", "imap://bob@host/INBOX/;UID=1",
            "/INBOX/;UID=1/;SECTION=TEXT]%20BODY[HEADER", "/INBOX/;UID=1/;SECTION=%0D%0A",
            "/INBOX/;SECTION=1/;UID=1", "/INBOX/;UID=1/;PARTIAL=1.0",
        ] {
            let parsed = IMAPURL(parsing: bad, login: "tim")
            #expect(parsed == nil || parsed?.fetchItem == nil, "\(bad)")
        }
    }
}
