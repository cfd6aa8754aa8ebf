import IMAPEngine
import Testing

/// Mailbox commands (RFC 9051 §6.3; RFC 3501 §6.3): CREATE, DELETE, RENAME, LIST with patterns and LIST-EXTENDED
/// (RFC 5258), LIST-STATUS (RFC 5819), LSUB / SUBSCRIBE / UNSUBSCRIBE, STATUS (with RFC 8438 SIZE), and
/// international names in modified UTF-7 and, after ENABLE IMAP4rev2, UTF-8.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct MailboxTests {
    typealias Item = ResponseFields.ListItem

    /// The LIST items of a command that must succeed, by name.
    static func list(_ c: IMAPTestClient, _ tag: String, _ command: String, kind: String = "LIST") async throws
        -> [String: Item]
    {
        let lines = try await c.expectOK(tag, command)
        let items = ResponseFields.listItems(lines, kind: kind)
        #expect(items.count == lines.count, "\(command): unparsed lines in \(lines)")
        return items
    }

    /// The attributes by name, without the optional \HasChildren / \HasNoChildren.
    static func attributes(_ items: [String: Item]) -> [String: Set<String>] {
        items.mapValues { $0.attributes.subtracting(["\\HasChildren", "\\HasNoChildren"]) }
    }

    /// "yes" / "no" / "?" for \HasChildren / \HasNoChildren / neither, by name.
    static func children(_ items: [String: Item]) -> [String: String] {
        items.mapValues { item in
            item.attributes.contains("\\HasChildren") ? "yes" : item.attributes.contains("\\HasNoChildren") ? "no" : "?"
        }
    }

    @Test func createMakesSuperiorsAndIgnoresATrailingSeparator() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE a/b/c")
            // RFC 9051 §6.3.4: a trailing separator only declares the intent; the name is created without it.
            try await c.expectOK("c2", "CREATE d/")
            let all = try await Self.list(c, "l1", "LIST \"\" *")
            #expect(Set(all.keys) == ["INBOX", "a", "a/b", "a/b/c", "d"])
            let delimiters = Set(all.values.map(\.delimiter))
            #expect(delimiters == ["/"])
            // The superiors CREATE made are real mailboxes (RFC 9051 §6.3.4 SHOULD create them).
            #expect(Self.attributes(all) == ["INBOX": [], "a": [], "a/b": [], "a/b/c": [], "d": []])
            #expect(Self.children(all) == ["INBOX": "no", "a": "yes", "a/b": "yes", "a/b/c": "no", "d": "no"])
            try await c.expectOK("c3", "SELECT a/b")
            // An existing name cannot be created again.
            #expect(try await c.command("c4", "CREATE a/b/c").last?.hasPrefix("c4 NO") == true)
            #expect(try await c.command("c5", "CREATE d").last?.hasPrefix("c5 NO") == true)
        }
    }

    /// RFC 6154 §3 CREATE-SPECIAL-USE: a mailbox is created with its special use, which LIST reports; a use that is
    /// taken, virtual (\\All, \\Flagged), unknown or doubled is refused with USEATTR and creates nothing.
    @Test func createWithASpecialUse() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE Outbox (USE (\\Sent))")
            try await c.expectOK("c2", "CREATE Plain (USE ())")
            for (n, attempt) in [
                "Sent2 (USE (\\Sent))", "All (USE (\\All))", "Odd (USE (\\Whatever))",
                "Both (USE (\\Drafts \\Trash))",
            ].enumerated() {
                let refused = try await c.command("r\(n)", "CREATE \(attempt)")
                #expect(refused.last?.hasPrefix("r\(n) NO [USEATTR]") == true, "\(attempt): \(refused)")
            }
            #expect(try await c.command("b", "CREATE Other (FROB)").last?.hasPrefix("b BAD") == true)
            let items = Self.attributes(try await Self.list(c, "l1", "LIST \"\" * RETURN (SPECIAL-USE)"))
            #expect(items == ["INBOX": [], "Outbox": ["\\Sent"], "Plain": []], "\(items)")
            let special = try await Self.list(c, "l2", "LIST (SPECIAL-USE) \"\" *")
            #expect(Set(special.keys) == ["Outbox"])
            #expect(try await c.command("c", "CAPABILITY").first?.contains(" CREATE-SPECIAL-USE") == true)
        }
    }

    @Test func listPatternsAndReferences() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            for (i, name) in ["a/b/c", "d", "Work/Projects/2024", "Work/Notes"].enumerated() {
                try await c.expectOK("c\(i)", "CREATE \(name)")
            }
            let cases: [(command: String, names: Set<String>)] = [
                (
                    "LIST \"\" *",
                    ["INBOX", "a", "a/b", "a/b/c", "d", "Work", "Work/Projects", "Work/Projects/2024", "Work/Notes"]
                ),
                // % does not match the hierarchy delimiter; * does (RFC 9051 §6.3.9).
                ("LIST \"\" %", ["INBOX", "a", "d", "Work"]),
                ("LIST \"\" a/%", ["a/b"]),
                ("LIST \"\" Work/%", ["Work/Projects", "Work/Notes"]),
                ("LIST \"\" Work/*", ["Work/Projects", "Work/Projects/2024", "Work/Notes"]),
                ("LIST \"\" %/%", ["a/b", "Work/Projects", "Work/Notes"]),
                ("LIST \"\" a*", ["a", "a/b", "a/b/c"]),
                ("LIST \"\" *oj*", ["Work/Projects", "Work/Projects/2024"]),
                ("LIST \"\" W%k", ["Work"]),
                ("LIST \"\" nosuch", []),
                // The reference is prefixed to the pattern (RFC 9051 §6.3.9).
                ("LIST a/ %", ["a/b"]),
                ("LIST a/ *", ["a/b", "a/b/c"]),
                ("LIST Work/ %", ["Work/Projects", "Work/Notes"]),
                // INBOX is case-insensitive.
                ("LIST \"\" inbox", ["INBOX"]),
            ]
            for (i, item) in cases.enumerated() {
                let items = try await Self.list(c, "l\(i)", item.command)
                #expect(Set(items.keys) == item.names, "\(item.command)")
            }
            // With CHILDREN requested, \HasChildren / \HasNoChildren MUST be there (RFC 9051 §6.3.9.5).
            let children = try await Self.list(c, "r1", "LIST \"\" * RETURN (CHILDREN)")
            #expect(
                Self.children(children) == [
                    "INBOX": "no", "a": "yes", "a/b": "yes", "a/b/c": "no", "d": "no", "Work": "yes",
                    "Work/Projects": "yes",
                    "Work/Projects/2024": "no", "Work/Notes": "no",
                ])
        }
    }

    @Test func listOfTheEmptyNameGivesTheDelimiter() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            // RFC 9051 §6.3.9: an empty mailbox name asks for the delimiter and the root; "" for a non-rooted one.
            #expect(try await c.expectOK("l1", "LIST \"\" \"\"") == ["* LIST (\\Noselect) \"/\" \"\""])
        }
    }

    @Test func deletedParentWithAChildIsNoselect() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE p/q")
            try await server.seed(mailbox: "p", messages: [testMessage(subject: "in p")])
            let delete = try await c.command("d1", "DELETE p")
            // RFC 9051 §6.3.5: either refuse (NO, ideally [HASCHILDREN]) or delete and mark the name \Noselect.
            if delete.last?.hasPrefix("d1 OK") == true {
                let items = try await Self.list(c, "l1", "LIST \"\" *")
                #expect(items["p"]?.attributes.contains("\\Noselect") == true, "\(items)")
                #expect(items["p"]?.attributes.contains("\\HasChildren") == true, "\(items)")
                #expect(items["p/q"]?.attributes.contains("\\Noselect") == false)
                // Its messages are gone and it cannot be selected.
                #expect(try await c.command("d2", "SELECT p").last?.hasPrefix("d2 NO") == true)
                #expect(try await c.command("d3", "STATUS p (MESSAGES)").last?.hasPrefix("d3 NO") == true)
                // A \Noselect name with inferiors cannot be deleted (RFC 9051 §6.3.5).
                #expect(try await c.command("d4", "DELETE p").last?.hasPrefix("d4 NO") == true)
                // Once the child is gone, the \Noselect name may remain (deletable) or vanish.
                try await c.expectOK("d5", "DELETE p/q")
                let after = try await Self.list(c, "l2", "LIST \"\" *")
                #expect(after["p/q"] == nil)
                if let p = after["p"] {
                    #expect(p.attributes.contains("\\Noselect"))
                    try await c.expectOK("d6", "DELETE p")
                }
            } else {
                #expect(delete.last?.hasPrefix("d1 NO") == true, "\(delete)")
            }
        }
    }

    @Test func subscriptionsLsubAndListSubscribed() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE a/b/c")
            try await c.expectOK("c2", "CREATE d")
            for (i, name) in ["a/b/c", "d", "nosuch"].enumerated() {
                try await c.expectOK("s\(i)", "SUBSCRIBE \(name)")
            }
            let lsub = try await Self.list(c, "l1", "LSUB \"\" *", kind: "LSUB")
            #expect(Set(lsub.keys).isSuperset(of: ["a/b/c", "d", "nosuch"]))
            #expect(lsub["a"] == nil && lsub["a/b"] == nil)
            // RFC 3501 §6.3.9: with %, a subscribed inferior brings its unsubscribed superior, flagged \Noselect.
            let lsubTop = try await Self.list(c, "l2", "LSUB \"\" %", kind: "LSUB")
            #expect(lsubTop["a"]?.attributes.contains("\\Noselect") == true, "\(lsubTop)")
            #expect(lsubTop["d"] != nil && lsubTop["a/b/c"] == nil)

            // LIST (SUBSCRIBED): \Subscribed on each, \NonExistent on names that are not mailboxes (RFC 5258 §3).
            try await c.expectOK("x1", "DELETE d")
            let subscribed = try await Self.list(c, "l3", "LIST (SUBSCRIBED) \"\" *")
            #expect(Set(subscribed.keys).isSuperset(of: ["a/b/c", "d", "nosuch"]))
            #expect(subscribed["a"] == nil && subscribed["a/b"] == nil)
            let unmarked = subscribed.values.filter { !$0.attributes.contains("\\Subscribed") }
            #expect(unmarked.isEmpty, "\(subscribed)")
            #expect(subscribed["d"]?.attributes.contains("\\NonExistent") == true, "\(subscribed)")
            #expect(subscribed["nosuch"]?.attributes.contains("\\NonExistent") == true, "\(subscribed)")
            #expect(subscribed["a/b/c"]?.attributes.contains("\\NonExistent") == false)

            // RETURN (SUBSCRIBED) marks the subscribed ones among existing mailboxes only.
            let returned = try await Self.list(c, "l4", "LIST \"\" * RETURN (SUBSCRIBED)")
            #expect(Set(returned.keys).isSuperset(of: ["INBOX", "a", "a/b", "a/b/c"]))
            #expect(returned["d"] == nil && returned["nosuch"] == nil)
            #expect(returned["a/b/c"]?.attributes.contains("\\Subscribed") == true)
            #expect(returned["a"]?.attributes.contains("\\Subscribed") == false)

            // RECURSIVEMATCH: a parent that is not subscribed itself but has a subscribed child (RFC 5258 §3.5).
            let recursive = try await Self.list(c, "l5", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %")
            #expect(recursive["a"]?.extended == "(\"CHILDINFO\" (\"SUBSCRIBED\"))", "\(recursive)")
            #expect(recursive["a"]?.attributes.contains("\\Subscribed") == false)

            // UNSUBSCRIBE removes the name, whether the mailbox exists or not.
            try await c.expectOK("u1", "UNSUBSCRIBE d")
            try await c.expectOK("u2", "UNSUBSCRIBE a/b/c")
            let left = try await Self.list(c, "l6", "LSUB \"\" *", kind: "LSUB")
            #expect(left["d"] == nil && left["a/b/c"] == nil && left["nosuch"] != nil)
        }
    }

    @Test func listReturnStatus() async throws {
        try await withTestServer { server in
            try await server.seed(
                messages: (1...3).map { testMessage(subject: "m\($0)") },
                flags: [MessageFlags(system: .seen), .init(), .init()])
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE Work/Old")
            try await c.expectOK("c2", "CREATE Empty")
            try await server.seed(mailbox: "Work", messages: [testMessage(subject: "w1"), testMessage(subject: "w2")])
            try await c.expectOK("c3", "DELETE Work")  // leaves a \Noselect Work with its child
            let lines = try await c.expectOK("l1", "LIST \"\" * RETURN (STATUS (MESSAGES UNSEEN))")
            // RFC 5819 §2: each selectable mailbox's LIST is followed by its STATUS; \Noselect ones get none.
            var statusAfter: [String: [String: String]] = [:]
            for (i, line) in lines.enumerated() {
                guard let item = ResponseFields.listItem(line) else { continue }
                let next = i + 1 < lines.count ? lines[i + 1] : ""
                if let status = ResponseFields.status(next, mailbox: item.name) { statusAfter[item.name] = status }
            }
            #expect(
                statusAfter == [
                    "INBOX": ["MESSAGES": "3", "UNSEEN": "2"], "Empty": ["MESSAGES": "0", "UNSEEN": "0"],
                    "Work/Old": ["MESSAGES": "0", "UNSEEN": "0"],
                ], "\(lines)")
            // RFC 5819 §2: a listed mailbox without STATUS is \Noselect.
            let work = ResponseFields.listItems(lines)["Work"]
            #expect(work == nil || work?.attributes.contains("\\Noselect") == true, "\(lines)")
        }
    }

    @Test func renameTakesInferiorsAlong() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE a/b/c")
            try await server.seed(mailbox: "a/b/c", messages: [testMessage(subject: "deep")])
            try await c.expectOK("r1", "RENAME a z")
            let items = try await Self.list(c, "l1", "LIST \"\" *")
            // RFC 9051 §6.3.6: inferior hierarchical names MUST be renamed too.
            #expect(Set(items.keys) == ["INBOX", "z", "z/b", "z/b/c"])
            #expect(try await c.expectOK("s1", "STATUS z/b/c (MESSAGES)") == ["* STATUS z/b/c (MESSAGES 1)"])
            // Renaming to a deeper name creates its superiors (SHOULD); renaming onto or from a missing name is NO.
            try await c.expectOK("r2", "RENAME z/b/c x/y/z")
            let moved = try await Self.list(c, "l2", "LIST \"\" *")
            #expect(Set(moved.keys).isSuperset(of: ["x", "x/y", "x/y/z"]) && moved["z/b/c"] == nil)
            #expect(try await c.command("r3", "RENAME nosuch other").last?.hasPrefix("r3 NO") == true)
            #expect(try await c.command("r4", "RENAME z x").last?.hasPrefix("r4 NO") == true)
        }
    }

    @Test func renameInboxMovesItsMessagesAndLeavesItEmpty() async throws {
        try await withTestServer { server in
            try await server.seed(messages: (1...3).map { testMessage(subject: "m\($0)") })
            let c = try await server.login()
            // An earlier "Archive" with higher UIDs, deleted: the renamed one must not reuse its identity.
            try await c.expectOK("c1", "CREATE Archive")
            try await server.seed(mailbox: "Archive", messages: (1...5).map { testMessage(subject: "old \($0)") })
            let old = ResponseFields.status(
                try await c.expectOK("c2", "STATUS Archive (UIDVALIDITY UIDNEXT)").first ?? "", mailbox: "Archive")
            try await c.expectOK("c3", "DELETE Archive")
            let before = ResponseFields.status(
                try await c.expectOK("c4", "STATUS INBOX (UIDVALIDITY UIDNEXT)").first ?? "", mailbox: "INBOX")

            try await c.expectOK("r1", "RENAME INBOX Archive")
            // RFC 9051 §6.3.6: all messages move; INBOX stays and is empty.
            let inbox = ResponseFields.status(
                try await c.expectOK("s1", "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)").first ?? "", mailbox: "INBOX")
            #expect(inbox?["MESSAGES"] == "0")
            // INBOX must not hand out UIDs 1–3 again under the same UIDVALIDITY.
            let inboxKeepsIdentity = inbox?["UIDVALIDITY"] == before?["UIDVALIDITY"]
            #expect(!inboxKeepsIdentity || Int(inbox?["UIDNEXT"] ?? "") ?? 0 >= 4, "\(String(describing: inbox))")
            let archive = ResponseFields.status(
                try await c.expectOK("s2", "STATUS Archive (MESSAGES UIDNEXT UIDVALIDITY)").first ?? "",
                mailbox: "Archive")
            #expect(archive?["MESSAGES"] == "3")
            // The new Archive is a new incarnation of the name (RFC 9051 §2.3.1.1, §6.3.5).
            #expect(archive?["UIDVALIDITY"] != nil && archive?["UIDVALIDITY"] != old?["UIDVALIDITY"])
            let select = try await c.expectOK("s3", "SELECT Archive")
            let validityLine = ResponseFields.first(select, startingWith: "* OK [UIDVALIDITY ")
            #expect(validityLine?.hasPrefix("* OK [UIDVALIDITY \(archive?["UIDVALIDITY"] ?? "-")]") == true)
            #expect(select.contains("* 3 EXISTS"))
            let subjects = try await c.command("s4", "FETCH 1:3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            #expect(subjects.contains("Subject: m1") && subjects.contains("Subject: m3"))
            let listed = try await Self.list(c, "l1", "LIST \"\" *")
            #expect(Set(listed.keys) == ["INBOX", "Archive"])
            #expect(try await c.expectOK("s5", "SELECT INBOX").contains("* 0 EXISTS"))
        }
    }

    @Test func deletingTheSelectedMailbox() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE Box")
            try await server.seed(mailbox: "Box", messages: (1...3).map { testMessage(subject: "b\($0)") })
            let first = ResponseFields.status(
                try await c.expectOK("c2", "STATUS Box (UIDVALIDITY UIDNEXT)").first ?? "", mailbox: "Box")
            try await c.expectOK("c3", "SELECT Box")
            try await c.expectOK("d1", "DELETE Box")
            // The connection stays usable and the mailbox is gone.
            #expect(try await c.command("d2", "NOOP").last?.hasPrefix("d2 OK") == true)
            #expect(try await Self.list(c, "d3", "LIST \"\" *")["Box"] == nil)
            #expect(try await c.command("d4", "STATUS Box (MESSAGES)").last?.hasPrefix("d4 NO") == true)
            #expect(try await c.command("d5", "SELECT Box").last?.hasPrefix("d5 NO") == true)
            // Recreated, the name is a new mailbox: new UIDVALIDITY or UIDs above the old ones (RFC 9051 §6.3.5).
            try await c.expectOK("d6", "CREATE Box")
            let second = ResponseFields.status(
                try await c.expectOK("d7", "STATUS Box (MESSAGES UIDVALIDITY UIDNEXT)").first ?? "", mailbox: "Box")
            #expect(second?["MESSAGES"] == "0")
            let sameValidity = second?["UIDVALIDITY"] == first?["UIDVALIDITY"]
            #expect(!sameValidity || Int(second?["UIDNEXT"] ?? "") ?? 0 >= 4)
        }
    }

    @Test func statusReportsExactValues() async throws {
        try await withTestServer { server in
            let messages = (1...3).map {
                testMessage(subject: "s\($0)", body: String(repeating: "x", count: $0 * 10) + "\r\n")
            }
            let c = try await server.login()
            try await c.expectOK("c1", "CREATE Box")
            try await server.seed(
                mailbox: "Box", messages: messages,
                flags: [MessageFlags(system: .seen), MessageFlags(system: .deleted), .init()])
            let lines = try await c.expectOK(
                "s1", "STATUS Box (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)")
            #expect(lines.count == 1)
            let status = ResponseFields.status(lines.first ?? "", mailbox: "Box")
            let validity = status?["UIDVALIDITY"] ?? ""
            let size = messages.map(\.utf8.count).reduce(0, +)
            #expect(
                status == [
                    "MESSAGES": "3", "UIDNEXT": "4", "UIDVALIDITY": validity, "UNSEEN": "2", "DELETED": "1",
                    "SIZE": "\(size)", "RECENT": "3",
                ], "\(lines)")
            #expect(UInt32(validity) ?? 0 > 0)
            // The same UIDVALIDITY as SELECT reports; one item gives exactly one item.
            #expect(try await c.expectOK("s2", "EXAMINE Box").contains("* OK [UIDVALIDITY \(validity)] UIDs valid"))
            try await c.expectOK("s3", "UNSELECT")
            #expect(try await c.expectOK("s4", "STATUS Box (MESSAGES)") == ["* STATUS Box (MESSAGES 3)"])
            #expect(try await c.command("s6", "STATUS nosuch (MESSAGES)").last?.hasPrefix("s6 NO") == true)
        }
    }

    @Test func internationalNamesInModifiedUTF7AndUTF8() async throws {
        try await withTestServer { server in
            let legacy = try await server.login()
            try await legacy.expectOK("c1", "CREATE &AMk-picerie")
            try await legacy.expectOK("c2", "CREATE \"Tom &- Jerry\"")
            let listed = try await legacy.expectOK("l1", "LIST \"\" *")
            #expect(listed.contains("* LIST (\\HasNoChildren) \"/\" &AMk-picerie"), "\(listed)")
            #expect(Set(ResponseFields.listItems(listed).keys) == ["INBOX", "&AMk-picerie", "Tom &- Jerry"])
            #expect(
                try await legacy.expectOK("s1", "STATUS &AMk-picerie (MESSAGES)") == [
                    "* STATUS &AMk-picerie (MESSAGES 0)"
                ])

            // After ENABLE IMAP4rev2 names are UTF-8 (RFC 9051 §5.1, Appendix A.1 is for IMAP4rev1 only).
            let modern = try await server.login()
            #expect(try await modern.expectOK("e1", "ENABLE IMAP4rev2") == ["* ENABLED IMAP4rev2"])
            let utf8 = try await modern.expectOK("l2", "LIST \"\" *")
            #expect(utf8.contains("* LIST (\\HasNoChildren) \"/\" \"\u{C9}picerie\""), "\(utf8)")
            #expect(Set(ResponseFields.listItems(utf8).keys) == ["INBOX", "\u{C9}picerie", "Tom & Jerry"])
            try await modern.expectOK("c3", "CREATE \"Caf\u{E9}\"")
            try await modern.expectOK("s2", "SELECT \"\u{C9}picerie\"")
            // The IMAP4rev1 session sees the UTF-8 name in modified UTF-7.
            let back = try await legacy.expectOK("l3", "LIST \"\" Caf*")
            #expect(back == ["* LIST (\\HasNoChildren) \"/\" Caf&AOk-"], "\(back)")
        }
    }

    @Test func invalidModifiedUTF7IsRefused() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            // RFC 9051 Appendix A.1: names must end in US-ASCII, base64 must not encode printable ASCII, and only the
            // modified base64 alphabet is allowed; servers SHOULD verify names given to CREATE.
            for (i, name) in ["&AMk", "&AGE-", "&Jjo!", "&AMk/-", "&ZZZ-"].enumerated() {
                let lines = try await c.command("c\(i)", "CREATE \"\(name)\"")
                #expect(lines.last?.hasPrefix("c\(i) NO") == true, "\(name): \(lines)")
            }
            #expect(Set(try await Self.list(c, "l1", "LIST \"\" *").keys) == ["INBOX"])
        }
    }

    /// RFC 9051 Appendix A.1: "&U,BTFw-&ZeVnLIqe-" has a superfluous shift and is not permitted; servers SHOULD refuse
    /// it and MUST in any case preserve the exact form of a modified base64 name.
    @Test func superfluousShiftIsRefusedOrKeptExactly() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            let lines = try await c.command("c1", "CREATE \"&U,BTFw-&ZeVnLIqe-\"")
            if lines.last?.hasPrefix("c1 OK") == true {
                let names = Set(try await Self.list(c, "l1", "LIST \"\" *").keys)
                #expect(names == ["INBOX", "&U,BTFw-&ZeVnLIqe-"], "created as given, listed as \(names)")
            } else {
                #expect(lines.last?.hasPrefix("c1 NO") == true, "\(lines)")
            }
        }
    }
}
