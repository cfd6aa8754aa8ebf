import Foundation
import Logging

/// CATENATE (RFC 4469): APPEND of a message put together from literal text and parts of messages this account
/// already has, named by IMAP URLs (RFC 5092).
extension Session {
    /// The command with every CATENATE message assembled into `message`, and the upload memory held for the bytes
    /// read from the store (release it when the APPEND is done).
    func catenated(_ append: AppendCommand) async throws -> (AppendCommand, MessageBudget.Reservation?) {
        var reservation: MessageBudget.Reservation?
        do {
            var result = append
            result.message = try await assemble(append, reservation: &reservation)
            result.catenate = nil
            for i in result.more.indices {
                result.more[i].message = try await assemble(append.more[i], reservation: &reservation)
                result.more[i].catenate = nil
            }
            return (result, reservation)
        } catch {
            reservation?.release()
            throw error
        }
    }

    private func assemble(_ append: AppendCommand, reservation: inout MessageBudget.Reservation?) async throws
        -> [UInt8]
    {
        guard let parts = append.catenate else { return append.message }
        let limit = server.limits.maxAppendSize
        var message: [UInt8] = []
        var fromStore = 0
        for part in parts {
            switch part {
            case .text(let bytes):
                // Already received and counted by the framing decoder's APPEND budget.
                message += bytes
            case .url(let url):
                let bytes = try await resolve(url: url, remaining: limit - message.count)
                fromStore += bytes.count
                if let held = reservation {
                    guard held.grow(messageBytes: fromStore) else { throw Self.uploadRefusal }
                } else {
                    guard let held = server.messageBudget.reserve(messageBytes: fromStore) else {
                        throw Self.uploadRefusal
                    }
                    reservation = held
                }
                message += bytes
            }
            if message.count > limit { throw IMAPError.no(.tooBig, "The message would be larger than APPENDLIMIT") }
        }
        return message
    }

    static let uploadRefusal = IMAPError.no(
        .limit, "Too many messages are being uploaded right now; try again shortly")

    /// The bytes an IMAP URL names (RFC 4469 §5: any URL that cannot be used is `NO [BADURL url]`).
    private func resolve(url text: String, remaining: Int) async throws -> [UInt8] {
        let account = try requireAccount
        let bad = IMAPError.no(.badURL(text), "Cannot use this URL")
        guard let url = IMAPURL(parsing: text, login: login ?? ""), let item = url.fetchItem else { throw bad }
        let name: MailboxName
        let status: MailboxStatus
        do {
            name = try mailboxName(MailboxArgument(url.mailbox))
            status = try await store.status(account: account, name: name, logger: logger)
        } catch {
            throw bad
        }
        guard let id = status.id, url.uidValidity == nil || url.uidValidity == status.uidValidity else { throw bad }
        let plan = FetchPlan(items: [item])
        let batch = try await store.fetch(
            account: account, mailbox: id, uids: [UID(url.uid)], columns: plan.columns, byteBudget: nil,
            logger: logger)
        guard let record = batch.records.first, !record.isExpunged else { throw bad }
        switch try plan.values(for: record).first {
        case .bytes(let bytes, _):
            return bytes
        case .slice(let slice, let transform):
            if slice.range.count > remaining {
                throw IMAPError.no(.tooBig, "The message would be larger than APPENDLIMIT")
            }
            let bytes = try await store.contentBytes(account: account, slices: [slice], logger: logger)
            guard let first = bytes.first else { throw bad }
            return try transformed(first, transform)
        default:
            throw bad
        }
    }
}

/// An IMAP URL naming a message or part of one on this server (RFC 5092): `/mailbox[;UIDVALIDITY=n]/;UID=n
/// [/;SECTION=s][/;PARTIAL=o[.l]]`, or the same after `imap://[user@]host[:port]` when the user is the session's.
struct IMAPURL: Equatable {
    var mailbox: String
    var uidValidity: UInt32?
    var uid: UInt32
    var section: String?
    var partial: (origin: Int, length: Int?)?

    static func == (a: IMAPURL, b: IMAPURL) -> Bool {
        a.mailbox == b.mailbox && a.uidValidity == b.uidValidity && a.uid == b.uid && a.section == b.section
            && a.partial?.origin == b.partial?.origin && a.partial?.length == b.partial?.length
    }

    init?(parsing text: String, login: String) {
        guard text.utf8.count <= 8192 else { return nil }
        var path = Substring(text)
        if path.lowercased().hasPrefix("imap://") {
            let rest = path.dropFirst(7)
            guard let slash = rest.firstIndex(of: "/") else { return nil }
            let authority = rest[..<slash]
            if let at = authority.lastIndex(of: "@") {
                var user = authority[..<at]
                if let semicolon = user.firstIndex(of: ";") { user = user[..<semicolon] }
                guard let decoded = String(user).removingPercentEncoding,
                    decoded.lowercased() == login.lowercased()
                else { return nil }
            }
            path = rest[slash...]
        }
        guard path.first == "/" else { return nil }
        // "/mailbox[;UIDVALIDITY=n]", then "UID=n", "SECTION=s", "PARTIAL=o.l" after "/;".
        var pieces = path.dropFirst().components(separatedBy: "/;")
        guard pieces.count >= 2 else { return nil }
        var head = Substring(pieces.removeFirst())
        if let range = head.range(of: ";UIDVALIDITY=", options: .caseInsensitive) {
            guard let validity = UInt32(head[range.upperBound...]), validity > 0 else { return nil }
            uidValidity = validity
            head = head[..<range.lowerBound]
        }
        guard !head.isEmpty, let mailbox = String(head).removingPercentEncoding else { return nil }
        self.mailbox = mailbox
        var uid: UInt32?
        for piece in pieces {
            guard let equals = piece.firstIndex(of: "=") else { return nil }
            let key = piece[..<equals].uppercased()
            let value = String(piece[piece.index(after: equals)...])
            switch key {
            case "UID" where uid == nil:
                guard let n = UInt32(value), n > 0 else { return nil }
                uid = n
            case "SECTION" where uid != nil && section == nil && partial == nil:
                guard let decoded = value.removingPercentEncoding, !decoded.isEmpty else { return nil }
                section = decoded
            case "PARTIAL" where uid != nil && partial == nil:
                let numbers = value.split(separator: ".", omittingEmptySubsequences: false)
                guard numbers.count <= 2, let origin = Int(numbers[0]), origin >= 0 else { return nil }
                var length: Int?
                if numbers.count == 2 {
                    guard let n = Int(numbers[1]), n > 0 else { return nil }
                    length = n
                }
                partial = (origin, length)
            default:
                // URLAUTH and anything else MailHost does not offer.
                return nil
            }
        }
        guard let uid else { return nil }
        self.uid = uid
    }

    /// The FETCH item that reads what the URL names: `BODY.PEEK[section]<partial>` (never sets \Seen).
    var fetchItem: FetchAttribute? {
        var text = "u FETCH 1 (BODY.PEEK[" + (section ?? "") + "]"
        if let partial { text += "<\(partial.origin).\(partial.length ?? Int(Int32.max))>" }
        text += ")"
        guard case .command(_, .fetch(_, let items, _)) = CommandParser.parse(Array(text.utf8)), items.count == 1
        else { return nil }
        return items.first
    }
}
