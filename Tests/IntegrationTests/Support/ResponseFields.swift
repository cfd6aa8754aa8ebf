import Foundation

/// Pieces of response lines whose order or form the RFCs leave open (flag order, STATUS item order, ESEARCH items,
/// sequence-set spelling), taken apart so tests can compare them exactly.
///
/// Tests use the finders below rather than closures inside `#expect(…)`: Swift 6.3 can mix up a closure written
/// inside an `#expect` argument with another closure of the same function and run the wrong body.
enum ResponseFields {
    /// The first of `lines` that starts with `prefix`.
    static func first(_ lines: [String], startingWith prefix: String) -> String? {
        for line in lines where line.hasPrefix(prefix) { return line }
        return nil
    }

    /// The last of `lines` that starts with `prefix`.
    static func last(_ lines: [String], startingWith prefix: String) -> String? {
        for line in lines.reversed() where line.hasPrefix(prefix) { return line }
        return nil
    }

    /// The flags of the first `FLAGS (…)` in `line`, or nil when there is none.
    static func flags(in line: String) -> Set<String>? {
        guard let start = line.range(of: "FLAGS (") else { return nil }
        let rest = line[start.upperBound...]
        guard let end = rest.firstIndex(of: ")") else { return nil }
        return Set(rest[..<end].split(separator: " ").map(String.init))
    }

    /// A LIST or LSUB response (RFC 9051 §7.3.1): its attributes, delimiter, mailbox name (unquoted) and any
    /// extended data after the name.
    struct ListItem: Equatable, CustomStringConvertible {
        var attributes: Set<String>
        var delimiter: String
        var name: String
        var extended: String
        var description: String { "\(attributes.sorted()) \(delimiter) \(name.debugDescription) \(extended)" }
    }

    /// Parses `* LIST (…) "/" name` (or LSUB with `kind`); nil for other lines.
    static func listItem(_ line: String, kind: String = "LIST") -> ListItem? {
        let prefix = "* \(kind) ("
        guard line.hasPrefix(prefix), let close = line.firstIndex(of: ")") else { return nil }
        let attributes = Set(
            line[line.index(line.startIndex, offsetBy: prefix.count)..<close].split(separator: " ").map(String.init))
        var rest = line[line.index(after: close)...]
        guard rest.hasPrefix(" ") else { return nil }
        rest = rest.dropFirst()
        guard let (delimiter, afterDelimiter) = quotedOrAtom(rest) else { return nil }
        rest = afterDelimiter
        guard rest.hasPrefix(" ") else { return nil }
        guard let (name, afterName) = quotedOrAtom(rest.dropFirst()) else { return nil }
        return ListItem(
            attributes: attributes, delimiter: delimiter, name: name,
            extended: String(afterName.hasPrefix(" ") ? afterName.dropFirst() : afterName))
    }

    /// A quoted string (unescaped) or an atom / NIL at the start of `text`, and what follows it.
    private static func quotedOrAtom(_ text: Substring) -> (String, Substring)? {
        if text.hasPrefix("\"") {
            var value = ""
            var i = text.index(after: text.startIndex)
            while i < text.endIndex {
                let c = text[i]
                if c == "\\" {
                    i = text.index(after: i)
                    guard i < text.endIndex else { return nil }
                    value.append(text[i])
                } else if c == "\"" {
                    return (value, text[text.index(after: i)...])
                } else {
                    value.append(c)
                }
                i = text.index(after: i)
            }
            return nil
        }
        let end = text.firstIndex(of: " ") ?? text.endIndex
        guard end > text.startIndex else { return nil }
        return (String(text[..<end]), text[end...])
    }

    /// The LIST (or LSUB) items among `lines`, by mailbox name.
    static func listItems(_ lines: [String], kind: String = "LIST") -> [String: ListItem] {
        var result: [String: ListItem] = [:]
        for line in lines {
            if let item = listItem(line, kind: kind) { result[item.name] = item }
        }
        return result
    }

    /// `* STATUS name (A 1 B 2)` → ["A": "1", "B": "2"]; nil when `line` is not a STATUS response for `mailbox`.
    static func status(_ line: String, mailbox: String) -> [String: String]? {
        let prefix = "* STATUS \(mailbox) ("
        guard line.hasPrefix(prefix), line.hasSuffix(")") else { return nil }
        let words = line.dropFirst(prefix.count).dropLast().split(separator: " ").map(String.init)
        guard words.count % 2 == 0 else { return nil }
        var result: [String: String] = [:]
        for i in stride(from: 0, to: words.count, by: 2) { result[words[i]] = words[i + 1] }
        return result
    }

    /// An ESEARCH response (RFC 4731 §3.1): its tag correlator, whether it says UID, and its return data, with `ALL`
    /// expanded to a sorted list of numbers so that `3:6` and `3,4,5,6` compare equal.
    struct ESearch: Equatable, CustomStringConvertible {
        var tag: String?
        var uid: Bool
        var data: [String: String]
        var description: String { "ESEARCH tag=\(tag ?? "nil") uid=\(uid) \(data)" }
    }

    static func esearch(_ line: String) -> ESearch? {
        guard line.hasPrefix("* ESEARCH") else { return nil }
        var rest = Substring(line.dropFirst("* ESEARCH".count))
        var result = ESearch(tag: nil, uid: false, data: [:])
        if rest.hasPrefix(" (TAG \"") {
            rest = rest.dropFirst(" (TAG \"".count)
            guard let quote = rest.firstIndex(of: "\"") else { return nil }
            result.tag = String(rest[..<quote])
            rest = rest[rest.index(after: quote)...]
            guard rest.hasPrefix(")") else { return nil }
            rest = rest.dropFirst()
        }
        var words = rest.split(separator: " ").map(String.init)
        if words.first == "UID" {
            result.uid = true
            words.removeFirst()
        }
        guard words.count % 2 == 0 else { return nil }
        for i in stride(from: 0, to: words.count, by: 2) {
            let name = words[i].uppercased()
            result.data[name] =
                name == "ALL" ? numbers(words[i + 1]).map(String.init).joined(separator: ",") : words[i + 1]
        }
        return result
    }

    /// A string value in a response: NIL, a quoted string or literal (RFC 9051 `nstring`), or a `literal8`.
    enum NString: Equatable, CustomStringConvertible {
        case nilValue
        case string(String)
        case literal8(String)
        var description: String {
            switch self {
            case .nilValue: "NIL"
            case .string(let text): "string(\(text.debugDescription))"
            case .literal8(let text): "literal8(\(text.debugDescription))"
            }
        }
    }

    /// The nstring following the first `marker` in `line` (a line from `readResponseLine`, literals inline), and the
    /// rest of the line after it; nil when the marker is missing or the value is malformed.
    static func nstring(after marker: String, in line: String) -> (value: NString, rest: String)? {
        guard let start = line.range(of: marker) else { return nil }
        let bytes = Array(line[start.upperBound...].utf8)
        if bytes.starts(with: Array("NIL".utf8)) {
            return (.nilValue, String(decoding: bytes.dropFirst(3), as: UTF8.self))
        }
        if bytes.first == UInt8(ascii: "\"") {
            var text: [UInt8] = []
            var i = 1
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\\") where i + 1 < bytes.count:
                    text.append(bytes[i + 1])
                    i += 2
                case UInt8(ascii: "\""):
                    return (
                        .string(String(decoding: text, as: UTF8.self)),
                        String(decoding: bytes[(i + 1)...], as: UTF8.self)
                    )
                default:
                    text.append(bytes[i])
                    i += 1
                }
            }
            return nil
        }
        let binary = bytes.first == UInt8(ascii: "~")
        let open = binary ? 1 : 0
        guard bytes.count > open, bytes[open] == UInt8(ascii: "{"),
            let close = bytes[open...].firstIndex(of: UInt8(ascii: "}"))
        else { return nil }
        var digits = bytes[(open + 1)..<close]
        if digits.last == UInt8(ascii: "+") { digits = digits.dropLast() }
        guard let count = Int(String(decoding: digits, as: UTF8.self)), bytes.count >= close + 3 + count,
            bytes[(close + 1)..<(close + 3)].elementsEqual([13, 10])
        else { return nil }
        let content = String(decoding: bytes[(close + 3)..<(close + 3 + count)], as: UTF8.self)
        return (
            binary ? .literal8(content) : .string(content),
            String(decoding: bytes[(close + 3 + count)...], as: UTF8.self)
        )
    }

    /// The numbers of a sequence set without `*`, ascending: `"2,4:5"` → [2, 4, 5].
    static func numbers(_ set: String) -> [Int] {
        var result: [Int] = []
        for part in set.split(separator: ",") {
            let bounds = part.split(separator: ":").compactMap { Int($0) }
            if bounds.count == 2 {
                result += Array(min(bounds[0], bounds[1])...max(bounds[0], bounds[1]))
            } else if let single = bounds.first {
                result.append(single)
            }
        }
        return Array(Set(result)).sorted()
    }
}
