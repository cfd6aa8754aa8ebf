import Foundation
import PostgresNIO
import StoragePostgres
import Testing

/// Issue #10 §2: SORT (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267) over TCP, on four messages whose
/// keys disagree with each other and with mailbox order, so every criterion gives a different answer.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SortTests {
    static let messages: [(text: String, internalDate: String)] = [
        (
            "From: Zed <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Re: beta\r\n"
                + "Date: Wed, 3 Jan 2024 10:00:00 +0000\r\n\r\nshort\r\n", "05-Jan-2024 00:00:00 +0000"
        ),
        (
            "From: bob@example.com\r\nTo: Alice <alice@example.com>\r\nSubject: alpha\r\n"
                + "Date: Tue, 2 Jan 2024 23:00:00 -0500\r\n\r\nshort too\r\n", "04-Jan-2024 00:00:00 +0000"
        ),
        ("From: Amy <carol@example.com>\r\nSubject: [list] Fwd: Beta\r\n\r\nno date\r\n", "01-Jan-2024 00:00:00 +0000"),
        (
            "From: dave@example.com\r\nSubject: gamma (fwd)\r\nDate: Mon, 1 Jan 2024 12:00:00 +0000\r\n\r\n"
                + String(repeating: "a long body line\r\n", count: 50), "06-Jan-2024 00:00:00 +0000"
        ),
    ]

    @Test func everyCriterionAndTheExtendedForms() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            for (n, message) in Self.messages.enumerated() {
                let appended = try await c.append(
                    "a\(n)", to: "INBOX", Array(message.text.utf8), options: "() \"\(message.internalDate)\"")
                #expect(appended.last?.hasPrefix("a\(n) OK") == true, "\(appended)")
            }
            try await c.expectOK("s", "SELECT INBOX")
            let capabilities = try await c.command("c", "CAPABILITY").first ?? ""
            #expect(
                capabilities.contains(" SORT ") && capabilities.contains(" SORT=DISPLAY ")
                    && capabilities.contains(" ESORT"))
            let cases: [(String, String)] = [
                // Base subjects ALPHA, BETA, BETA, GAMMA; equal keys keep mailbox order (RFC 5256 §3).
                ("SORT (SUBJECT) UTF-8 ALL", "* SORT 2 1 3 4"),
                ("SORT (REVERSE SUBJECT) UTF-8 ALL", "* SORT 4 1 3 2"),
                ("SORT (SUBJECT REVERSE ARRIVAL) UTF-8 ALL", "* SORT 2 1 3 4"),
                ("SORT (FROM) US-ASCII ALL", "* SORT 1 2 3 4"),
                ("SORT (TO) US-ASCII ALL", "* SORT 3 4 2 1"),  // no To (empty) first: "", "", ALICE, BOB
                ("SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 3 2 4 1"),  // AMY, BOB@…, DAVE@…, ZED
                // Date: in UTC, the internal date where there is none: 1 Jan 00:00, 1 Jan 12:00, 3 Jan 04:00, 10:00.
                ("SORT (DATE) UTF-8 ALL", "* SORT 3 4 2 1"),
                ("SORT (ARRIVAL) UTF-8 ALL", "* SORT 3 2 1 4"),
                ("SORT (REVERSE SIZE) UTF-8 ALL", "* SORT 4 2 1 3"),
                ("SORT (SUBJECT) UTF-8 FROM bob", "* SORT 2"),
                ("UID SORT (REVERSE DATE) UTF-8 NOT FROM bob", "* SORT 1 4 3"),
            ]
            for (n, (command, expected)) in cases.enumerated() {
                #expect(try await c.expectOK("t\(n)", command) == [expected], "\(command)")
            }
            // ESORT: MIN and MAX are the first and last in sort order; ALL keeps the order, ranges only ascending.
            #expect(
                try await c.expectOK("e1", "UID SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL")
                    == ["* ESEARCH (TAG \"e1\") UID MIN 2 MAX 4 ALL 2,1,3:4 COUNT 4"])
            #expect(
                try await c.expectOK("e2", "SORT RETURN () (DATE) UTF-8 ALL") == ["* ESEARCH (TAG \"e2\") ALL 3:4,2,1"])
            #expect(
                try await c.expectOK("e3", "SORT RETURN (COUNT) (DATE) UTF-8 FROM nobody") == [
                    "* ESEARCH (TAG \"e3\") COUNT 0"
                ])
            // RFC 5182 SAVE with ESORT: nothing returned for SAVE alone, the set saved for `$`; with MIN, the first in
            // sort order.
            #expect(
                try await c.expectOK("r1", "UID SORT RETURN (SAVE) (REVERSE SUBJECT) UTF-8 NOT SUBJECT gamma").isEmpty)
            #expect(
                try await c.expectOK("r2", "UID SEARCH RETURN (ALL) UID $") == ["* ESEARCH (TAG \"r2\") UID ALL 1:3"])
            #expect(
                try await c.expectOK("r3", "SORT RETURN (SAVE MIN) (SUBJECT) UTF-8 ALL")
                    == ["* ESEARCH (TAG \"r3\") MIN 2"])
            #expect(try await c.expectOK("r4", "UID FETCH $ (UID)") == ["* 2 FETCH (UID 2)"])
            // With MODSEQ, the highest modseq of what was found (RFC 7162 §3.1.5).
            let modseq = try await c.expectOK("m", "SORT (ARRIVAL) UTF-8 MODSEQ 1")
            #expect(modseq.first?.hasPrefix("* SORT 3 2 1 4 (MODSEQ ") == true, "\(modseq)")
            // The first CONDSTORE enabling command with a mailbox selected announces its HIGHESTMODSEQ (§3.1).
            #expect(modseq.count == 2 && modseq[1].hasPrefix("* OK [HIGHESTMODSEQ "), "\(modseq)")
            #expect(try await c.command("b1", "SORT (FROB) UTF-8 ALL").last?.hasPrefix("b1 BAD") == true)
            #expect(try await c.command("b2", "SORT SUBJECT UTF-8 ALL").last?.hasPrefix("b2 BAD") == true)
            #expect(try await c.command("b3", "SORT (SUBJECT) ALL").last?.hasPrefix("b3 BAD") == true)
            #expect(
                try await c.command("b4", "SORT (SUBJECT) KOI8-R ALL").last?.hasPrefix("b4 NO [BADCHARSET") == true)
        }
    }

    /// THREAD REFERENCES and ORDEREDSUBJECT (RFC 5256 §4) over TCP: a reply through References, one through
    /// In-Reply-To only with a quoted msg-id (normalised), a reply by subject alone, and an unrelated message.
    @Test func threadByReferencesAndBySubject() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            let messages = [
                "Message-ID: <root@example.com>\r\nSubject: plans\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n1\r\n",
                "Message-ID: <other@example.com>\r\nSubject: lunch\r\nDate: Mon, 1 Jan 2024 11:00:00 +0000\r\n\r\n2\r\n",
                "Message-ID: <r1@example.com>\r\nReferences: <root@example.com>\r\nSubject: Re: plans\r\n"
                    + "Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n\r\n3\r\n",
                "Message-ID: <r2@example.com>\r\nIn-Reply-To: <\"r1\"@example.com> (sent by someone)\r\n"
                    + "Subject: Re: plans\r\nDate: Mon, 1 Jan 2024 13:00:00 +0000\r\n\r\n4\r\n",
                "Message-ID: <r3@example.com>\r\nSubject: Re: lunch\r\nDate: Mon, 1 Jan 2024 14:00:00 +0000\r\n\r\n5\r\n",
            ]
            for (n, text) in messages.enumerated() { _ = try await c.append("a\(n)", to: "INBOX", Array(text.utf8)) }
            try await c.expectOK("s", "SELECT INBOX")
            let capabilities = try await c.command("c", "CAPABILITY").first ?? ""
            #expect(capabilities.contains(" THREAD=REFERENCES") && capabilities.contains(" THREAD=ORDEREDSUBJECT"))
            #expect(try await c.expectOK("t1", "THREAD REFERENCES UTF-8 ALL") == ["* THREAD (1 3 4)(2 5)"])
            #expect(try await c.expectOK("t2", "THREAD ORDEREDSUBJECT UTF-8 ALL") == ["* THREAD (1 (3)(4))(2 5)"])
            // THREAD=REFS: 5 stays apart (no gathering by subject); threads ordered by their latest message.
            #expect(capabilities.contains(" THREAD=REFS"))
            #expect(try await c.expectOK("t6", "THREAD REFS UTF-8 ALL") == ["* THREAD (2)(1 3 4)(5)"])
            // Only the searched messages are threaded: without message 3, message 4's parent is missing.
            #expect(
                try await c.expectOK("t3", "THREAD REFERENCES UTF-8 NOT SUBJECT lunch NOT BODY 3") == ["* THREAD (1 4)"]
            )
            try await c.expectOK("d", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            try await c.expectOK("x", "EXPUNGE")
            #expect(try await c.expectOK("t4", "UID THREAD REFERENCES UTF-8 ALL") == ["* THREAD (2 5)(3 4)"])
            #expect(try await c.expectOK("t5", "THREAD REFERENCES UTF-8 FROM nobody") == ["* THREAD"])
            #expect(try await c.command("b", "THREAD FROB UTF-8 ALL").last?.hasPrefix("b BAD") == true)
        }
    }
}

/// SORT by ARRIVAL, DATE, SIZE and SUBJECT is answered from the process's key cache (`MessageKeyCache`), other
/// criteria by the store's ORDER BY. With every From equal, `SORT (FROM x)` (store) must equal `SORT (x)` (cache):
/// two independent implementations checked against each other on varied messages, also after another instance added
/// and expunged messages behind the cache's back.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct SortCacheTests {
    static func message(_ n: Int) -> String {
        let subjects = [
            "Re: plans", "plans", "Fwd: Élan", "élan", "[list] Ünïcode", "zeta", "Zeta", "", "Re: Re: alpha", "alpha",
            "\u{65E5}\u{672C}", "a\u{0301}b",
        ]
        let subject = subjects[(n * 7) % subjects.count]
        let day = 1 + (n * 13) % 28
        let body = String(repeating: "x", count: (n * 37) % 300)
        return "From: same@example.com\r\nSubject: \(subject)\r\n"
            + (n % 5 == 0 ? "" : "Date: \(day) Mar 2024 \(n % 24):00:00 +0000\r\n") + "\r\n\(body)\r\n"
    }

    static let criteria = [
        "SUBJECT", "REVERSE SUBJECT", "DATE", "REVERSE DATE", "ARRIVAL", "REVERSE ARRIVAL", "SIZE", "SUBJECT DATE",
        "REVERSE SIZE SUBJECT", "SUBJECT REVERSE ARRIVAL",
    ]

    /// Every criterion list through the cache and through the store; both answers must agree and be non-trivial.
    static func compare(_ c: IMAPTestClient, expectCount: Int) async throws {
        for (n, criteria) in criteria.enumerated() {
            let cached = try await c.expectOK("c\(n)", "UID SORT (\(criteria)) UTF-8 ALL")
            let stored = try await c.expectOK("s\(n)", "UID SORT (FROM \(criteria)) UTF-8 ALL")
            #expect(cached == stored, "\(criteria)")
            #expect(cached.first?.split(separator: " ").count == expectCount + 2, "\(criteria): \(cached)")
        }
        let cached = try await c.expectOK("c", "UID SORT (SUBJECT) UTF-8 NOT LARGER 150")
        let stored = try await c.expectOK("s", "UID SORT (FROM SUBJECT) UTF-8 NOT LARGER 150")
        #expect(cached == stored)
    }

    @Test(.enabled(if: TestEnvironment.readyOnPostgres, TestEnvironment.postgresSkipReason))
    func cacheAndStoreAgreeAndFollowOtherInstances() async throws {
        try await withTwoInstances { portA, portB in
            let c = try await IMAPTestClient.loggedIn(port: portA)
            for n in 0..<60 {
                _ = try await c.append(
                    "a\(n)", to: "INBOX", Array(Self.message(n).utf8),
                    options: "() \"\(1 + n % 27)-Feb-2024 0\(n % 10):00:00 +0000\"")
            }
            try await c.expectOK("sel", "SELECT INBOX")
            try await Self.compare(c, expectCount: 60)
            // Another instance adds and expunges; this instance's cache holds the old keys.
            let other = try await IMAPTestClient.loggedIn(port: portB)
            for n in 60..<80 { _ = try await other.append("b\(n)", to: "INBOX", Array(Self.message(n).utf8)) }
            try await other.expectOK("bs", "SELECT INBOX")
            try await other.expectOK("bd", "UID STORE 1:10,70 +FLAGS.SILENT (\\Deleted)")
            try await other.expectOK("bx", "EXPUNGE")
            await other.close()
            // Once this session has been told of them all (ten EXPUNGEs; UID 70 came and went unseen: 69 left).
            var told: [String] = []
            let deadline = ContinuousClock.now + .seconds(60)
            while told.filter({ $0.hasSuffix(" EXPUNGE") }).count < 10 || !told.contains("* 69 EXISTS") {
                guard ContinuousClock.now < deadline else { throw TestFailure("changes not announced: \(told)") }
                told += try await c.expectOK("n\(told.count)", "NOOP")
            }
            try await Self.compare(c, expectCount: 69)
            let threads = try await c.expectOK("t", "UID THREAD REFERENCES UTF-8 ALL")
            #expect(!threads.contains { $0.contains("(1)") || $0.contains(" 70)") || $0.contains("(70") })
            // A SUBJECT sort over a search that takes in a message the cache lacks: the subject ranks kept for the
            // entry must not outlive its keys (they once indexed past their end and stopped the process).
            _ = try await c.expectOK("r1", "UID SORT (SUBJECT) UTF-8 ALL")
            _ = try await c.append("r2", to: "INBOX", Array(Self.message(99).utf8))
            let cached = try await c.expectOK("r3", "UID SORT (SUBJECT) UTF-8 UNSEEN")
            #expect(cached == (try await c.expectOK("r4", "UID SORT (FROM SUBJECT) UTF-8 UNSEEN")))
            #expect(cached.first?.split(separator: " ").count == 70 + 2, "\(cached)")
            await c.close()
        }
    }
}

/// Messages stored before the sort, thread and preview keys existed get them from `mailadmin db backfill`.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct BackfillTests {
    @Test func backfillRestoresKeysOfOldMessages() async throws {
        try await withTestServer { server in
            let subjects = ["Re: delta", "alpha", "Fwd: charlie", "bravo", "echo"]
            try await server.seed(messages: subjects.map { testMessage(subject: $0, body: "Text of \($0).\r\n") })
            // As an older version left them: no keys at all.
            try await server.executeSQL(
                """
                UPDATE contents SET sort_subject = NULL, sort_from = NULL, sort_to = NULL, sort_cc = NULL,
                    sort_display_from = NULL, sort_display_to = NULL, sent_time = NULL, thread_id = NULL,
                    thread_refs = NULL, thread_reply = NULL, preview = NULL, keys_version = NULL
                """)
            if TestEnvironment.storeKind == .postgres {
                try await server.executeSQL("UPDATE contents SET summary_header = NULL")
            }
            let c = try await server.login()
            try await c.expectOK("s", "SELECT INBOX")
            #expect(try await c.expectOK("t1", "SORT (SUBJECT) UTF-8 ALL") == ["* SORT 1 2 3 4 5"])
            #expect(try await c.expectOK("p1", "FETCH 2 (PREVIEW)") == ["* 2 FETCH (PREVIEW NIL)"])
            let run = try await mailadmin(server.storage, "db", "backfill", "--batch", "2")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("5 messages backfilled"), "\(run.stdout)")
            #expect(try await c.expectOK("t2", "SORT (SUBJECT) UTF-8 ALL") == ["* SORT 2 4 3 1 5"])
            #expect(try await c.expectOK("p2", "FETCH 2 (PREVIEW)") == ["* 2 FETCH (PREVIEW \"Text of alpha.\")"])
            if TestEnvironment.storeKind == .postgres {
                // The header summaries of schema migration 8 come back too (their own pass after the keys).
                let missing = try await server.storage.queryStrings(
                    "SELECT count(*)::text FROM contents WHERE summary_header IS NULL")
                #expect(missing == ["0"])
            }
            // Nothing left: a second run changes nothing.
            let again = try await mailadmin(server.storage, "db", "backfill")
            #expect(again.status == 0 && again.stdout.contains("(0 messages backfilled)"), "\(again.stdout)")
            await c.close()
        }
    }
}
