import AuthPAM
import Foundation
import Glibc
import IMAPEngine
import Logging

/// Delivery into accounts, shared by the LMTP listener and `mailhost deliver` (issue #5): recipient lookup
/// (`user@domain`, `user+folder@domain`), quota checks, trace headers, and storing one parsed message for every
/// recipient, each in its own transaction.
struct LocalDelivery: Sendable {
    let store: any DeliveryStore
    /// Domains delivered locally; empty means any domain.
    let domains: [String]
    /// Create the account of a system user (`getpwnam`, uid ≥ 1000) at its first delivery, as PAM logins do.
    let provisionSystemUsers: Bool
    /// Answer over-quota as a temporary failure (452 4.2.2, EX_TEMPFAIL) instead of a permanent one (552 5.2.2).
    let quotaTemporary: Bool
    /// The lowest uid of a system account provisioned at its first delivery (`pam-min-uid`).
    var minimumUID: UInt32 = 1000
    let logger: Logger

    struct Recipient: Sendable, Equatable {
        var address: String
        var login: String
        var account: AccountID
        var mailbox: MailboxName
    }

    enum Resolution: Sendable, Equatable {
        case recipient(Recipient)
        case badAddress
        case foreignDomain
        case unknownUser
        case disabled
        case overQuota
        case unavailable
    }

    enum Outcome: Sendable, Equatable {
        case stored(UID)
        case overQuota
        case unavailable
        case failed(String)
    }

    /// `<user[+folder]@domain>` or a bare address; the local part is case-insensitive.
    func resolve(address raw: String) async -> Resolution {
        var address = raw.trimmingCharacters(in: .whitespaces)
        if address.hasPrefix("<"), address.hasSuffix(">") { address = String(address.dropFirst().dropLast()) }
        guard let at = address.lastIndex(of: "@"), at != address.startIndex else { return .badAddress }
        let local = String(address[..<at])
        let domain = address[address.index(after: at)...].lowercased()
        guard !domain.isEmpty else { return .badAddress }
        if !domains.isEmpty && !domains.contains(domain) { return .foreignDomain }
        var user = local
        var folder: String?
        if let plus = local.firstIndex(of: "+") {
            user = String(local[..<plus])
            folder = String(local[local.index(after: plus)...])
        }
        return await resolve(login: user, folder: folder, address: address)
    }

    /// A login and an optional mailbox (falling back to INBOX when it does not exist).
    func resolve(login rawLogin: String, folder: String?, address: String) async -> Resolution {
        let login = rawLogin.lowercased()
        guard !login.isEmpty, !login.contains("\u{0}") else { return .badAddress }
        let account: AccountID
        do {
            account = try await store.account(login: login, create: false, logger: logger)
        } catch .accountNotFound {
            guard provisionSystemUsers, isSystemUser(login) else { return .unknownUser }
            do {
                account = try await store.account(login: login, create: true, logger: logger)
            } catch {
                return .unavailable
            }
        } catch .cannot {
            return .disabled
        } catch {
            return .unavailable
        }
        var mailbox = MailboxName.inbox
        if let folder, !folder.isEmpty {
            let wanted = MailboxName(normalizing: folder)
            do {
                let mailboxes = try await store.listMailboxes(account: account, logger: logger)
                if mailboxes.contains(where: { $0.name == wanted }) { mailbox = wanted }
            } catch {
                return .unavailable
            }
        }
        do {
            let usage = try await store.quota(account: account, logger: logger)
            if let limit = usage.byteLimit, usage.usedBytes >= limit { return .overQuota }
            if let limit = usage.messageLimit, usage.usedMessages >= limit { return .overQuota }
        } catch {
            return .unavailable
        }
        return .recipient(Recipient(address: address, login: login, account: account, mailbox: mailbox))
    }

    /// A system account that may receive mail and log in: the same rule as PAM logins (`pam-min-uid`, never root),
    /// and not `nobody`.
    func isSystemUser(_ login: String) -> Bool {
        guard case .found(let uid) = PAMAuthenticator.systemAccount(login) else { return false }
        return uid != 0 && uid >= minimumUID && uid != 65534
    }

    /// Prepends `Return-Path:` and `Received:` (RFC 5321 §4.4) to the message, once for all recipients.
    static func traceHeaders(
        sender: String, heloName: String?, peer: String?, hostname: String, id: String, recipients: [String], date: Date
    ) -> [UInt8] {
        var received = "Received: from \(heloName ?? "unknown") (\(peer.map { "[\($0)]" } ?? "local"))\r\n"
        received += "\tby \(hostname) (MailHost) with LMTP id \(id)"
        // With one recipient the trace names it; with several the bytes stay the same for all of them.
        if recipients.count == 1 { received += "\r\n\tfor <\(recipients[0])>" }
        received += "; \(rfc5322Date(date))\r\n"
        return Array("Return-Path: <\(sender)>\r\n\(received)".utf8)
    }

    static func rfc5322Date(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970)
        let day = InternalDate(secondsSinceEpoch: seconds, zoneMinutes: 0).localDate
        let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        let weekday = weekdays[Int(((seconds / 86_400) % 7 + 7) % 7)]
        let secondOfDay = Int(((seconds % 86_400) + 86_400) % 86_400)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(weekday), \(day.day) \(months[day.month - 1]) \(day.year) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) +0000"
    }

    /// Stores `message` for each recipient, each in its own transaction: an `.stored` outcome means committed.
    /// Recipients in one account (`user`, `user+folder`) share the stored content; accounts never share it.
    func deliver(_ message: ParsedMessage, to recipients: [Recipient]) async -> [Outcome] {
        var shared: [AccountID: Int64] = [:]
        return await deliver(message, to: recipients, sharing: &shared)
    }

    private func deliver(_ message: ParsedMessage, to recipients: [Recipient], sharing shared: inout [AccountID: Int64])
        async -> [Outcome]
    {
        let date = InternalDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970), zoneMinutes: 0)
        var outcomes: [Outcome] = []
        for recipient in recipients {
            do {
                let (result, contentID) = try await store.append(
                    account: recipient.account, mailbox: recipient.mailbox, message: message, flags: MessageFlags(),
                    date: date, sharing: shared[recipient.account], logger: logger)
                shared[recipient.account] = contentID
                outcomes.append(.stored(result.uid))
                logger.info(
                    "delivered",
                    metadata: [
                        "lmtp.rcpt": "\(recipient.login)", "lmtp.mailbox": "\(recipient.mailbox)",
                        "lmtp.size": "\(message.bytes.count)",
                    ])
            } catch .overQuota {
                outcomes.append(.overQuota)
            } catch .unavailable, .outcomeUnknown {
                // Unknown outcome: the MTA tries again, and may deliver twice (RFC 5321 §6.1 accepts that).
                outcomes.append(.unavailable)
            } catch .mailboxNotFound {
                // Deleted since RCPT: INBOX still takes it.
                if recipient.mailbox != .inbox {
                    var fallback = recipient
                    fallback.mailbox = .inbox
                    outcomes.append(contentsOf: await deliver(message, to: [fallback], sharing: &shared))
                } else {
                    outcomes.append(.failed("mailbox vanished"))
                }
            } catch {
                logger.error("delivery failed", metadata: ["lmtp.rcpt": "\(recipient.login)", "error": "\(error)"])
                outcomes.append(.failed("\(error)"))
            }
        }
        return outcomes
    }
}
