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

    /// A container of the REFERENCES algorithm.
    private final class Container {
        var message: Int?
        weak var parent: Container?
        var children: [Container] = []
        init(_ message: Int? = nil) { self.message = message }

        /// Whether `self` is `other` or below it.
        func isDescendant(of other: Container) -> Bool {
            var node: Container? = self
            while let current = node {
                if current === other { return true }
                node = current.parent
            }
            return false
        }

        func adopt(_ child: Container) {
            child.parent = self
            children.append(child)
        }

        func unlinkFromParent() {
            parent?.children.removeAll { $0 === self }
            parent = nil
        }
    }

    /// REFERENCES (RFC 5256 §4 steps 1–6).
    public static func references(_ messages: [Message]) -> [Node] {
        // (1) Link messages by their references; dummies for ids no searched message has.
        var table: [String: Container] = [:]
        var all: [Container] = []
        for (index, message) in messages.enumerated() {
            let container: Container
            if let id = message.messageID, let existing = table[id], existing.message == nil {
                container = existing
                container.message = index
            } else {
                container = Container(index)
                all.append(container)
                // A missing or repeated Message-ID gets a unique one (only the first message keeps a repeated id).
                if let id = message.messageID, table[id] == nil { table[id] = container }
            }
            var previous: Container?
            for reference in message.references {
                let referenced: Container
                if let existing = table[reference] {
                    referenced = existing
                } else {
                    referenced = Container()
                    table[reference] = referenced
                    all.append(referenced)
                }
                // (A) Keep existing links (References may be truncated); never make a loop.
                if let previous, referenced.parent == nil, referenced !== previous,
                    !previous.isDescendant(of: referenced)
                {
                    previous.adopt(referenced)
                }
                previous = referenced
            }
            // (B) The last reference is the parent, replacing any link made before; never a loop.
            container.unlinkFromParent()
            if let previous, !previous.isDescendant(of: container) { previous.adopt(container) }
        }
        // (2) The messages without parents are the roots.
        var roots = all.filter { $0.parent == nil }
        // (3) Dummies go: childless ones entirely, others give their children to their parent (at the root, only a
        // single child is promoted).
        func prune(_ list: [Container], atRoot: Bool) -> [Container] {
            var result: [Container] = []
            for container in list {
                container.children = prune(container.children, atRoot: false)
                for child in container.children { child.parent = container }
                if container.message == nil {
                    if container.children.isEmpty { continue }
                    if !atRoot || container.children.count == 1 {
                        result.append(contentsOf: container.children)
                        continue
                    }
                }
                result.append(container)
            }
            return result
        }
        roots = prune(roots, atRoot: true)
        for root in roots { root.parent = nil }
        // (4) Roots by sent date; a dummy by its earliest child.
        func key(_ container: Container) -> (Int64, Int) {
            if let index = container.message { return (messages[index].date, index) }
            return container.children.first.map(key) ?? (Int64.max, Int.max)
        }
        for root in roots where root.message == nil { root.children.sort { key($0) < key($1) } }
        roots.sort { key($0) < key($1) }
        // (5) Threads with the same base subject are gathered.
        func subject(_ container: Container) -> String {
            guard let index = container.message ?? container.children.first?.message else { return "" }
            return messages[index].subject
        }
        func isReply(_ container: Container) -> Bool {
            container.message.map { messages[$0].isReplyOrForward } ?? false
        }
        var subjects: [String: Container] = [:]
        for root in roots {
            let thread = subject(root)
            if thread.isEmpty { continue }
            guard let held = subjects[thread] else {
                subjects[thread] = root
                continue
            }
            if held.message != nil, root.message == nil || (isReply(held) && !isReply(root)) { subjects[thread] = root }
        }
        var merged: [Container] = []
        for root in roots where root.parent == nil {  // (a root already merged into a dummy is done)
            let thread = subject(root)
            guard !thread.isEmpty, let held = subjects[thread], held !== root else {
                merged.append(root)
                continue
            }
            if held.message == nil && root.message == nil {
                for child in root.children { held.adopt(child) }
            } else if held.message == nil {
                held.adopt(root)
            } else if isReply(root) && !isReply(held) {
                held.adopt(root)
            } else {
                let dummy = Container()
                let position = merged.firstIndex { $0 === held }
                held.parent = nil
                dummy.adopt(held)
                dummy.adopt(root)
                if let position { merged[position] = dummy } else { merged.append(dummy) }
                subjects[thread] = dummy
            }
        }
        // (6) Every set of siblings by sent date, the deepest first; a dummy sorts by its first child.
        func sortBelow(_ container: Container) {
            for child in container.children { sortBelow(child) }
            container.children.sort { key($0) < key($1) }
        }
        for root in merged { sortBelow(root) }
        merged.sort { key($0) < key($1) }
        func node(_ container: Container) -> Node { Node(container.message, container.children.map(node)) }
        return merged.map(node)
    }

    /// The THREAD response's threads (RFC 5256 §4 `thread-list`), `number` giving each message's sequence number
    /// or UID: `(3 6 (4 23)(44 7 96))`.
    public static func wire(_ threads: [Node], number: (Int) -> UInt32) -> String {
        func members(_ node: Node) -> String {
            guard let message = node.message else { return node.children.map { "(" + members($0) + ")" }.joined() }
            var text = String(number(message))
            if node.children.count == 1 {
                text += " " + members(node.children[0])
            } else if !node.children.isEmpty {
                text += " " + node.children.map { "(" + members($0) + ")" }.joined()
            }
            return text
        }
        return threads.map { "(" + members($0) + ")" }.joined()
    }
}
