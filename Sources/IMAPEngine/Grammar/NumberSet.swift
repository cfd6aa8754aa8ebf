/// A `sequence-set` as the client wrote it (RFC 9051 §9): ranges of numbers where `*` stands for the largest
/// number in use. Whether the numbers are sequence numbers or UIDs is decided by `MessageSelector`.
public struct NumberSet: Hashable, Sendable, CustomStringConvertible {
    public enum Bound: Hashable, Sendable {
        case number(UInt32)
        case star
    }

    public struct Range: Hashable, Sendable {
        public var first: Bound
        public var last: Bound
        public init(_ first: Bound, _ last: Bound) {
            self.first = first
            self.last = last
        }
    }

    public var ranges: [Range]
    /// `$`: the result saved by the last `SEARCH RETURN (SAVE)` (RFC 5182 §2.1); `ranges` is then empty.
    public var isLastSearchResult: Bool

    public init(ranges: [Range]) {
        self.ranges = ranges
        self.isLastSearchResult = false
    }

    public static let lastSearchResult: NumberSet = {
        var set = NumberSet(ranges: [])
        set.isLastSearchResult = true
        return set
    }()

    /// `ranges` with `*` replaced by `star` and every range ordered low...high.
    public func resolved(star: UInt32) -> [ClosedRange<UInt32>] {
        ranges.map { range in
            let a = range.first.value(star: star)
            let b = range.last.value(star: star)
            return min(a, b)...max(a, b)
        }
    }

    public var containsStar: Bool {
        ranges.contains { $0.first == .star || $0.last == .star }
    }

    /// The wire form, e.g. `1:3,7,9:*`.
    public var description: String {
        if isLastSearchResult { return "$" }
        return ranges.map { range in
            range.first == range.last ? range.first.wire : range.first.wire + ":" + range.last.wire
        }.joined(separator: ",")
    }
}

extension NumberSet.Bound {
    func value(star: UInt32) -> UInt32 {
        switch self {
        case .number(let n): n
        case .star: star
        }
    }

    var wire: String {
        switch self {
        case .number(let n): String(n)
        case .star: "*"
        }
    }
}

/// How a command addresses messages: by sequence number or by UID (RFC 9051 §6.4.9).
public enum MessageSelector: Hashable, Sendable {
    case sequence(NumberSet)
    case uid(NumberSet)

    var isUID: Bool {
        if case .uid = self { return true }
        return false
    }
}

/// Sorted, disjoint UID ranges: compact for wire output (`uid-set`, `sequence-set`) and for SQL binds.
public struct UIDRanges: Hashable, Sendable, CustomStringConvertible {
    public private(set) var ranges: [ClosedRange<UInt32>]

    public init() { ranges = [] }

    /// Builds ranges from UIDs in any order; duplicates are merged.
    public init(_ uids: some Sequence<UID>) {
        let sorted = uids.map(\.rawValue).sorted()
        var result: [ClosedRange<UInt32>] = []
        for value in sorted {
            if let last = result.last {
                if value <= last.upperBound { continue }
                if value == last.upperBound + 1 {
                    result[result.count - 1] = last.lowerBound...value
                    continue
                }
            }
            result.append(value...value)
        }
        ranges = result
    }

    /// Normalises arbitrary ranges into sorted, disjoint ones.
    public init(ranges input: [ClosedRange<UInt32>]) {
        var result: [ClosedRange<UInt32>] = []
        for range in input.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound <= last.upperBound || range.lowerBound - 1 == last.upperBound {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        ranges = result
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// The part of these ranges inside `bounds`.
    public func clamped(to bounds: ClosedRange<UInt32>) -> UIDRanges {
        UIDRanges(
            ranges: ranges.compactMap { range in
                let low = max(range.lowerBound, bounds.lowerBound)
                let high = min(range.upperBound, bounds.upperBound)
                return low <= high ? low...high : nil
            })
    }

    /// Whether `uid` is in one of the ranges (binary search).
    public func contains(_ uid: UID) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < uid.rawValue { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].contains(uid.rawValue)
    }

    public var count: Int { ranges.reduce(0) { $0 + Int($1.upperBound - $1.lowerBound) + 1 } }

    /// `1:3,7` style; empty string when empty.
    public var description: String {
        ranges.map { $0.lowerBound == $0.upperBound ? String($0.lowerBound) : "\($0.lowerBound):\($0.upperBound)" }
            .joined(separator: ",")
    }
}
