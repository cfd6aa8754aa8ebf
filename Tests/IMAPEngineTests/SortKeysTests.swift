import Testing

@testable import IMAPEngine

/// The keys SORT reads, computed at ingest (RFC 5256 §2.1 base subject, §2.2 sent date, RFC 5957 display values).
@Suite struct SortKeysTests {
    @Test(arguments: [
        ("a", "a"),
        ("Re: a", "a"),
        ("RE:   re: a", "a"),
        ("Fwd: a", "a"),
        ("fw: a", "a"),
        ("Re[2]: a", "a"),
        ("[list] Re: a", "a"),
        ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b"),
        ("Re: [FWD: c]", "c"),
        ("[Fwd: Re: d (fwd)]", "d"),
        ("[xyz]", "[xyz]"),  // a blob alone is the subject (step 4 keeps a non-empty base)
        ("[xyz] e", "e"),
        ("b (a)", "b (a)"),
        ("  spaced\tout  subject  ", "spaced out subject"),
        ("", ""),
        ("Re:", ""),
        ("Reply: f", "Reply: f"),  // "re" must be followed by ":" (after blanks or a blob)
    ])
    func baseSubject(_ raw: String, _ base: String) {
        #expect(SortKeys.baseSubject(raw) == base, "\(raw)")
    }

    @Test func keysFromAHeader() {
        let message = ParsedMessage(
            parsing: Array(
                ("From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\r\nTo: bob@Example.COM, carol@example.com\r\n"
                    + "Cc: undisclosed-recipients:;\r\nSubject: Re: [list] =?UTF-8?B?w6RwZmVs?=\r\n"
                    + "Date: Tue, 01 Feb 2022 10:00:00 +0200\r\n\r\nbody\r\n").utf8))
        let keys = message.sortKeys
        // i;ascii-casemap: ASCII letters upper-cased, the rest (UTF-8 here) unchanged.
        #expect(keys.subject == "äPFEL")
        #expect(keys.from == "JOERG" && keys.to == "BOB" && keys.cc == "UNDISCLOSED-RECIPIENTS")
        #expect(keys.displayFrom == "JöRG")
        #expect(keys.displayTo == "BOB@EXAMPLE.COM")
        // 2022-02-01 08:00:00 UTC.
        #expect(keys.sentTime == 1_643_702_400)
    }

    @Test func sentTimesInUTC() {
        func time(_ text: String) -> Int64? { SortKeys.sentTime(Array(text.utf8)) }
        #expect(time("1 Jan 1970 00:00:00 +0000") == 0)
        #expect(time("Thu, 01 Jan 1970 01:00:00 +0100") == 0)
        #expect(time("Wed, 31 Dec 1969 19:00:00 EST") == 0)
        #expect(time("1 Jan 1970 00:01 GMT") == 60)
        #expect(time("1 Jan 1970") == 0)
        #expect(time("not a date") == nil)
        // Hostile values: numbers too large or negative are not arithmetic (they trapped the process once).
        #expect(time("1 Jan 2024 -9999999999999999:00 +0000") == time("1 Jan 2024"))
        #expect(time("1 Jan 2024 10:-9223372036854775808 +0000") == time("1 Jan 2024"))
        #expect(time("1 Jan 2024 10:00:99999999999999999999 -9999") == time("1 Jan 2024 10:00:00"))
    }

    /// A subject of a megabyte of `re:` costs what 1 KiB does; references are bounded in number and length.
    @Test func hostileSubjectsAndReferencesAreBounded() {
        let subject = String(repeating: "re:", count: 350_000) + " x"
        let references = (0..<5000).map { "<id\($0)@example.org>" }.joined(separator: " ")
        let long = "<" + String(repeating: "a", count: 900) + "@b>"
        let message = ParsedMessage(
            parsing: Array(
                ("Subject: \(subject)\r\nReferences: \(references) \(long)\r\nMessage-ID: <x@y>\r\n\r\nb\r\n").utf8))
        #expect(message.sortKeys.subject == "R")  // the first KiB: 341 times "re:", then the "r" of the next
        #expect(message.sortKeys.references.count == SortKeys.referenceLimit)
        #expect(message.sortKeys.references.last == "<id4999@example.org>")
    }
}
