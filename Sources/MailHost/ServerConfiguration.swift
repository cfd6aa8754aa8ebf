import ArgumentParser
import Foundation
import Glibc
import IMAPEngine
import Logging
import Storage

/// Every setting of `mailhost serve`, from three layers: the command line over the environment (`MAILHOST_` + the
/// key in upper case with `_` for `-`) over the configuration file (`--config FILE`, one `key = value` per line), over
/// the defaults. Every command line option is a key of the same name.
struct ServerConfiguration: Sendable {
    var imap: [ListenAddress] = []
    var imaps: [ListenAddress] = []
    var imapProxy: [ListenAddress] = []
    var storage: String?
    var auth: [String] = ["pam"]
    var pamService = "mailhost"
    var tlsCertificate: String?
    var tlsKey: String?
    var proxyTrusted: [NetworkRange] = [NetworkRange.loopbackV4, NetworkRange.loopbackV6]
    var metrics: ListenAddress?
    var allowPlaintextAuth = false
    var logLevel: Logger.Level = .info
    var logFormat = "logfmt"
    var limits = IMAPLimits()
    var connectionLimits = ConnectionRegistry.Limits()
    var loginPenaltyCap: Duration = .seconds(15)
    var shutdownTimeout: Duration = .seconds(30)
    var storeTimeout: Duration = .seconds(15)
    var lmtp: [LMTPAddress] = []
    var lmtpDomains: [String] = []
    var lmtpHostname: String = ServerConfiguration.systemHostname
    var lmtpMaxRecipients = 100
    var lmtpMaxConnections = 100
    var lmtpTimeout: Duration = .seconds(300)
    var lmtpQuotaTemporary = false
    var uploadMemory = IMAPLimits.defaultUploadMemory
    var pamMinimumUID = 1000
    var authCacheSize = 10_000
    var qresyncRetentionDays = 365

    static var systemHostname: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    /// A key's help text for `mailhost serve --help`, with its default.
    static func help(for key: String) -> ArgumentHelp {
        let text = keys.first { $0.name == key }?.help ?? key
        // Keys whose text already says their default (the host name, loopback) keep it.
        let fallback = text.contains("default") ? "" : ServerConfiguration().value(of: key)
        return ArgumentHelp(
            text.prefix(1).uppercased() + text.dropFirst() + (fallback.isEmpty ? "." : "; default \(fallback)."))
    }

    /// Each key with its help text, in the order `config check` prints them.
    static let keys: [(name: String, list: Bool, help: String)] = [
        ("imap", true, "IMAP listener HOST:PORT (repeatable; port 0 picks a free port); default 127.0.0.1:1143"),
        ("imaps", true, "implicit-TLS IMAP listener HOST:PORT (repeatable)"),
        ("imap-proxy", true, "plain IMAP listener that requires a PROXY v1/v2 header first (repeatable)"),
        ("storage", false, "store URL, postgres://USER@HOST:PORT/DB"),
        ("auth", false, "password checks tried in order: pam, db, or a list such as db,pam"),
        ("pam-service", false, "PAM service name (a file in /etc/pam.d)"),
        (
            "auth-cache-size", false,
            "store-account logins whose verified password is remembered for an hour, skipping crypt(3); 0 turns it off"
        ),
        ("pam-min-uid", false, "lowest uid of a system account that may log in through PAM (root never may)"),
        ("tls-cert", false, "PEM certificate chain for IMAPS and STARTTLS"),
        ("tls-key", false, "PEM private key for the certificate"),
        ("proxy-trusted", true, "network (CIDR) allowed to send PROXY headers (repeatable); default loopback"),
        ("metrics", false, "Prometheus /metrics listener HOST:PORT"),
        ("allow-plaintext-auth", false, "accept LOGIN and AUTHENTICATE PLAIN without TLS from any address"),
        ("log-level", false, "trace, debug, info, notice, warning, error or critical"),
        ("log-format", false, "logfmt or json"),
        ("max-connections", false, "connections in total"),
        ("max-connections-per-address", false, "connections from one address before login"),
        ("max-connections-per-user", false, "connections of one user from one address"),
        ("max-line-length", false, "longest command line in bytes"),
        ("max-literal-size", false, "largest literal outside APPEND in bytes"),
        ("max-append-size", false, "largest message APPEND accepts in bytes (advertised as APPENDLIMIT)"),
        ("max-bad-commands", false, "bad commands in a row before BYE"),
        ("max-command-size", false, "largest command other than APPEND, lines and literals together, in bytes"),
        ("max-line-length-before-login", false, "longest command line before login, in bytes"),
        ("max-literal-size-before-login", false, "largest literal before login (a password), in bytes"),
        ("max-fetch-items", false, "items in one FETCH"),
        (
            "max-upload-memory", false,
            "memory for messages being uploaded (APPEND, LMTP), all connections together, in bytes"
        ),
        ("idle-timeout", false, "seconds of inactivity before autologout once logged in (at least 1800 by RFC 9051)"),
        ("login-timeout", false, "seconds of inactivity before autologout before login"),
        ("login-penalty-cap", false, "longest extra delay for repeated failed logins from one address, in seconds"),
        ("shutdown-timeout", false, "seconds running commands get to finish after SIGTERM"),
        ("store-timeout", false, "seconds after which a database call fails with UNAVAILABLE"),
        (
            "qresync-retention", false,
            "days expunges are remembered for an exact QRESYNC resync; older ones are reported as possibly expunged"
        ),
        ("lmtp", true, "LMTP listener HOST:PORT or unix:/path (repeatable)"),
        ("lmtp-domain", true, "domain delivered locally (repeatable; none: any domain)"),
        ("lmtp-hostname", false, "name in LMTP greetings and Received: headers; default the host name"),
        ("lmtp-max-recipients", false, "recipients per LMTP transaction"),
        ("lmtp-max-connections", false, "LMTP connections at once"),
        ("lmtp-timeout", false, "seconds an LMTP client may stay silent before 421 and close (RFC 5321: 300)"),
        ("lmtp-quota-temporary", false, "answer over-quota with 452 4.2.2 (retry) instead of 552 5.2.2 (bounce)"),
    ]

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// Where each effective value came from, for `config check`.
    private(set) var sources: [String: String] = [:]

    /// Merges the layers; `commandLine` holds only what was given on the command line.
    static func load(
        commandLine: [String: [String]], environment: [String: String], file: String?
    ) throws -> ServerConfiguration {
        var values: [String: (values: [String], source: String)] = [:]
        if let file {
            for (key, list) in try parseFile(file) { values[key] = (list, file) }
        }
        for (key, _, _) in keys {
            let variable = "MAILHOST_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
            if let value = environment[variable] {
                let list = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                values[key] = (list, "environment \(variable)")
            }
        }
        for (key, list) in commandLine where !list.isEmpty { values[key] = (list, "command line") }
        var configuration = ServerConfiguration()
        for (key, entry) in values {
            do {
                try configuration.apply(key, entry.values)
            } catch let problem as Problem {
                throw Problem(description: "\(key) (\(entry.source)): \(problem.description)")
            }
            configuration.sources[key] = entry.source
        }
        if configuration.imap.isEmpty && configuration.imaps.isEmpty && configuration.imapProxy.isEmpty
            && configuration.lmtp.isEmpty
        {
            configuration.imap = [ListenAddress(host: "127.0.0.1", port: 1143)]
        }
        if (configuration.tlsCertificate == nil) != (configuration.tlsKey == nil) {
            throw Problem(description: "tls-cert and tls-key go together")
        }
        if !configuration.imaps.isEmpty && configuration.tlsCertificate == nil {
            throw Problem(description: "imaps needs tls-cert and tls-key")
        }
        let largest = MessageBudget.cost(configuration.limits.maxAppendSize)
        if largest > configuration.uploadMemory {
            throw Problem(
                description:
                    "max-upload-memory (\(configuration.uploadMemory)) must hold one message of max-append-size: "
                    + "\(MessageBudget.costFactor) x \(configuration.limits.maxAppendSize) = \(largest) bytes")
        }
        return configuration
    }

    /// The file's entries by key (`ConfigurationFile`); a key that is not an option is refused with its line.
    static func parseFile(_ path: String) throws -> [String: [String]] {
        let entries: [ConfigurationFile.Entry]
        do {
            entries = try ConfigurationFile.read(path)
        } catch {
            throw Problem(description: error.description)
        }
        var result: [String: [String]] = [:]
        for entry in entries {
            guard keys.contains(where: { $0.name == entry.key }) else {
                throw Problem(description: "\(path):\(entry.line): unknown key \(entry.key)")
            }
            result[entry.key, default: []].append(contentsOf: entry.values)
        }
        return result
    }

    private mutating func apply(_ key: String, _ list: [String]) throws {
        func single() throws -> String {
            guard list.count == 1, let value = list.first, !value.isEmpty else {
                throw Problem(description: "expected one value")
            }
            return value
        }
        func number(_ range: ClosedRange<Int>) throws -> Int {
            let text = try single()
            guard let value = Int(text), range.contains(value) else {
                throw Problem(
                    description: "\(text) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        func boolean() throws -> Bool {
            switch try single().lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            case let other: throw Problem(description: "\(other) is not true or false")
            }
        }
        func addresses() throws -> [ListenAddress] {
            try list.map { text in
                do { return try ListenAddress(parsing: text) } catch { throw Problem(description: "\(error)") }
            }
        }
        switch key {
        case "imap": imap = try addresses()
        case "imaps": imaps = try addresses()
        case "imap-proxy": imapProxy = try addresses()
        case "storage": storage = try single()
        case "auth":
            let names = list.flatMap { $0.split(separator: ",") }.map {
                $0.trimmingCharacters(in: .whitespaces).lowercased()
            }
            guard !names.isEmpty, names.allSatisfy({ ["pam", "db"].contains($0) }) else {
                throw Problem(description: "use pam, db, or a list such as db,pam")
            }
            auth = names
        case "pam-service": pamService = try single()
        case "tls-cert": tlsCertificate = try single()
        case "tls-key": tlsKey = try single()
        case "proxy-trusted":
            proxyTrusted = try list.map { text in
                guard let range = NetworkRange(text) else {
                    throw Problem(description: "\(text) is not a CIDR network")
                }
                return range
            }
        case "metrics":
            metrics = try addresses().first
        case "allow-plaintext-auth": allowPlaintextAuth = try boolean()
        case "log-level":
            guard let level = Logger.Level(rawValue: try single().lowercased()) else {
                throw Problem(description: "use trace, debug, info, notice, warning, error or critical")
            }
            logLevel = level
        case "log-format":
            let format = try single().lowercased()
            guard ["logfmt", "json"].contains(format) else { throw Problem(description: "use logfmt or json") }
            logFormat = format
        case "max-connections": connectionLimits.total = try number(1...1_000_000)
        case "max-connections-per-address": connectionLimits.perAddressBeforeLogin = try number(1...1_000_000)
        case "max-connections-per-user": connectionLimits.perUserAndAddress = try number(1...1_000_000)
        case "max-line-length": limits.maxLineLength = try number(1024...16 << 20)
        case "max-literal-size": limits.maxInlineLiteral = try number(1024...16 << 20)
        case "max-append-size": limits.maxAppendSize = try number(1024...(1 << 31) - 1)
        case "max-bad-commands": limits.maxBadCommands = try number(1...1000)
        case "max-command-size": limits.maxCommandSize = try number(8192...(1 << 30))
        case "max-line-length-before-login": limits.maxLineLengthBeforeLogin = try number(1024...1 << 20)
        case "max-literal-size-before-login": limits.maxLiteralBeforeLogin = try number(256...1 << 20)
        case "max-fetch-items": limits.maxFetchItems = try number(8...100_000)
        case "max-upload-memory": uploadMemory = try number((16 << 20)...Int.max)
        case "pam-min-uid": pamMinimumUID = try number(1...Int(Int32.max))
        case "auth-cache-size": authCacheSize = try number(0...10_000_000)
        case "qresync-retention": qresyncRetentionDays = try number(2...36_500)
        case "idle-timeout": limits.authenticatedTimeout = .seconds(try number(1...86_400))
        case "login-timeout": limits.unauthenticatedTimeout = .seconds(try number(1...86_400))
        case "login-penalty-cap": loginPenaltyCap = .seconds(try number(0...3600))
        case "shutdown-timeout": shutdownTimeout = .seconds(try number(0...3600))
        case "store-timeout": storeTimeout = .seconds(try number(1...3600))
        case "lmtp":
            lmtp = try list.map { text in
                do { return try LMTPAddress(parsing: text) } catch { throw Problem(description: "\(error)") }
            }
        case "lmtp-domain":
            lmtpDomains = list.map { $0.lowercased() }.filter { !$0.isEmpty }
        case "lmtp-hostname": lmtpHostname = try single()
        case "lmtp-max-recipients": lmtpMaxRecipients = try number(1...10_000)
        case "lmtp-max-connections": lmtpMaxConnections = try number(1...100_000)
        case "lmtp-timeout": lmtpTimeout = .seconds(try number(1...86_400))
        case "lmtp-quota-temporary": lmtpQuotaTemporary = try boolean()
        default: throw Problem(description: "unknown key")
        }
    }

    /// A key's effective value as `config check` prints it; empty when unset.
    func value(of key: String) -> String {
        switch key {
        case "imap": imap.map(\.description).joined(separator: ", ")
        case "imaps": imaps.map(\.description).joined(separator: ", ")
        case "imap-proxy": imapProxy.map(\.description).joined(separator: ", ")
        case "storage": storage.map(Self.redactedURL) ?? ""
        case "auth": auth.joined(separator: ",")
        case "pam-service": pamService
        case "tls-cert": tlsCertificate ?? ""
        case "tls-key": tlsKey ?? ""
        case "proxy-trusted": proxyTrusted.map(\.description).joined(separator: ", ")
        case "metrics": metrics?.description ?? ""
        case "allow-plaintext-auth": allowPlaintextAuth ? "true" : "false"
        case "log-level": "\(logLevel)"
        case "log-format": logFormat
        case "max-connections": "\(connectionLimits.total)"
        case "max-connections-per-address": "\(connectionLimits.perAddressBeforeLogin)"
        case "max-connections-per-user": "\(connectionLimits.perUserAndAddress)"
        case "max-line-length": "\(limits.maxLineLength)"
        case "max-literal-size": "\(limits.maxInlineLiteral)"
        case "max-append-size": "\(limits.maxAppendSize)"
        case "max-bad-commands": "\(limits.maxBadCommands)"
        case "max-command-size": "\(limits.maxCommandSize)"
        case "max-line-length-before-login": "\(limits.maxLineLengthBeforeLogin)"
        case "max-literal-size-before-login": "\(limits.maxLiteralBeforeLogin)"
        case "max-fetch-items": "\(limits.maxFetchItems)"
        case "max-upload-memory": "\(uploadMemory)"
        case "pam-min-uid": "\(pamMinimumUID)"
        case "auth-cache-size": "\(authCacheSize)"
        case "qresync-retention": "\(qresyncRetentionDays)"
        case "idle-timeout": "\(limits.authenticatedTimeout.components.seconds)"
        case "login-timeout": "\(limits.unauthenticatedTimeout.components.seconds)"
        case "login-penalty-cap": "\(loginPenaltyCap.components.seconds)"
        case "shutdown-timeout": "\(shutdownTimeout.components.seconds)"
        case "store-timeout": "\(storeTimeout.components.seconds)"
        case "lmtp": lmtp.map(\.description).joined(separator: ", ")
        case "lmtp-domain": lmtpDomains.joined(separator: ", ")
        case "lmtp-hostname": lmtpHostname
        case "lmtp-max-recipients": "\(lmtpMaxRecipients)"
        case "lmtp-max-connections": "\(lmtpMaxConnections)"
        case "lmtp-timeout": "\(lmtpTimeout.components.seconds)"
        case "lmtp-quota-temporary": lmtpQuotaTemporary ? "true" : "false"
        default: ""
        }
    }

    /// The effective configuration as a file that `--config` would read back, with where each value came from.
    var description: String {
        Self.keys.map { key in
            let value = value(of: key.name)
            let line = value.isEmpty ? "# \(key.name) =" : "\(key.name) = \(value)"
            return line.padding(toLength: max(line.count, 48), withPad: " ", startingAt: 0)
                + "  # \(sources[key.name] ?? "default")"
        }.joined(separator: "\n")
    }

    /// The storage URL without its password.
    static func redactedURL(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }
}

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `::1/128`); a bare address is a /32 or /128.
struct NetworkRange: Sendable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefix: Int

    static let loopbackV4 = NetworkRange("127.0.0.0/8")!
    static let loopbackV6 = NetworkRange("::1/128")!

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = Self.parse(String(first)) else { return nil }
        let bits = address.count * 8
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0...bits).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            self.prefix = bits
        }
        bytes = address
    }

    func contains(_ text: String) -> Bool {
        guard var address = Self.parse(text) else { return false }
        // IPv4-mapped IPv6 (::ffff:a.b.c.d) matches IPv4 networks.
        if address.count == 16, bytes.count == 4, address.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] {
            address = Array(address.suffix(4))
        }
        guard address.count == bytes.count else { return false }
        var remaining = prefix
        for (a, b) in zip(address, bytes) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }

    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        var copy = bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        _ = inet_ntop(family, &copy, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/\(prefix)"
    }
}
