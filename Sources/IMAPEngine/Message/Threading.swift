/// THREAD's two algorithms (RFC 5256 §4) over the keys stored at ingest. Pure: the input is the searched messages in
/// mailbox order, the output the thread forest with indices into the input.
public enum Threading {
    /// One searched message.
    public struct Message: Sendable, Equatable {
        public var messageID: String?
        public var references: [String]
        /// The base subject, i;ascii-casemapped (so equal strings are equal subjects).
        public var subject: String
        public var isReplyOrForward: Bool
        /// The sent date (the internal date where there is none), seconds since 1970.
        public var date: Int64
        public init(messageID: String?, references: [String], subject: String, isReplyOrForward: Bool, date: Int64) {
            self.messageID = messageID
            self.references = references
            self.subject = subject
            self.isReplyOrForward = isReplyOrForward
            self.date = date
        }
    }

    /// A thread node: a message (an index into the input), or a dummy (nil) that groups its children.
    public struct Node: Sendable, Equatable {
        public var message: Int?
        public var children: [Node]
        public init(_ message: Int?, _ children: [Node] = []) {
            self.message = message
            self.children = children
        }
    }

    /// ORDEREDSUBJECT: messages grouped by base subject; each group's earliest message is its root and the others
    /// its children, in date order; groups ordered by the date of their root. Ties go to mailbox order.
    public static func orderedSubject(_ messages: [Message]) -> [Node] {
        let order = messages.indices.sorted {
            (messages[$0].subject, messages[$0].date, $0) < (messages[$1].subject, messages[$1].date, $1)
        }
        var threads: [Node] = []
        var i = 0
        while i < order.count {
            var j = i + 1
            while j < order.count, messages[order[j]].subject == messages[order[i]].subject { j += 1 }
            threads.append(Node(order[i], order[(i + 1)..<j].map { Node($0) }))
            i = j
        }
        return threads.sorted { (messages[$0.message!].date, $0.message!) < (messages[$1.message!].date, $1.message!) }
    }

    /// Threads deeper than this are cut there (the rest becomes a thread of its own): the traversals below recurse
    /// once per level, and no real conversation nests this deep. Ancestor walks that look for loops stop after as
    /// many steps (a longer chain is treated as a loop and not linked), so a hostile chain of 100,000 References
    /// costs linear time, not quadratic.
    static let maxDepth = 512

    /// REFERENCES (RFC 5256 §4 steps 1–6). Containers live in arrays indexed by number (no object graph to free
    /// recursively). With `refs` (THREAD=REFS): step 5 (gathering threads by subject) is left out, and the threads are
    /// ordered by their latest message (the most recently active thread last) instead of by their first.
    public static func references(_ messages: [Message], refs: Bool = false) -> [Node] {
        var message: [Int?] = []
        var parent: [Int] = []
        var children: [[Int]] = []
        // Containers: one per message, and dummies for referenced ids no message has (at most a few per message).
        message.reserveCapacity(messages.count * 2)
        parent.reserveCapacity(messages.count * 2)
        children.reserveCapacity(messages.count * 2)
        func container(_ index: Int?) -> Int {
            message.append(index)
            parent.append(-1)
            children.append([])
            return message.count - 1
        }
        /// Whether `a` is `b` or below it; true too when the walk is longer than `maxDepth` (then no link is made).
        func isDescendant(_ a: Int, of b: Int) -> Bool {
            var node = a
            for _ in 0...maxDepth {
                if node == b { return true }
                node = parent[node]
                if node < 0 { return false }
            }
            return true
        }
        func adopt(_ p: Int, _ child: Int) {
            parent[child] = p
            children[p].append(child)
        }
        func unlink(_ child: Int) {
            let p = parent[child]
            guard p >= 0 else { return }
            children[p].removeAll { $0 == child }
            parent[child] = -1
        }
        // (1) Link messages by their references; dummies for ids no searched message has.
        var table: [String: Int] = [:]
        table.reserveCapacity(messages.count * 2)
        for (index, current) in messages.enumerated() {
            let this: Int
            if let id = current.messageID, let existing = table[id], message[existing] == nil {
                this = existing
                message[existing] = index
            } else {
                this = container(index)
                // A missing or repeated Message-ID gets a unique one (only the first message keeps a repeated id).
                if let id = current.messageID, table[id] == nil { table[id] = this }
            }
            var previous = -1
            for reference in current.references {
                let referenced: Int
                if let existing = table[reference] {
                    referenced = existing
                } else {
                    referenced = container(nil)
                    table[reference] = referenced
                }
                // (A) Keep existing links (References may be truncated); never make a loop.
                if previous >= 0, parent[referenced] < 0, referenced != previous,
                    !isDescendant(previous, of: referenced)
                {
                    adopt(previous, referenced)
                }
                previous = referenced
            }
            // (B) The last reference is the parent, replacing any link made before; never a loop.
            unlink(this)
            if previous >= 0, !isDescendant(previous, of: this) { adopt(previous, this) }
        }
        // Depth cap: a container deeper than `maxDepth` starts a thread of its own (iterative, memoised walk).
        var depth = [Int](repeating: -1, count: message.count)
        for start in message.indices where depth[start] < 0 {
            var path: [Int] = []
            var node = start
            while node >= 0, depth[node] < 0 {
                path.append(node)
                node = parent[node]
            }
            var level = node >= 0 ? depth[node] : -1
            for member in path.reversed() {
                level += 1
                if level > maxDepth {
                    unlink(member)
                    level = 0
                }
                depth[member] = level
            }
        }
        // (2) The containers without parents are the roots.
        var roots = message.indices.filter { parent[$0] < 0 }
        // (3) Dummies go: childless ones entirely, others give their children to their parent (at the root, only a
        // single child is promoted).
        func prune(_ list: [Int], atRoot: Bool) -> [Int] {
            var result: [Int] = []
            for c in list {
                let pruned = prune(children[c], atRoot: false)
                children[c] = pruned
                for child in children[c] { parent[child] = c }
                if message[c] == nil {
                    if children[c].isEmpty { continue }
                    if !atRoot || children[c].count == 1 {
                        result.append(contentsOf: children[c])
                        continue
                    }
                }
                result.append(c)
            }
            return result
        }
        roots = prune(roots, atRoot: true)
        for root in roots { parent[root] = -1 }
        // (4) Roots by sent date; a dummy by its earliest child.
        func key(_ c: Int) -> (Int64, Int) {
            var node = c
            while message[node] == nil, let first = children[node].first { node = first }
            guard let index = message[node] else { return (Int64.max, Int.max) }
            return (messages[index].date, index)
        }
        // Keys are computed before sorting and the sort compares only them: `key` reads `children`, which an in-place
        // sort of `children[x]` holds for writing (the optimised build trapped on exactly that).
        func byDate(_ list: [Int]) -> [Int] {
            guard list.count > 1 else { return list }
            return list.map { (key($0), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
        }
        for root in roots where message[root] == nil {
            let sorted = byDate(children[root])
            children[root] = sorted
        }
        roots = byDate(roots)
        // (5) Threads with the same base subject are gathered.
        func subject(_ c: Int) -> String {
            guard let index = message[c] ?? children[c].first.flatMap({ message[$0] }) else { return "" }
            return messages[index].subject
        }
        func isReply(_ c: Int) -> Bool { message[c].map { messages[$0].isReplyOrForward } ?? false }
        var subjects: [String: Int] = [:]
        subjects.reserveCapacity(roots.count)
        for root in roots {
            let thread = subject(root)
            if thread.isEmpty { continue }
            guard let held = subjects[thread] else {
                subjects[thread] = root
                continue
            }
            if message[held] != nil, message[root] == nil || (isReply(held) && !isReply(root)) {
                subjects[thread] = root
            }
        }
        var merged: [Int] = []
        var position: [Int: Int] = [:]  // container → its index in `merged`
        for root in roots where parent[root] < 0 && !refs {  // (a root already merged into a dummy is done)
            let thread = subject(root)
            guard !thread.isEmpty, let held = subjects[thread], held != root else {
                position[root] = merged.count
                merged.append(root)
                continue
            }
            if message[held] == nil && message[root] == nil {
                for child in children[root] { adopt(held, child) }
                children[root] = []
            } else if message[held] == nil {
                adopt(held, root)
            } else if isReply(root) && !isReply(held) {
                adopt(held, root)
            } else {
                let dummy = container(nil)
                adopt(dummy, held)
                adopt(dummy, root)
                if let at = position[held] {
                    merged[at] = dummy
                    position[dummy] = at
                } else {
                    position[dummy] = merged.count
                    merged.append(dummy)
                }
                subjects[thread] = dummy
            }
        }
        // (6) Every set of siblings by sent date, the deepest first; a dummy sorts by its first child.
        func sortBelow(_ c: Int) {
            guard !children[c].isEmpty else { return }
            for child in children[c] { sortBelow(child) }
            guard children[c].count > 1 else { return }
            let sorted = byDate(children[c])
            children[c] = sorted
        }
        if refs { merged = roots }
        for root in merged { sortBelow(root) }
        if refs {
            // The latest (date, index) in each thread, computed once per root before sorting.
            func latest(_ c: Int) -> (Int64, Int) {
                var best: (Int64, Int) = (Int64.min, Int.min)
                var stack = [c]
                while let top = stack.popLast() {
                    if let index = message[top], (messages[index].date, index) > best {
                        best = (messages[index].date, index)
                    }
                    stack.append(contentsOf: children[top])
                }
                return best
            }
            merged = merged.map { (latest($0), $0) }.sorted { $0.0 < $1.0 }.map(\.1)
        } else {
            merged = byDate(merged)
        }
        func node(_ c: Int) -> Node { Node(message[c], children[c].map(node)) }
        return merged.map(node)
    }

    /// The THREAD response's threads (RFC 5256 §4 `thread-list`), `number` giving each message's sequence number
    /// or UID: `(3 6 (4 23)(44 7 96))`.
    public static func wire(_ threads: [Node], number: (Int) -> UInt32) -> String {
        var text = ""
        func members(_ node: Node) {
            guard let message = node.message else {
                for child in node.children {
                    text += "("
                    members(child)
                    text += ")"
                }
                return
            }
            text += String(number(message))
            if node.children.count == 1 {
                text += " "
                members(node.children[0])
            } else if !node.children.isEmpty {
                text += " "
                for child in node.children {
                    text += "("
                    members(child)
                    text += ")"
                }
            }
        }
        for thread in threads {
            text += "("
            members(thread)
            text += ")"
        }
        return text
    }
}
