import Logging
import PostgresNIO
import Synchronization

/// The hot statements as named prepared statements: parsed and planned once per connection instead of on every call.
/// Under the imaptest mix, planning the unnamed statements was a third of PostgreSQL's time (issue 11).
///
/// PostgresNIO names a prepared statement by its Swift type, so a fixed set of slot types carries them: a statement
/// text takes the next free slot the first time it is run, for the life of the process, and every connection prepares
/// that slot with that same text. Texts past the last slot run as unnamed statements, as before.
///
/// Only statements whose text is fixed by their call site belong here (a text that varies with the input would use up
/// the slots): interpolated values are bind parameters and may vary; `unescaped:` pieces must come from a small fixed
/// set. A bind that is NULL when a connection first prepares the statement gets the type PostgreSQL infers for it,
/// so such a parameter must have the Swift type of its column (or an explicit cast to the bound type).
enum PreparedStatements {
    static let capacity = 64

    private struct Registry {
        var slots: [String: Int] = [:]
        var texts: [String] = []
    }
    private static let registry = Mutex(Registry())

    /// The slot of `sql`, taking a free one the first time; nil when all are taken.
    static func slot(for sql: String) -> Int? {
        registry.withLock { registry in
            if let slot = registry.slots[sql] { return slot }
            guard registry.texts.count < capacity else { return nil }
            registry.texts.append(sql)
            registry.slots[sql] = registry.texts.count - 1
            return registry.texts.count - 1
        }
    }

    static func text(of slot: Int) -> String { registry.withLock { $0.texts[slot] } }

    /// One type per slot (8 × 8 digit pairs), in slot order.
    static let slotTypes: [any PreparedSlot.Type] = {
        let digits: [any SlotDigit.Type] = [D0.self, D1.self, D2.self, D3.self, D4.self, D5.self, D6.self, D7.self]
        func pair<High: SlotDigit, Low: SlotDigit>(_: High.Type, _: Low.Type) -> any PreparedSlot.Type {
            Slot<High, Low>.self
        }
        var types: [any PreparedSlot.Type] = []
        for high in digits { for low in digits { types.append(pair(high, low)) } }
        return types
    }()
}

protocol SlotDigit { static var digit: Int { get } }
enum D0: SlotDigit { static var digit: Int { 0 } }
enum D1: SlotDigit { static var digit: Int { 1 } }
enum D2: SlotDigit { static var digit: Int { 2 } }
enum D3: SlotDigit { static var digit: Int { 3 } }
enum D4: SlotDigit { static var digit: Int { 4 } }
enum D5: SlotDigit { static var digit: Int { 5 } }
enum D6: SlotDigit { static var digit: Int { 6 } }
enum D7: SlotDigit { static var digit: Int { 7 } }

protocol PreparedSlot: SendableMetatype { static var index: Int { get } }
enum Slot<High: SlotDigit, Low: SlotDigit>: PreparedSlot {
    static var index: Int { High.digit * 8 + Low.digit }
}

/// The prepared statement of one slot: its name is the slot's, its text the one registered for the slot.
struct SlotStatement<S: PreparedSlot>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var name: String { "mailhost_\(S.index)" }
    static var sql: String { PreparedStatements.text(of: S.index) }
    let bindings: PostgresBindings
    func makeBindings() -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// Rows of a statement, streamed as PostgreSQL sends them (a large answer is not held whole).
typealias PreparedRows = AsyncThrowingMapSequence<PostgresRowSequence, PostgresRow>

extension PreparedRows {
    func collect() async throws -> [PostgresRow] {
        var rows: [PostgresRow] = []
        for try await row in self { rows.append(row) }
        return rows
    }
}

/// What runs statements: a connection (the pool's statements go through `GuardedClient`, which leases one).
protocol StatementRunner: Sendable {
    func executeSlot<S: PreparedSlot>(_ statement: SlotStatement<S>, logger: Logger) async throws -> PreparedRows
    func unnamed(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence
}

extension StatementRunner {
    /// Runs `query` as a named prepared statement (see `PreparedStatements`), or unnamed when the slots are taken.
    func prepared(_ query: PostgresQuery, logger: Logger) async throws -> PreparedRows {
        guard let slot = PreparedStatements.slot(for: query.sql) else {
            return try await unnamed(query, logger: logger).map { (row) throws -> PostgresRow in row }
        }
        func run<S: PreparedSlot>(_: S.Type) async throws -> PreparedRows {
            try await executeSlot(SlotStatement<S>(bindings: query.binds), logger: logger)
        }
        return try await run(PreparedStatements.slotTypes[slot])
    }
}

extension PostgresConnection: StatementRunner {
    func executeSlot<S: PreparedSlot>(_ statement: SlotStatement<S>, logger: Logger) async throws -> PreparedRows {
        try await execute(statement, logger: logger, file: #fileID, line: #line)
    }
    func unnamed(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try await self.query(query, logger: logger)
    }
}
