import Foundation

/// The configuration file both tools read (`mailhost --config FILE`, `mailadmin --config FILE`, or
/// `MAILHOST_CONFIG`): one `key = value` per line; `#` starts a comment; a key may repeat, or hold a comma-separated
/// list; a value may stand in double quotes. Which keys exist is the server's business (`mailhost config check`).
public enum ConfigurationFile {
    public struct Entry: Sendable, Equatable {
        public var line: Int
        public var key: String
        public var values: [String]
        public init(line: Int, key: String, values: [String]) {
            self.line = line
            self.key = key
            self.values = values
        }
    }

    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    public static func read(_ path: String) throws(Problem) -> [Entry] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Problem(description: "cannot read configuration file \(path): \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws(Problem) -> [Entry] {
        var entries: [Entry] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line =
                rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw Problem(description: "\(path):\(number + 1): expected key = value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            entries.append(
                Entry(
                    line: number + 1, key: key,
                    values: value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }))
        }
        return entries
    }
}
