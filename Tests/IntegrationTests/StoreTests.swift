import IMAPEngine
import Testing

/// STORE and UID STORE (RFC 9051 §6.4.6, §6.4.9; RFC 3501 §6.4.6): replacing, adding and removing flags, .SILENT,
/// keywords and the FLAGS / PERMANENTFLAGS they bring, and what read-only mailboxes and invalid flags get.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct StoreTests {
    /// Seeds three plain messages, logs in and selects INBOX (this session owns them as \Recent).
    static func open(_ server: TestServer) async throws -> IMAPTestClient {
        try await server.seed(messages: (1...3).map { testMessage(subject: "m\($0)") })
        let c = try await server.login()
        try await c.expectOK("s", "SELECT INBOX")
        return c
    }

    /// The flags each untagged `* n FETCH` line of `lines` reports, by sequence number.
    static func flagsBySequence(_ lines: [String]) -> [Int: Set<String>] {
        var result: [Int: Set<String>] = [:]
        for line in lines where line.hasPrefix("* ") && line.contains(" FETCH (") {
            let number = line.dropFirst(2).prefix { $0.isNumber }
            if let n = Int(number), let flags = ResponseFields.flags(in: line) { result[n] = flags }
        }
        return result
    }

    @Test func replaceAddAndRemoveFlags() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // Each form answers with the new flags of every message it touched (RFC 9051 §6.4.6).
            let set = try await c.expectOK("a1", "STORE 1 FLAGS (\\Seen \\Flagged)")
            #expect(set.count == 1 && set.first?.hasPrefix("* 1 FETCH (FLAGS (") == true)
            #expect(Self.flagsBySequence(set) == [1: ["\\Seen", "\\Flagged", "\\Recent"]])
            #expect(
                Self.flagsBySequence(try await c.expectOK("a2", "STORE 1 +FLAGS (\\Answered)"))
                    == [1: ["\\Seen", "\\Flagged", "\\Answered", "\\Recent"]])
            #expect(
                Self.flagsBySequence(try await c.expectOK("a3", "STORE 1 -FLAGS (\\Flagged \\Seen)"))
                    == [1: ["\\Answered", "\\Recent"]])
            // A flag list without parentheses is allowed too (RFC 9051 §9, store-att-flags).
            #expect(
                Self.flagsBySequence(try await c.expectOK("a4", "STORE 2:3 +FLAGS \\Draft"))
                    == [2: ["\\Draft", "\\Recent"], 3: ["\\Draft", "\\Recent"]])
            // Replacing with the empty list clears every permanent flag.
            #expect(
                Self.flagsBySequence(try await c.expectOK("a5", "STORE 1:3 FLAGS ()"))
                    == [1: ["\\Recent"], 2: ["\\Recent"], 3: ["\\Recent"]])
            // System flag names are case-insensitive (RFC 9051 §9, note 1).
            #expect(
                Self.flagsBySequence(try await c.expectOK("a6", "store 1 +flags (\\seen \\FLAGGED)"))
                    == [1: ["\\Seen", "\\Flagged", "\\Recent"]])
        }
    }

    @Test func silentStoresAnswerOnlyTheTag() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            #expect(try await c.command("b1", "STORE 1 FLAGS.SILENT (\\Seen \\Deleted)").count == 1)
            #expect(try await c.command("b2", "STORE 2:3 +FLAGS.SILENT (\\Draft \\Answered)").count == 1)
            #expect(try await c.command("b3", "STORE 3 -FLAGS.SILENT (\\Answered)").count == 1)
            #expect(
                try await c.command("b4", "UID STORE 1:3 -FLAGS.SILENT (\\Deleted)").last?.hasPrefix("b4 OK") == true)
            let flags = try await c.expectOK("b5", "FETCH 1:3 (FLAGS)")
            #expect(
                Self.flagsBySequence(flags) == [
                    1: ["\\Seen", "\\Recent"], 2: ["\\Draft", "\\Answered", "\\Recent"], 3: ["\\Draft", "\\Recent"],
                ])
        }
    }

    @Test func newKeywordsAreAnnouncedInFlagsAndPermanentFlags() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            let other = try await server.login()
            let select = try await other.expectOK("o1", "SELECT INBOX")
            #expect(select.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"))
            // \* says new keywords may be created (RFC 9051 §7.1, PERMANENTFLAGS).
            let permanentFlags = ResponseFields.first(select, startingWith: "* OK [PERMANENTFLAGS (")
            #expect(permanentFlags?.contains("\\*)]") == true)

            let store = try await c.expectOK("k1", "STORE 1 +FLAGS ($Forwarded)")
            #expect(Self.flagsBySequence(store) == [1: ["$Forwarded", "\\Recent"]])
            // The new keyword is applicable from now on: a new FLAGS response lists it (RFC 9051 §7.3.5), and
            // PERMANENTFLAGS, if repeated, lists it too with \*.
            let announced = ResponseFields.first(store, startingWith: "* FLAGS (")
            #expect(announced.flatMap(ResponseFields.flags(in:))?.contains("$Forwarded") == true, "\(store)")
            for permanent in store where permanent.hasPrefix("* OK [PERMANENTFLAGS (") {
                #expect(permanent.contains("$Forwarded") && permanent.contains("\\*)]"))
            }

            // A custom keyword next to it, silently: still announced as applicable.
            let custom = try await c.expectOK("k2", "STORE 2 +FLAGS.SILENT (Project-X)")
            let customFlags = ResponseFields.first(custom, startingWith: "* FLAGS (")
            #expect(customFlags?.contains("Project-X") == true, "\(custom)")
            #expect(Self.flagsBySequence(custom).isEmpty)

            // The other session learns the new FLAGS and the changed messages at its next command.
            try await Task.sleep(for: .milliseconds(200))
            let noop = try await other.expectOK("o2", "NOOP")
            let flagsLine = noop.last(where: { $0.hasPrefix("* FLAGS (") })
            #expect(
                flagsLine.flatMap(ResponseFields.flags(in:)) == [
                    "\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "$Forwarded", "Project-X",
                ], "\(noop)")
            // Unsolicited FETCH responses carry UID (RFC 9051 §7.5.2).
            #expect(noop.contains("* 1 FETCH (UID 1 FLAGS ($Forwarded))"), "\(noop)")
            #expect(noop.contains("* 2 FETCH (UID 2 FLAGS (Project-X))"), "\(noop)")
            // Keywords are searchable.
            #expect(try await other.expectOK("o3", "SEARCH KEYWORD Project-X") == ["* SEARCH 2"])
            // A later SELECT lists them in FLAGS.
            let reselect = try await server.login()
            let reselected = try await reselect.expectOK("r1", "EXAMINE INBOX")
            let reselectedFlags = ResponseFields.first(reselected, startingWith: "* FLAGS (")
            #expect(
                reselectedFlags.flatMap(ResponseFields.flags(in:))?.isSuperset(of: ["$Forwarded", "Project-X"]) == true)
        }
    }

    @Test func recentAndUnknownSystemFlagsAreRefused() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            // \Recent is not a flag a client can set or clear (RFC 3501 §2.3.2), and \Foo is no system flag.
            #expect(try await c.command("r1", "STORE 1 +FLAGS (\\Recent)").last?.hasPrefix("r1 BAD") == true)
            #expect(try await c.command("r2", "STORE 1 -FLAGS (\\Recent)").last?.hasPrefix("r2 BAD") == true)
            #expect(try await c.command("r3", "STORE 1 FLAGS (\\Seen \\Foo)").last?.hasPrefix("r3 BAD") == true)
            #expect(try await c.command("r4", "UID STORE 1 +FLAGS (\\Foo)").last?.hasPrefix("r4 BAD") == true)
            // Nothing was changed by the refused commands.
            #expect(try await c.expectOK("r5", "FETCH 1 (FLAGS)") == ["* 1 FETCH (FLAGS (\\Recent))"])
        }
    }

    @Test func storeInAReadOnlyMailboxIsNo() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "ro")])
            let c = try await server.login()
            #expect(try await c.command("e1", "EXAMINE INBOX").last?.hasPrefix("e1 OK [READ-ONLY]") == true)
            #expect(try await c.command("e2", "STORE 1 +FLAGS (\\Seen)").last?.hasPrefix("e2 NO") == true)
            #expect(try await c.command("e3", "UID STORE 1 +FLAGS.SILENT (\\Deleted)").last?.hasPrefix("e3 NO") == true)
            let flags = try await c.expectOK("e4", "FETCH 1 (FLAGS)")
            #expect(flags.count == 1 && ResponseFields.flags(in: flags[0])?.subtracting(["\\Recent"]) == [])
        }
    }

    @Test func uidStoreResponsesIncludeTheUID() async throws {
        try await withTestServer { server in
            let c = try await Self.open(server)
            try await c.expectOK("u0", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            try await c.expectOK("u1", "EXPUNGE")
            // Now message 1 has UID 2 and message 2 has UID 3.
            let store = try await c.expectOK("u2", "UID STORE 3 +FLAGS (\\Flagged)")
            #expect(store.count == 1 && store[0].hasPrefix("* 2 FETCH (") && store[0].contains("UID 3"), "\(store)")
            #expect(ResponseFields.flags(in: store[0]) == ["\\Flagged", "\\Recent"])
            let both = try await c.expectOK("u3", "UID STORE 2:3 FLAGS (\\Seen)")
            #expect(both.count == 2)
            #expect(ResponseFields.first(both, startingWith: "* 1 FETCH (")?.contains("UID 2") == true)
            #expect(ResponseFields.first(both, startingWith: "* 2 FETCH (")?.contains("UID 3") == true)
            // UIDs that do not exist (any more) are no error.
            #expect(try await c.expectOK("u4", "UID STORE 1,9 +FLAGS (\\Answered)") == [])
        }
    }
}
