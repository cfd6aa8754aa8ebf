import Foundation
import IMAPEngine
import Testing

/// APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID), COPY and MOVE (RFC 9051 §6.4.7–8, RFC 6851, RFC 4315 COPYUID),
/// EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9), CLOSE and UNSELECT (RFC 9051 §6.4.1–2).
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct AppendCopyMoveTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The value of a `[CODE a b c]` response code in `line`, split at spaces.
    static func code(_ name: String, in line: String?) -> [String]? {
        guard let line, let start = line.range(of: "[\(name) ") else { return nil }
        let rest = line[start.upperBound...]
        guard let end = rest.firstIndex(of: "]") else { return nil }
        return rest[..<end].split(separator: " ").map(String.init)
    }

    static func validity(_ c: IMAPTestClient, _ tag: String, _ mailbox: String) async throws -> String {
        let lines = try await c.expectOK(tag, "STATUS \(mailbox) (UIDVALIDITY)")
        return ResponseFields.status(lines.first ?? "", mailbox: mailbox)?["UIDVALIDITY"] ?? "?"
    }

    @Test func appendKeepsFlagsAndDateAndReportsAppendUID() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            let message = Self.bytes("From: a@example.com\r\nSubject: appended\r\n\r\nHello there.\r\n")
            let first = try await c.append(
                "a1", to: "INBOX", message, options: "(\\Seen \\Flagged $Label1) \"05-Mar-2021 10:11:12 +0130\"")
            let validity = try await Self.validity(c, "v1", "INBOX")
            // RFC 4315 §3: OK [APPENDUID <uidvalidity> <uid>].
            #expect(first.count == 1 && first[0].hasPrefix("a1 OK [APPENDUID \(validity) 1]"), "\(first)")
            let second = try await c.append("a2", to: "INBOX", message)
            #expect(second.count == 1 && second[0].hasPrefix("a2 OK [APPENDUID \(validity) 2]"), "\(second)")

            try await c.expectOK("s1", "SELECT INBOX")
            let fetch = try await c.expectOKKeepingLiterals(
                "f1", "FETCH 1 (INTERNALDATE RFC822.SIZE FLAGS BODY.PEEK[])")
            #expect(fetch.count == 1)
            let line = fetch.first ?? ""
            // The date-time as given, zone included (RFC 9051 §6.3.12); flags as given.
            #expect(line.contains("INTERNALDATE \" 5-Mar-2021 10:11:12 +0130\""), "\(line)")
            #expect(line.contains("RFC822.SIZE \(message.count)"))
            #expect(ResponseFields.flags(in: line) == ["\\Seen", "\\Flagged", "$Label1", "\\Recent"])
            #expect(
                ResponseFields.nstring(after: "BODY[] ", in: line)?.value
                    == .string(String(decoding: message, as: UTF8.self)))
            // Without flags, the message has none (but \Recent).
            #expect(try await c.expectOK("f2", "FETCH 2 (FLAGS)") == ["* 2 FETCH (FLAGS (\\Recent))"])
        }
    }

    /// RFC 3502 MULTIAPPEND: several messages in one APPEND, each with its own flags and date, stored together with
    /// one APPENDUID set; when one of them cannot be stored, none is.
    @Test func multiappendStoresAllOrNothing() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            #expect(try await c.command("c", "CAPABILITY").first?.contains(" MULTIAPPEND") == true)
            let one = Self.bytes("Subject: one\r\n\r\n1\r\n")
            let two = Self.bytes("Subject: two\r\n\r\ntwo\r\n")
            try await c.send(
                Self.bytes("a APPEND INBOX (\\Seen) {\(one.count)+}\r\n") + one
                    + Self.bytes(" (\\Flagged $Work) \"11-Feb-2024 10:00:00 +0100\" {\(two.count)+}\r\n") + two
                    + Self.bytes(" {\(one.count)+}\r\n") + one + [13, 10])
            let stored = try await c.readResponse(tag: "a")
            let validity = try await Self.validity(c, "v", "INBOX")
            #expect(stored.last == "a OK [APPENDUID \(validity) 1:3] APPEND completed", "\(stored)")
            try await c.expectOK("s", "SELECT INBOX")
            let fetched = try await c.expectOK("f", "FETCH 1:3 (FLAGS INTERNALDATE)")
            #expect(fetched.count == 3 && fetched[0].contains("FLAGS (\\Seen"), "\(fetched)")
            #expect(fetched[1].contains("\\Flagged $Work") && fetched[1].contains("\"11-Feb-2024 10:00:00 +0100\""))
            // An empty second message: nothing of the command is stored.
            try await c.send(
                Self.bytes("b APPEND INBOX {\(one.count)+}\r\n") + one + Self.bytes(" {0+}\r\n\r\n"))
            #expect(try await c.readResponse(tag: "b").last?.hasPrefix("b NO") == true)
            // A missing mailbox: TRYCREATE, nothing stored.
            try await c.send(
                Self.bytes("d APPEND Nowhere {\(one.count)+}\r\n") + one + Self.bytes(" {\(one.count)+}\r\n") + one
                    + [13, 10])
            #expect(try await c.readResponse(tag: "d").last?.hasPrefix("d NO [TRYCREATE]") == true)
            #expect(try await c.expectOK("n", "STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 3)"])
        }
    }

    @Test func appendToAMissingMailboxIsTryCreate() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            let lines = try await c.append("a1", to: "nosuch", Self.bytes("Subject: x\r\n\r\nx\r\n"))
            // RFC 9051 §6.3.12: the mailbox is not created, and the NO says TRYCREATE.
            #expect(lines.count == 1 && lines[0].hasPrefix("a1 NO [TRYCREATE]"), "\(lines)")
            #expect(try await c.command("a2", "STATUS nosuch (MESSAGES)").last?.hasPrefix("a2 NO") == true)
        }
    }

    @Test func zeroLengthAppendIsRefused() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            #expect(try await c.append("z1", to: "INBOX", []).last?.hasPrefix("z1 NO") == true)
            let (_, lines) = try await c.commandWithLiteral("z2", "APPEND INBOX ", literal: [])
            #expect(lines.last?.hasPrefix("z2 NO") == true, "\(lines)")
            #expect(try await c.expectOK("z3", "STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 0)"])
        }
    }

    @Test func synchronizingLiteralWaitsForTheContinuation() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            let message = Self.bytes("Subject: sync\r\n\r\nbody\r\n")
            try await c.sendLine("a1 APPEND INBOX (\\Seen) {\(message.count)}")
            // RFC 9051 §4.3, §7.6: the server asks for the literal with "+" and then waits for it.
            #expect(try await c.readLine().hasPrefix("+"))
            #expect(await c.isSilent(for: .milliseconds(200)))
            try await c.send(message + Self.bytes("\r\n"))
            let lines = try await c.readResponse(tag: "a1")
            #expect(lines.count == 1 && lines[0].hasPrefix("a1 OK [APPENDUID "), "\(lines)")
            try await c.expectOK("s1", "SELECT INBOX")
            let body = try await c.expectOKKeepingLiterals("f1", "FETCH 1 (BODY.PEEK[])")
            #expect(
                ResponseFields.nstring(after: "BODY[] ", in: body.first ?? "")?.value
                    == .string("Subject: sync\r\n\r\nbody\r\n"))
        }
    }

    @Test func bareLineFeedsAreReturnedAsCRLF() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            let lines = try await c.append("a1", to: "INBOX", Self.bytes("Subject: y\n\nbody\nx\n"))
            #expect(lines.last?.hasPrefix("a1 OK") == true, "\(lines)")
            try await c.expectOK("s1", "SELECT INBOX")
            let expected = "Subject: y\r\n\r\nbody\r\nx\r\n"
            let fetch = try await c.expectOKKeepingLiterals("f1", "FETCH 1 (RFC822.SIZE BODY.PEEK[] BINARY.PEEK[1])")
            let line = fetch.first ?? ""
            // IMAP lines end in CRLF; RFC822.SIZE counts the octets that BODY[] returns (RFC 9051 §2.3.4).
            #expect(line.hasPrefix("* 1 FETCH (RFC822.SIZE \(expected.utf8.count) "), "\(line)")
            #expect(ResponseFields.nstring(after: "BODY[] ", in: line)?.value == .string(expected))
            #expect(ResponseFields.nstring(after: "BINARY[1] ", in: line)?.value == .string("body\r\nx\r\n"))
        }
    }

    @Test func copyReportsCopyUIDAndKeepsFlags() async throws {
        try await withTestServer { server in
            try await server.seed(
                messages: (1...3).map { testMessage(subject: "m\($0)") },
                flags: [.init(), MessageFlags(system: [.flagged, .answered], keywords: ["$Label2"]), .init()])
            let c = try await server.login()
            try await c.expectOK("c0", "CREATE Dest")
            try await server.seed(mailbox: "Dest", messages: [testMessage(subject: "already there")])
            let validity = try await Self.validity(c, "v1", "Dest")
            try await c.expectOK("s1", "SELECT INBOX")

            let copy = try await c.command("c1", "COPY 2:3 Dest")
            #expect(copy.count == 1, "\(copy)")
            // RFC 4315 §3: OK [COPYUID <uidvalidity> <source uids> <destination uids>], in matching order.
            let copyUID = Self.code("COPYUID", in: copy.last)
            #expect(copy.last?.hasPrefix("c1 OK [COPYUID ") == true)
            #expect(copyUID?.first == validity)
            #expect(ResponseFields.numbers(copyUID?.dropFirst().first ?? "") == [2, 3])
            #expect(ResponseFields.numbers(copyUID?.last ?? "") == [2, 3])
            #expect(copyUID?.count == 3)
            let uidCopy = try await c.command("c2", "UID COPY 3 Dest")
            #expect(Self.code("COPYUID", in: uidCopy.last) == [validity, "3", "4"], "\(uidCopy)")
            // The source is untouched; the destination has the copies with their flags.
            #expect(try await c.expectOK("n1", "NOOP").isEmpty)
            let other = try await server.login()
            try await other.expectOK("o1", "EXAMINE Dest")
            let flags = try await other.expectOK("o2", "UID FETCH 2:4 (FLAGS)")
            #expect(
                ResponseFields.flags(in: ResponseFields.first(flags, startingWith: "* 2 FETCH") ?? "")?.isSuperset(of: [
                    "\\Flagged", "\\Answered", "$Label2",
                ]) == true, "\(flags)")
            #expect(
                ResponseFields.flags(in: ResponseFields.first(flags, startingWith: "* 3 FETCH") ?? "")?.contains(
                    "\\Flagged") == false)
            // A missing destination: NO [TRYCREATE] (RFC 9051 §6.4.7).
            #expect(try await c.command("c3", "COPY 1 nosuch").last?.hasPrefix("c3 NO [TRYCREATE]") == true)
        }
    }

    @Test func moveSendsCopyUIDThenExpunges() async throws {
        try await withTestServer { server in
            try await server.seed(
                messages: (1...5).map { testMessage(subject: "m\($0)") },
                flags: [.init(), MessageFlags(system: .flagged), .init(), .init(), .init()])
            let c = try await server.login()
            try await c.expectOK("c0", "CREATE Dest")
            let validity = try await Self.validity(c, "v1", "Dest")
            try await c.expectOK("s1", "SELECT INBOX")

            let move = try await c.command("m1", "MOVE 2:3 Dest")
            // RFC 6851 §4.3: the untagged OK with COPYUID comes before the EXPUNGE responses.
            #expect(move.count == 4, "\(move)")
            #expect(move.first?.hasPrefix("* OK [COPYUID \(validity) ") == true, "\(move)")
            let copyUID = Self.code("COPYUID", in: move.first)
            #expect(copyUID?.count == 3)
            #expect(ResponseFields.numbers(copyUID?.dropFirst().first ?? "") == [2, 3])
            #expect(ResponseFields.numbers(copyUID?.last ?? "") == [1, 2])
            // Messages 2 and 3 go: "2 EXPUNGE" twice, or "3" then "2".
            let expunges = Array(move.dropFirst().dropLast())
            #expect(
                expunges == ["* 2 EXPUNGE", "* 2 EXPUNGE"] || expunges == ["* 3 EXPUNGE", "* 2 EXPUNGE"], "\(move)")
            #expect(move.last?.hasPrefix("m1 OK") == true)
            #expect(
                try await c.expectOK("f1", "FETCH 1:* (UID)") == [
                    "* 1 FETCH (UID 1)", "* 2 FETCH (UID 4)", "* 3 FETCH (UID 5)",
                ])

            let uidMove = try await c.command("m2", "UID MOVE 5 Dest")
            #expect(uidMove.count == 3, "\(uidMove)")
            #expect(Self.code("COPYUID", in: uidMove.first) == [validity, "5", "3"], "\(uidMove)")
            #expect(uidMove.dropFirst().first == "* 3 EXPUNGE")
            // A missing destination: NO [TRYCREATE], nothing expunged.
            let missing = try await c.command("m3", "MOVE 1 nosuch")
            #expect(missing.count == 1 && missing[0].hasPrefix("m3 NO [TRYCREATE]"), "\(missing)")
            #expect(try await c.expectOK("f2", "FETCH 1:* (UID)") == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 4)"])
            // The moved messages keep their flags.
            let other = try await server.login()
            try await other.expectOK("o1", "EXAMINE Dest")
            let flags = try await other.expectOK("o2", "FETCH 1 (FLAGS)")
            #expect(ResponseFields.flags(in: flags.first ?? "")?.contains("\\Flagged") == true, "\(flags)")
            #expect(try await other.expectOK("o3", "STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 2)"])
        }
    }

    @Test func expungeAndUidExpunge() async throws {
        try await withTestServer { server in
            let deleted = MessageFlags(system: .deleted)
            try await server.seed(
                messages: (1...5).map { testMessage(subject: "m\($0)") },
                flags: [deleted, deleted, .init(), deleted, .init()])
            let c = try await server.login()
            try await c.expectOK("s1", "SELECT INBOX")
            // UID EXPUNGE removes only the given UIDs that are \Deleted (RFC 9051 §6.4.9).
            #expect(try await c.command("x1", "UID EXPUNGE 2").dropLast() == ["* 2 EXPUNGE"])
            #expect(try await c.command("x2", "UID EXPUNGE 3:5").dropLast() == ["* 3 EXPUNGE"])
            #expect(
                try await c.expectOK("f1", "FETCH 1:* (UID)") == [
                    "* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 5)",
                ])
            // EXPUNGE removes every \Deleted message.
            #expect(try await c.command("x3", "EXPUNGE").dropLast() == ["* 1 EXPUNGE"])
            #expect(try await c.command("x4", "EXPUNGE").count == 1)
            #expect(try await c.expectOK("f2", "FETCH 1:* (UID)") == ["* 1 FETCH (UID 3)", "* 2 FETCH (UID 5)"])
        }
    }

    @Test func closeExpungesSilentlyAndUnselectDoesNot() async throws {
        try await withTestServer { server in
            try await server.seed(
                messages: (1...3).map { testMessage(subject: "m\($0)") },
                flags: [.init(), MessageFlags(system: .deleted), .init()])
            let c = try await server.login()
            try await c.expectOK("s1", "SELECT INBOX")
            // UNSELECT leaves \Deleted messages alone (RFC 9051 §6.4.2).
            #expect(try await c.command("u1", "UNSELECT").count == 1)
            #expect(try await c.command("u2", "FETCH 1 (FLAGS)").last?.hasPrefix("u2 BAD") == true)
            #expect(try await c.expectOK("u3", "STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 3)"])
            // CLOSE after EXAMINE removes nothing.
            try await c.expectOK("e1", "EXAMINE INBOX")
            #expect(try await c.command("e2", "CLOSE").count == 1)
            #expect(try await c.expectOK("e3", "STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 3)"])
            // CLOSE after SELECT expunges, without untagged EXPUNGE responses (RFC 9051 §6.4.1).
            try await c.expectOK("c1", "SELECT INBOX")
            let close = try await c.command("c2", "CLOSE")
            #expect(close.count == 1 && close[0].hasPrefix("c2 OK"), "\(close)")
            #expect(try await c.command("c3", "FETCH 1 (FLAGS)").last?.hasPrefix("c3 BAD") == true)
            #expect(try await c.expectOK("c4", "STATUS INBOX (MESSAGES)") == ["* STATUS INBOX (MESSAGES 2)"])
        }
    }
}
