import Foundation
import Logging

/// APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID, RFC 3516 literal8).
extension Session {
    func handleAppend(_ append: AppendCommand) async throws -> Completion {
        let account = try requireAccount
        let name = try mailboxName(append.mailbox)
        let flags = try storableFlags(append.flags)
        guard !append.message.isEmpty else { throw IMAPError.no(.cannot, "Can't save a zero byte message") }
        let date =
            append.date
            ?? InternalDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), zoneMinutes: 0)
        let parsed = ParsedMessage(parsing: append.message, binary: append.isBinary)
        let result = try await withTryCreate(name) { () async throws(StoreError) in
            try await store.append(
                account: account, mailbox: name, message: parsed, flags: flags, date: date, logger: logger)
        }
        if let view, view.name == name { viewIsStale = true }
        return Completion("APPEND completed", code: .appendUID(result.uidValidity, result.uid))
    }
}
