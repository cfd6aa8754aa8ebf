import Testing

@testable import IMAPEngine

/// THREAD's algorithms (RFC 5256 §4) on hand-made inputs, written the way the THREAD response shows them (message n
/// is input index n - 1).
@Suite struct ThreadingTests {
    static func message(
        _ id: String?, _ references: [String] = [], subject: String = "S", reply: Bool = false, date: Int64 = 0
    ) -> Threading.Message {
        Threading.Message(messageID: id, references: references, subject: subject, isReplyOrForward: reply, date: date)
    }

    static func references(_ messages: [Threading.Message]) -> String {
        Threading.wire(Threading.references(messages)) { UInt32($0 + 1) }
    }

    /// THREAD=REFS: no gathering by subject, and the thread with the most recent message last.
    @Test func refsOrdersThreadsByTheirLatestMessage() {
        let messages = [
            Self.message("<a@x>", subject: "one", date: 1), Self.message("<b@x>", subject: "two", date: 2),
            Self.message("<c@x>", ["<a@x>"], subject: "one", reply: true, date: 5),
            // Same base subject as 2, no references: REFERENCES would gather it with 2, REFS leaves it apart.
            Self.message("<d@x>", subject: "two", reply: true, date: 3),
        ]
        #expect(Threading.wire(Threading.references(messages)) { UInt32($0 + 1) } == "(1 3)(2 4)")
        #expect(Threading.wire(Threading.references(messages, refs: true)) { UInt32($0 + 1) } == "(2)(4)(1 3)")
    }

    @Test func chainsBranchesAndDummies() {
        // A chain through References, with a branch off the first message.
        #expect(
            Self.references([
                Self.message("<a@x>", date: 1), Self.message("<b@x>", ["<a@x>"], date: 2),
                Self.message("<c@x>", ["<a@x>", "<b@x>"], date: 3), Self.message("<d@x>", ["<a@x>"], date: 4),
            ]) == "(1 (2 3)(4))")
        // Two replies to a message that is not there: a dummy with two children stays at the top.
        #expect(
            Self.references([
                Self.message("<b@x>", ["<gone@x>"], date: 1), Self.message("<c@x>", ["<gone@x>"], date: 2),
            ])
                == "((1)(2))")
        // A single reply to a missing message is promoted to the top.
        #expect(Self.references([Self.message("<b@x>", ["<gone@x>"])]) == "(1)")
        // Below the top, a dummy's children are promoted whatever their number.
        #expect(
            Self.references([
                Self.message("<a@x>", date: 1), Self.message("<c@x>", ["<a@x>", "<gone@x>"], date: 2),
                Self.message("<d@x>", ["<a@x>", "<gone@x>"], date: 3),
            ]) == "(1 (2)(3))")
    }

    @Test func subjectsGatherThreadsWithoutReferences() {
        // A reply by subject goes under the original; two originals with one subject share a dummy.
        #expect(
            Self.references([
                Self.message("<a@x>", subject: "HELLO", date: 1),
                Self.message("<b@x>", subject: "HELLO", reply: true, date: 2),
            ]) == "(1 2)")
        #expect(
            Self.references([
                Self.message("<a@x>", subject: "HELLO", date: 1), Self.message("<b@x>", subject: "HELLO", date: 2),
            ]) == "((1)(2))")
        // An empty subject gathers nothing.
        #expect(
            Self.references([Self.message("<a@x>", subject: "", date: 1), Self.message("<b@x>", subject: "", date: 2)])
                == "(1)(2)")
    }

    @Test func loopsDuplicatesAndMissingIDsStayFinite() {
        // a references b and b references a: no loop, both once.
        let looped = Self.references([
            Self.message("<a@x>", ["<b@x>"], subject: "A", date: 1),
            Self.message("<b@x>", ["<a@x>"], subject: "B", date: 2),
        ])
        #expect(looped == "(1 2)" || looped == "(2 1)", "\(looped)")
        // A repeated Message-ID is the first message's; the second is a message of its own.
        #expect(
            Self.references([
                Self.message("<a@x>", subject: "A", date: 1), Self.message("<a@x>", subject: "B", date: 2),
                Self.message("<c@x>", ["<a@x>"], subject: "C", date: 3),
            ]) == "(1 3)(2)")
        // No Message-ID at all: each its own thread, sorted by date.
        #expect(
            Self.references([
                Self.message(nil, subject: "A", date: 5), Self.message(nil, subject: "B", date: 1),
            ]) == "(2)(1)")
        // A message that references itself.
        #expect(Self.references([Self.message("<a@x>", ["<a@x>"])]) == "(1)")
    }

    @Test func orderedSubjectIsPoorMansThreading() {
        let messages = [
            Self.message(nil, subject: "B", date: 3), Self.message(nil, subject: "A", date: 2),
            Self.message(nil, subject: "B", date: 1), Self.message(nil, subject: "A", date: 4),
            Self.message(nil, subject: "B", date: 5), Self.message(nil, subject: "C", date: 6),
        ]
        // Threads by their first message's date: B (3: dates 1, 3, 5), A (2: dates 2, 4), C.
        #expect(Threading.wire(Threading.orderedSubject(messages)) { UInt32($0 + 1) } == "(3 (1)(5))(2 4)(6)")
        #expect(Threading.wire(Threading.orderedSubject([])) { UInt32($0 + 1) } == "")
    }

    /// Hostile input: a chain of 20,000 messages each referencing the one before (or a loop of them) is threaded in
    /// linear time with its depth capped, every message exactly once, and no deep recursion.
    @Test func aVeryLongChainIsCutNotFollowed() {
        let count = 20_000
        let chain = (0..<count).map { i in
            Self.message("<m\(i)@x>", i == 0 ? [] : ["<m\(i - 1)@x>"], subject: "S\(i)", date: Int64(i))
        }
        let threads = Threading.references(chain)
        var seen: [Int] = []
        var deepest = 0
        var stack = threads.map { ($0, 1) }
        while let (node, depth) = stack.popLast() {
            if let message = node.message { seen.append(message) }
            deepest = max(deepest, depth)
            stack += node.children.map { ($0, depth + 1) }
        }
        #expect(seen.sorted() == Array(0..<count))
        #expect(deepest <= Threading.maxDepth + 2 && threads.count > 1, "depth \(deepest), \(threads.count) threads")
        // Every message referencing the next one round: a loop through all of them.
        let loop = (0..<count).map { i in Self.message("<m\(i)@x>", ["<m\((i + 1) % count)@x>"], date: Int64(i)) }
        var looped = 0
        var pending = Threading.references(loop)
        while let node = pending.popLast() {
            if node.message != nil { looped += 1 }
            pending += node.children
        }
        #expect(looped == count)
        #expect(!Threading.wire(threads) { UInt32($0 + 1) }.isEmpty)
    }

    /// A mailbox like a real one: replies to earlier messages (Re: subjects, References), forwards, repeated subjects
    /// across threads, so that subject merging makes dummies whose children are themselves sorted. Threading must
    /// finish (exclusive access to its arrays included: an in-place sort whose comparator read them trapped the
    /// process) with every message exactly once.
    @Test func aMailboxOfRepliesAndRepeatedSubjects() {
        var generator = SplitMix(seed: 7)
        let words = ["BUDGET", "MEETING", "REPORT", "LUNCH", "RELEASE"]
        var messages: [Threading.Message] = []
        for i in 0..<3000 {
            let parent = i > 0 && generator.next() % 10 < 6 ? Int(generator.next() % UInt64(i)) : nil
            let subject = words[Int(generator.next() % 5)] + " " + words[Int(generator.next() % 5)] + " \(i % 97)"
            messages.append(
                Self.message(
                    "<m\(i)@x>", parent.map { ["<m\($0)@x>"] } ?? [], subject: subject, reply: parent != nil,
                    date: Int64(generator.next() % 100_000)))
        }
        var seen: [Int] = []
        var pending = Threading.references(messages)
        while let node = pending.popLast() {
            if let message = node.message { seen.append(message) }
            pending += node.children
        }
        #expect(seen.sorted() == Array(0..<messages.count))
    }
}
