import Foundation

/// The details of a change notification (`PostgresMailStore.changeNotice`), as PostgreSQL's `json_build_object`
/// writes them: `{"r" : 5, "c" : [[7, 8, ["$Label"]]], "x" : [3]}`.
///
/// Every instance reads the notice of every write in the organisation, so the reading is on the hot path: the
/// reader below takes exactly that shape byte by byte (JSONDecoder cost a twentieth of an APPEND's CPU). Anything
/// else (another key order is fine; `null`, a duplicate key, a fraction) is left to JSONDecoder, which gives the
/// same answer or none.
struct NoticeDetails: Decodable, Equatable {
    struct Change: Decodable, Equatable {
        var uid: Int64
        var flags: Int16
        var keywords: [String]

        init(uid: Int64, flags: Int16, keywords: [String]) {
            self.uid = uid
            self.flags = flags
            self.keywords = keywords
        }

        init(from decoder: any Decoder) throws {
            var fields = try decoder.unkeyedContainer()
            uid = try fields.decode(Int64.self)
            flags = try fields.decode(Int16.self)
            keywords = try fields.decode([String].self)
        }
    }

    var r: Int64
    var c: [Change]?
    var x: [Int64]?

    init(r: Int64, c: [Change]?, x: [Int64]?) {
        self.r = r
        self.c = c
        self.x = x
    }

    static func decode(_ text: Substring) throws -> NoticeDetails {
        if let quick = Array(text.utf8).withUnsafeBufferPointer({ bytes in
            var reader = Reader(bytes: bytes)
            return reader.details()
        }) {
            return quick
        }
        return try JSONDecoder().decode(NoticeDetails.self, from: Data(text.utf8))
    }

    /// The byte reader: each method answers nil for anything outside the shape above.
    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func details() -> NoticeDetails? {
            guard take(UInt8(ascii: "{")) else { return nil }
            var r: Int64?
            var c: [Change]?
            var x: [Int64]?
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "r" where r == nil:
                    guard let value = integer() else { return nil }
                    r = value
                case "c" where c == nil:
                    guard let value = array({ $0.change() }) else { return nil }
                    c = value
                case "x" where x == nil:
                    guard let value = array({ $0.integer() }) else { return nil }
                    x = value
                default:
                    return nil
                }
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")), let r else { return nil }
            skipSpace()
            guard index == bytes.count else { return nil }
            return NoticeDetails(r: r, c: c, x: x)
        }

        mutating func change() -> Change? {
            guard take(UInt8(ascii: "[")), let uid = integer(), take(UInt8(ascii: ",")),
                let flags = integer().flatMap({ Int16(exactly: $0) }), take(UInt8(ascii: ",")),
                let keywords = array({ $0.string() }), take(UInt8(ascii: "]"))
            else { return nil }
            return Change(uid: uid, flags: flags, keywords: keywords)
        }

        mutating func array<T>(_ element: (inout Reader) -> T?) -> [T]? {
            guard take(UInt8(ascii: "[")) else { return nil }
            var elements: [T] = []
            if take(UInt8(ascii: "]")) { return elements }
            repeat {
                guard let value = element(&self) else { return nil }
                elements.append(value)
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]")) ? elements : nil
        }

        mutating func integer() -> Int64? {
            skipSpace()
            let negative = take(UInt8(ascii: "-"))
            var value: Int64 = 0
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                let (times, over1) = value.multipliedReportingOverflow(by: 10)
                let (sum, over2) = times.addingReportingOverflow(Int64(bytes[index] - UInt8(ascii: "0")))
                guard !over1, !over2 else { return nil }
                value = sum
                index += 1
            }
            // JSON has no leading zeros.
            guard index > start, bytes[start] != UInt8(ascii: "0") || index == start + 1 else { return nil }
            if index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index]) {
                return nil
            }
            return negative ? -value : value
        }

        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var out: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var unit = hex4() else { return nil }
                        if (0xD800...0xDBFF).contains(unit) {
                            guard take(UInt8(ascii: "\\"), skipping: false), take(UInt8(ascii: "u"), skipping: false),
                                let low = hex4(), (0xDC00...0xDFFF).contains(low)
                            else { return nil }
                            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(unit) else { return nil }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default:
                        return nil
                    }
                default:
                    guard byte >= 0x20 else { return nil }
                    out.append(byte)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let digit = Character(Unicode.Scalar(bytes[index])).hexDigitValue else { return nil }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// Takes `byte` (after any whitespace, unless `skipping` is false) when it is next.
        mutating func take(_ byte: UInt8, skipping: Bool = true) -> Bool {
            if skipping { skipSpace() }
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
    }
}
