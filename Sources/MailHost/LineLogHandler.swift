import Foundation
import Glibc
import Logging
import Synchronization

/// One line per event on standard error (DESIGN.md §8), in logfmt
/// (`ts=… level=info msg=listening imap=127.0.0.1:1143 imap.conn=3`; values with spaces, quotes or `=` are quoted) or
/// as one JSON object (`--log-format json`), with the same fields either way.
struct LineLogHandler: LogHandler {
    enum Format: Sendable { case logfmt, json }

    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let label: String
    let format: Format

    private static let output = Mutex<Void>(())

    init(label: String, level: Logger.Level, format: Format = .logfmt) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Self.timestamp()), ("level", "\(event.level)"), ("msg", event.message.description),
        ]
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted() { fields.append((key, String(describing: merged[key]!))) }
        if event.level >= .error { fields.append(("source", "\(event.file):\(event.line)")) }
        let line: Data
        switch format {
        case .logfmt:
            line = Data((fields.map { "\($0.0)=\(Self.quote($0.1))" }.joined(separator: " ") + "\n").utf8)
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let object = Dictionary(fields, uniquingKeysWith: { _, last in last })
            guard var data = try? encoder.encode(object) else { return }
            data.append(0x0A)
            line = data
        }
        Self.output.withLock { _ in FileHandle.standardError.write(line) }
    }

    /// A logfmt value: bare when it is plain, otherwise in quotes with `"` and `\\` escaped and every control
    /// character written as an escape, so no value a client controls (a user name, a mailbox name) can end the line,
    /// close the quotes or pose as another field (deploy/fail2ban relies on this).
    static func quote(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty || value.unicodeScalars.contains { " \"=\\".unicodeScalars.contains($0) || isControl($0) }
        guard needsQuotes else { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: whatever could break a line.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F..<0xA0).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}"
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var time = now.tv_sec
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }
}
