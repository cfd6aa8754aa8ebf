import Foundation
import IMAPEngine
import Testing

/// Issue #10 §5: OBJECTID (RFC 8474) over TCP, following the RFC's examples: MAILBOXID survives RENAME and is never
/// reused, EMAILID survives COPY and MOVE, THREADID is NIL.
@Suite(.enabled(if: TestEnvironment.ready, TestEnvironment.skipReason))
struct ObjectIDTests {
    /// The object id in `KEY (id)` on `line`.
    static func id(after key: String, in line: String?) -> String? {
        guard let line, let range = line.range(of: key + " (") else { return nil }
        let rest = line[range.upperBound...]
        return rest.firstIndex(of: ")").map { String(rest[..<$0]) }
    }

    @Test func mailboxIDs() async throws {
        try await withTestServer { server in
            let c = try await server.login()
            #expect(try await c.expectOK("c", "CAPABILITY").first?.contains(" OBJECTID") == true)
            // RFC 8474 §4.1: CREATE's OK carries the new MAILBOXID.
            let created = try await c.command("1", "CREATE foo").last
            let foo = try #require(Self.id(after: "[MAILBOXID", in: created), "\(created ?? "")")
            #expect(foo.utf8.count <= 255 && foo.utf8.allSatisfy { ObjectID.isIDChar($0) })
            let other = try #require(Self.id(after: "[MAILBOXID", in: try await c.command("2", "CREATE other").last))
            #expect(other != foo)
            // §4.2: RENAME keeps it; STATUS reports it (§4.3); SELECT too.
            try await c.expectOK("3", "RENAME foo bar")
            #expect(try await c.expectOK("4", "STATUS bar (MAILBOXID)") == ["* STATUS bar (MAILBOXID (\(foo)))"])
            let selected = try await c.expectOK("5", "SELECT bar")
            #expect(selected.contains("* OK [MAILBOXID (\(foo))] Ok"), "\(selected)")
            // A mailbox deleted and created again under the same name gets a new id.
            try await c.expectOK("6", "UNSELECT")
            try await c.expectOK("7", "DELETE bar")
            let again = try #require(Self.id(after: "[MAILBOXID", in: try await c.command("8", "CREATE bar").last))
            #expect(again != foo && again != other)
            let inbox = try await c.expectOK("9", "STATUS INBOX (MESSAGES MAILBOXID)").first ?? ""
            #expect(inbox.hasPrefix("* STATUS INBOX (MESSAGES 0 MAILBOXID (F"), "\(inbox)")
            await c.close()
        }
    }

    @Test func emailIDsAcrossCopyAndMove() async throws {
        try await withTestServer { server in
            try await server.seed(messages: [testMessage(subject: "one"), testMessage(subject: "two")])
            let c = try await server.login()
            try await c.expectOK("c", "CREATE Archive")
            try await c.expectOK("s", "SELECT INBOX")
            let fetched = try await c.expectOK("f", "FETCH 1:2 (EMAILID THREADID)")
            #expect(fetched.count == 2 && fetched.allSatisfy { $0.hasSuffix(" THREADID NIL)") }, "\(fetched)")
            let one = try #require(Self.id(after: "EMAILID", in: fetched.first))
            let two = try #require(Self.id(after: "EMAILID", in: fetched.last))
            #expect(one != two && one.utf8.allSatisfy { ObjectID.isIDChar($0) })

            // §5.1: a copy is the same email; MOVE keeps it too.
            try await c.expectOK("cp", "COPY 1 Archive")
            try await c.expectOK("mv", "MOVE 2 Archive")
            try await c.expectOK("s2", "SELECT Archive")
            let archived = try await c.expectOK("f2", "UID FETCH 1:* (EMAILID)")
            #expect(archived.map { Self.id(after: "EMAILID", in: $0) } == [one, two], "\(archived)")
            // §6: SEARCH EMAILID finds it in each mailbox; THREADID matches nothing; an id never given out neither.
            #expect(try await c.expectOK("q1", "SEARCH EMAILID \(two)") == ["* SEARCH 2"])
            try await c.expectOK("s3", "SELECT INBOX")
            #expect(try await c.expectOK("q2", "SEARCH EMAILID \(one)") == ["* SEARCH 1"])
            #expect(try await c.expectOK("q3", "SEARCH EMAILID \(two)") == ["* SEARCH"])
            #expect(try await c.expectOK("q4", "SEARCH THREADID T1") == ["* SEARCH"])
            #expect(try await c.expectOK("q5", "SEARCH EMAILID M99999999999999999999") == ["* SEARCH"])
            #expect(try await c.command("q6", "SEARCH EMAILID M1*").last?.hasPrefix("q6 BAD") == true)
            await c.close()
        }
    }
}
