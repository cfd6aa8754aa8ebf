import Foundation
import ArgumentParser

/// Quota sizes on the command line: `1048576`, `500K`, `500M`, `2G`, `1.5GiB`, `1 TB` (units are powers of 1024, as
/// Dovecot reads them), or `none` / `unlimited`.
enum QuotaSize {
    static let units: [(suffixes: [String], factor: Double)] = [
        (["", "B"], 1),
        (["K", "KB", "KIB"], 1024),
        (["M", "MB", "MIB"], 1024 * 1024),
        (["G", "GB", "GIB"], 1024 * 1024 * 1024),
        (["T", "TB", "TIB"], 1024 * 1024 * 1024 * 1024),
    ]

    /// Bytes, or nil for no limit. Anything else (`12 parsecs`, `-5M`, `1e9`) is an error naming the input.
    static func parseBytes(_ text: String) throws -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if ["none", "unlimited"].contains(trimmed.lowercased()) { return nil }
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(number.count).trimmingCharacters(in: .whitespaces).uppercased()
        guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, let value = Double(number),
            let factor = units.first(where: { $0.suffixes.contains(unit) })?.factor
        else {
            throw ValidationError(
                "invalid size \(text.debugDescription): use a number with an optional unit K, M, G or T (e.g. 500M), or none"
            )
        }
        let bytes = value * factor
        guard bytes >= 1, bytes < 9.0e18 else { throw ValidationError("size \(text.debugDescription) is out of range") }
        return Int64(bytes.rounded())
    }

    /// A message count, or nil for no limit.
    static func parseCount(_ text: String) throws -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if ["none", "unlimited"].contains(trimmed.lowercased()) { return nil }
        guard let count = Int64(trimmed), count > 0 else {
            throw ValidationError("invalid message count \(text.debugDescription): use a positive whole number or none")
        }
        return count
    }

    /// `1.5 GiB` style, for tables.
    static func format(_ bytes: Int64) -> String {
        var value = Double(bytes)
        for unit in ["B", "KiB", "MiB", "GiB", "TiB"] {
            if value < 1024 || unit == "TiB" {
                return unit == "B" ? "\(bytes) B" : String(format: "%.1f %@", value, unit)
            }
            value /= 1024
        }
        return "\(bytes) B"
    }
}
