import Foundation
import IMAPEngine
import PostgresNIO
import StoragePostgres
import Synchronization
import Testing

/// Issue #9 §7: crash consistency. Two instances share a durable PostgreSQL (fsync on) under a mixed
/// APPEND/STORE/EXPUNGE/COPY/MOVE load; one instance is killed with SIGKILL, later PostgreSQL itself is stopped with
/// -m immediate and started again. Afterwards every message whose APPEND was answered OK is there exactly once (or
/// where an answered MOVE or EXPUNGE took it), nothing answered NO is there, an unanswered command either happened
/// or did not (never half), UIDs are never reused and modseqs never go back.
@Suite(
    .enabled(if: TestEnvironment.readyOnPostgres && PrivatePostgres.available, TestEnvironment.postgresSkipReason),
    .serialized)
struct CrashConsistencyTests {
    /// Where a worker's message may be: its mailbox W<n>, moved to M<n>, or nowhere.
    enum Place: Hashable, Sendable { case inbox, moved, nowhere }

    /// What one worker knows of its messages, from the answers it got.
    struct Ledger: Sendable {
        var places: [String: Set<Place>] = [:]
        var uids: [String: UInt32] = [:]
        var copiesSure: [String: Int] = [:]
        var copiesMaybe: [String: Int] = [:]
        /// APPENDUIDs in the order they were answered, with the phase they were answered in.
        var appended: [(uid: UInt32, phase: Int)] = []
        var operations = 0
        var unknown = 0
        /// Each token's commands and answers, for the failure message.
        var history: [String: [String]] = [:]
    }

    enum Answer { case ok(String), no, unknown }

    /// Operations done so far in a phase, by all workers.
    final class Progress: Sendable {
        let count = Atomic<Int>(0)
    }

    /// A worker's connection, reconnecting to whichever instance answers.
    actor Link {
        let ports: [Int]
        let worker: Int
        var client: IMAPTestClient?
        var tag = 0

        init(ports: [Int], worker: Int) {
            self.ports = ports
            self.worker = worker
        }

        /// Connects, logs in and selects W<n>, trying every instance until one works.
        func connect() async throws -> IMAPTestClient {
            if let client { return client }
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                for port in ports.shuffled() {
                    guard let client = try? await IMAPTestClient.connect(port: port) else { continue }
                    do {
                        _ = try await client.readLine()
                        let login = try await client.command("l", "LOGIN crash pw")
                        let select = try await client.command("s", "SELECT W\(worker)")
                        if login.last?.hasPrefix("l OK") == true, select.last?.hasPrefix("s OK") == true {
                            self.client = client
                            return client
                        }
                    } catch {}
                    await client.close()
                }
                try await Task.sleep(for: .milliseconds(100))  // every instance or the database is still away
            }
            throw TestFailure("worker \(worker) could not reconnect")
        }

        /// Sends a command and classifies its answer; a lost connection or BYE is `.unknown` (and drops the link).
        func run(_ command: String, literal: [UInt8]? = nil) async -> Answer {
            tag += 1
            let tag = "t\(tag)"
            do {
                let client = try await connect()
                if let literal {
                    try await client.sendLine("\(tag) \(command) {\(literal.count)+}")
                    try await client.send(literal + [13, 10])
                } else {
                    try await client.sendLine("\(tag) \(command)")
                }
                let lines = try await client.readResponse(tag: tag, timeout: .seconds(60))
                let tagged = lines.last ?? ""
                if lines.contains(where: { $0.hasPrefix("* BYE") }) && !tagged.hasPrefix(tag) { return drop() }
                // The whole answer: MOVE's COPYUID comes in an untagged OK (RFC 6851 §4.3).
                if tagged.hasPrefix("\(tag) OK") { return .ok(lines.joined(separator: "\n")) }
                return .no
            } catch {
                return drop()
            }
        }

        private func drop() -> Answer {
            let old = client
            client = nil
            Task { await old?.close() }
            return .unknown
        }
    }

    static func message(_ token: String) -> [UInt8] {
        Array("Subject: \(token)\r\nMessage-ID: <\(token)@crash.test>\r\n\r\nbody of \(token)\r\n".utf8)
    }

    /// `[APPENDUID v u]` or the destination of `[COPYUID v src dst]`.
    static func uid(in tagged: String, code: String) -> UInt32? {
        guard let range = tagged.range(of: "[\(code) ") else { return nil }
        let fields = tagged[range.upperBound...].prefix { $0 != "]" }.split(separator: " ")
        return fields.last.flatMap { UInt32($0) }
    }

    /// One worker: `count` operations on its own mailboxes, recording what each answer says.
    static func work(_ link: Link, ledger: inout Ledger, count: Int, phase: Int, seed: inout UInt64) async {
        func random(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        let w = link.worker
        func send(_ token: String, _ command: String, literal: [UInt8]? = nil) async -> Answer {
            let answer = await link.run(command, literal: literal)
            let summary =
                switch answer {
                case .ok(let lines): lines.split(separator: "\n").last.map(String.init) ?? "OK"
                case .no: "NO"
                case .unknown: "no answer"
                }
            ledger.history[token, default: []].append("phase \(phase): \(command) → \(summary)")
            return answer
        }
        for _ in 0..<count {
            ledger.operations += 1
            let sure = ledger.places.filter { $0.value == [.inbox] && ledger.uids[$0.key] != nil }.map(\.key).sorted()
            let choice = sure.isEmpty ? 0 : random(10)
            switch choice {
            case 0...4:
                let token = "tok-\(w)-\(ledger.operations)"
                switch await send(token, "APPEND W\(w)", literal: message(token)) {
                case .ok(let tagged):
                    ledger.places[token] = [.inbox]
                    if let uid = uid(in: tagged, code: "APPENDUID") {
                        ledger.uids[token] = uid
                        ledger.appended.append((uid, phase))
                    }
                case .no: ledger.places[token] = [.nowhere]
                case .unknown:
                    ledger.places[token] = [.inbox, .nowhere]
                    ledger.unknown += 1
                }
            case 5...6:
                let token = sure[random(sure.count)]
                _ = await link.run("NOOP")  // the session learns of its own appends before addressing them by UID
                switch await send(token, "UID MOVE \(ledger.uids[token] ?? 0) M\(w)") {
                case .ok(let tagged) where tagged.contains("[COPYUID"): ledger.places[token] = [.moved]
                case .ok, .no: break
                case .unknown:
                    ledger.places[token] = [.inbox, .moved]
                    ledger.unknown += 1
                }
            case 7:
                let token = sure[random(sure.count)]
                _ = await link.run("NOOP")
                switch await send(token, "UID COPY \(ledger.uids[token] ?? 0) C\(w)") {
                case .ok(let tagged) where tagged.contains("[COPYUID"): ledger.copiesSure[token, default: 0] += 1
                case .ok, .no: break
                case .unknown:
                    ledger.copiesMaybe[token, default: 0] += 1
                    ledger.unknown += 1
                }
            case 8:
                let token = sure[random(sure.count)]
                let uid = ledger.uids[token] ?? 0
                _ = await link.run("NOOP")
                guard case .ok = await send(token, "UID STORE \(uid) +FLAGS.SILENT (\\Deleted)") else { continue }
                switch await send(token, "UID EXPUNGE \(uid)") {
                case .ok(let answer) where answer.contains(" EXPUNGE\n") || answer.contains("* VANISHED"):
                    ledger.places[token] = [.nowhere]
                case .ok:
                    // Done, but not announced (the sync point after it lost the store; the next one will tell):
                    // from the answer alone the client cannot know whether this message was among them.
                    ledger.places[token] = [.inbox, .nowhere]
                case .no: break
                case .unknown:
                    ledger.places[token] = [.inbox, .nowhere]
                    ledger.unknown += 1
                }
            default:
                let token = sure[random(sure.count)]
                _ = await link.run("UID STORE \(ledger.uids[token] ?? 0) +FLAGS (\\Flagged $Seen\(random(3)))")
            }
        }
    }

    @Test func killedInstanceAndKilledDatabaseLoseNothingAnsweredAndInventNothing() async throws {
        let postgres = try await PrivatePostgres.start()
        defer { Task { await postgres.remove() } }
        let database = postgres.configuration
        #expect(
            try await mailadmin(
                TestStorage(backend: .postgres(database)), "user", "add", "crash", "--password-stdin", stdin: "pw\n"
            ).status == 0)
        let workers = 6
        for w in 0..<workers {
            for prefix in ["W", "M", "C"] {
                #expect(
                    try await mailadmin(
                        TestStorage(backend: .postgres(database)), "mailbox", "create", "crash", "\(prefix)\(w)"
                    ).status == 0)
            }
        }
        func instance() throws -> ServerProcess {
            try ServerProcess([
                "serve", "--storage", database.description, "--auth", "db", "--imap", "127.0.0.1:0",
                "--store-timeout", "5",
            ])
        }
        let a = try instance()
        defer { a.terminate() }
        let b = try instance()
        defer { b.terminate() }
        let ports = [try await a.waitUntilListening(), try await b.waitUntilListening()]

        // Modseqs sampled throughout: per mailbox they must never go back, across both crashes.
        let samples = Mutex<[Int64: [Int64]]>([:])
        let sampler = Task {
            while !Task.isCancelled {
                if let rows = try? await Self.highestModSeqs(database) {
                    samples.withLock { for (mailbox, modseq) in rows { $0[mailbox, default: []].append(modseq) } }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { sampler.cancel() }

        // Each phase runs every worker for `count` operations: 0 both instances up, then A is killed mid-load (1),
        // then PostgreSQL is killed mid-load and started again (2), then a last phase on the recovered system (3).
        let links = (0..<workers).map { Link(ports: [ports[$0 % 2], ports[($0 + 1) % 2]], worker: $0) }
        var ledgers = Array(repeating: Ledger(), count: workers)
        var seeds = (0..<workers).map { UInt64($0 + 1) * 0x9E37_79B9 }
        for phase in 0..<4 {
            let progress = Progress()
            await withTaskGroup(of: (Int, Ledger, UInt64)?.self) { group in
                for w in 0..<workers {
                    group.addTask { [ledger = ledgers[w], seed = seeds[w], link = links[w]] in
                        var ledger = ledger
                        var seed = seed
                        for _ in 0..<5 {
                            await Self.work(link, ledger: &ledger, count: 8, phase: phase, seed: &seed)
                            progress.count.wrappingAdd(1, ordering: .relaxed)
                        }
                        return (w, ledger, seed)
                    }
                }
                // Strike in the middle of the phase's load (nil: the load is under way).
                group.addTask {
                    try? await waitUntil("the load is under way") { progress.count.load(ordering: .relaxed) >= workers }
                    return nil
                }
                for await result in group {
                    guard let (w, ledger, seed) = result else {
                        switch phase {
                        case 1:
                            a.signal(SIGKILL)
                        case 2:
                            try? await postgres.stopImmediately()
                            try? await waitUntil("the load meets the outage") {
                                progress.count.load(ordering: .relaxed) >= 2 * workers
                            }
                            try? await postgres.startServer()
                        default:
                            break
                        }
                        continue
                    }
                    ledgers[w] = ledger
                    seeds[w] = seed
                }
            }
        }
        sampler.cancel()

        // What the database holds, per token and mailbox.
        let counts = try await Self.tokenCounts(database)
        var checked = 0
        var unknown = 0
        for (w, ledger) in ledgers.enumerated() {
            unknown += ledger.unknown
            for (token, places) in ledger.places {
                let inbox = counts["W\(w)"]?[token] ?? 0
                let moved = counts["M\(w)"]?[token] ?? 0
                var possible: Set<[Int]> = []
                for place in places {
                    switch place {
                    case .inbox: possible.insert([1, 0])
                    case .moved: possible.insert([0, 1])
                    case .nowhere: possible.insert([0, 0])
                    }
                }
                #expect(
                    possible.contains([inbox, moved]),
                    "\(token): \(places) but W=\(inbox) M=\(moved): \(ledger.history[token] ?? [])")
                let copies = counts["C\(w)"]?[token] ?? 0
                let sure = ledger.copiesSure[token] ?? 0
                let maybe = ledger.copiesMaybe[token] ?? 0
                #expect(copies >= sure && copies <= sure + maybe, "\(token): \(copies) copies, \(sure)+\(maybe)")
                checked += 1
            }
            // UIDs are never reused: all distinct, and every phase's are above every earlier phase's.
            let uids = ledger.appended.map(\.uid)
            #expect(Set(uids).count == uids.count, "worker \(w) got a UID twice")
            for phase in 1..<4 {
                let before = ledger.appended.filter { $0.phase < phase }.map(\.uid).max() ?? 0
                let after = ledger.appended.filter { $0.phase >= phase }.map(\.uid).min() ?? UInt32.max
                #expect(after > before, "worker \(w): UID \(after) after phase \(phase) is not above \(before)")
            }
        }
        let history = samples.withLock { $0 }
        for (mailbox, values) in history {
            #expect(values == values.sorted(), "mailbox \(mailbox): HIGHESTMODSEQ went back: \(values)")
        }
        #expect(try await Self.modSeqsWithinMailboxes(database))
        print(
            "crash consistency: \(checked) messages checked, \(unknown) commands without an answer (kill -9 of an instance, PostgreSQL -m immediate), \(history.values.map(\.count).reduce(0, +)) modseq samples"
        )
        #expect(checked > 100)
    }

    static func highestModSeqs(_ database: PostgresStoreConfiguration) async throws -> [(Int64, Int64)] {
        try await database.withConnection(logger: TestEnvironment.logger) { connection in
            var result: [(Int64, Int64)] = []
            let rows = try await connection.query(
                "SELECT mailbox_id, highestmodseq FROM mailboxes", logger: TestEnvironment.logger)
            for try await row in rows.decode((Int64, Int64).self) { result.append(row) }
            return result
        }
    }

    /// Mailbox name → subject token → number of messages.
    static func tokenCounts(_ database: PostgresStoreConfiguration) async throws -> [String: [String: Int]] {
        try await database.withConnection(logger: TestEnvironment.logger) { connection in
            var counts: [String: [String: Int]] = [:]
            let rows = try await connection.query(
                """
                SELECT b.name, c.search_subject FROM messages m
                JOIN mailboxes b ON b.account_id = m.account_id AND b.mailbox_id = m.mailbox_id
                JOIN contents c ON c.account_id = m.account_id AND c.content_id = m.content_id
                """, logger: TestEnvironment.logger)
            for try await (name, subject) in rows.decode((String, String).self) {
                counts[name, default: [:]][subject.trimmingCharacters(in: .whitespaces), default: 0] += 1
            }
            return counts
        }
    }

    /// No message carries a modseq above its mailbox's HIGHESTMODSEQ.
    static func modSeqsWithinMailboxes(_ database: PostgresStoreConfiguration) async throws -> Bool {
        try await database.withConnection(logger: TestEnvironment.logger) { connection in
            let rows = try await connection.query(
                """
                SELECT count(*) FROM messages m JOIN mailboxes b
                    ON b.account_id = m.account_id AND b.mailbox_id = m.mailbox_id
                WHERE m.modseq > b.highestmodseq
                """, logger: TestEnvironment.logger
            ).collect()
            return try rows.first?.decode(Int64.self) == 0
        }
    }
}
