import Foundation

@testable import IMAPEngine

/// Fixture messages live beside this file (found through `#filePath`, not bundle resources).
enum MIMEFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "Fixtures")

    static func bytes(_ name: String) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
            return []
        }
        return [UInt8](data)
    }

    static func parsed(_ name: String) -> ParsedMessage { ParsedMessage(parsing: bytes(name)) }

    static let all = [
        "simple.eml", "alternative.eml", "mixed-related.eml", "rfc822-attachment.eml", "rfc2231.eml",
        "encoded-words.eml", "groups.eml", "obsolete-addresses.eml", "missing-headers.eml", "broken-boundary.eml",
        "bare-lf.eml", "8bit-utf8.eml", "binary-nul.eml", "base64-qp.eml", "digest.eml",
    ]

    /// Wire bytes as a String, for comparing with expectations written in Swift literals.
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// True when parentheses balance outside quoted strings and literals, and every string and literal is complete.
    static func isBalanced(_ bytes: [UInt8]) -> Bool {
        var depth = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "("):
                depth += 1
            case UInt8(ascii: ")"):
                depth -= 1
                if depth < 0 { return false }
            case UInt8(ascii: "\""):
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\") { index += 1 }
                    if index < bytes.count,
                        bytes[index] >= 0x80 || bytes[index] == 0 || bytes[index] == 0x0D
                            || bytes[index] == 0x0A
                    {
                        return false
                    }
                    index += 1
                }
                if index >= bytes.count { return false }
            case UInt8(ascii: "{"):
                var count = 0
                index += 1
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                    count = count * 10 + Int(bytes[index] - 0x30)
                    if count > bytes.count { return false }
                    index += 1
                }
                guard index + 2 < bytes.count, bytes[index] == UInt8(ascii: "}"), bytes[index + 1] == 0x0D,
                    bytes[index + 2] == 0x0A
                else { return false }
                index += 3
                guard index + count <= bytes.count, !bytes[index..<(index + count)].contains(0) else { return false }
                index += count - 1
            default:
                break
            }
            index += 1
        }
        return depth == 0
    }
}

extension ParsedMessage {
    /// The bytes of `BODY[part.text]`, nil when the section does not exist.
    func sectionBytes(_ part: [Int], _ text: SectionText? = nil) -> [UInt8]? {
        root.range(part: part, text: text).map { Array(bytes[$0]) }
    }

    func sectionString(_ part: [Int], _ text: SectionText? = nil) -> String? {
        sectionBytes(part, text).map { String(decoding: $0, as: UTF8.self) }
    }

    /// BINARY[part] as the server would produce it.
    func binaryBytes(_ part: [Int]) -> [UInt8]? {
        guard let leaf = root.binaryPart(part) else { return nil }
        return TransferEncoding.decode(bytes[leaf.bodyStart..<leaf.bodyEnd], encoding: leaf.encoding)
    }

    /// The part at `path` of the tree (children indices, not IMAP part numbers).
    func partNode(_ path: Int...) -> MessagePart? {
        var node = root
        for index in path {
            guard index < node.children.count else { return nil }
            node = node.children[index]
        }
        return node
    }
}
