/// The calendar date of a message's Date: field, in the field's own time zone (RFC 9051 §6.4.4 SENTBEFORE, SENTON,
/// SENTSINCE compare it "disregarding time and timezone").
extension IMAPDate {
    /// RFC 5322 §3.3 `date-time`, with the obsolete forms of §4.3 (two- and three-digit years, comments, no day of
    /// week) and common deviations (`12-Feb-2024`, asctime's `Mon Feb 12 10:00:00 2024`, ISO `2024-02-12`). Only
    /// the date is read: time and zone do not matter here. Nil when no valid date is found.
    init?(parsing value: [UInt8]) {
        let firstWord = Array(
            value.drop(while: MessageBytes.isLinearWhitespace).prefix { !MessageBytes.isLinearWhitespace($0) })
        if let date = Self.isoDate(firstWord) {
            self = date
            return
        }
        let words = Self.words(value)
        guard let monthIndex = words.firstIndex(where: { Self.monthNumber($0) != nil }),
            let month = Self.monthNumber(words[monthIndex])
        else { return nil }
        var day: Int?
        var yearSearchStart = monthIndex + 1
        if monthIndex > 0, let number = Self.number(words[monthIndex - 1]), words[monthIndex - 1].count <= 2 {
            day = number
        } else if monthIndex + 1 < words.count, let number = Self.number(words[monthIndex + 1]),
            words[monthIndex + 1].count <= 2
        {
            day = number
            yearSearchStart = monthIndex + 2
        }
        let yearWord = words[min(yearSearchStart, words.count)...].first { !$0.contains(UInt8(ascii: ":")) }
        guard let day, let yearWord, (2...4).contains(yearWord.count), var year = Self.number(yearWord) else {
            return nil
        }
        // RFC 5322 §4.3: a two-digit year below 50 is 20xx, otherwise 19xx; a three-digit year adds 1900.
        if yearWord.count == 2 { year += year < 50 ? 2000 : 1900 } else if yearWord.count == 3 { year += 1900 }
        guard Self.isValid(year: year, month: month, day: day) else { return nil }
        self.init(year: year, month: month, day: day)
    }

    /// The value split at white space and commas, comments dropped; `12-Feb-2024` split at its dashes.
    private static func words(_ value: [UInt8]) -> [[UInt8]] {
        var words: [[UInt8]] = []
        var current: [UInt8] = []
        var commentDepth = 0
        func finish() {
            guard !current.isEmpty else { return }
            if current.contains(UInt8(ascii: "-")), current.contains(where: MessageBytes.isLetter),
                current.first.map(MessageBytes.isDigit) == true
            {
                words.append(contentsOf: current.split(separator: UInt8(ascii: "-")).map(Array.init))
            } else {
                words.append(current)
            }
            current = []
        }
        for byte in value {
            if byte == UInt8(ascii: "(") {
                finish()
                commentDepth += 1
            } else if byte == UInt8(ascii: ")") {
                commentDepth = max(0, commentDepth - 1)
            } else if commentDepth > 0 {
                continue
            } else if MessageBytes.isLinearWhitespace(byte) || byte == UInt8(ascii: ",") {
                finish()
            } else {
                current.append(byte)
            }
        }
        finish()
        return words
    }

    /// 1…12 for a month name (`Feb`, `february`, `Sept`).
    private static func monthNumber(_ word: [UInt8]) -> Int? {
        guard word.count >= 3, word.count <= 9, word.allSatisfy(MessageBytes.isLetter) else { return nil }
        let prefix = MessageBytes.lowercasedString(word.prefix(3))
        return monthNames.firstIndex { $0.lowercased() == prefix }.map { $0 + 1 }
    }

    /// A decimal number of at most 4 digits (no overflow possible).
    private static func number(_ word: [UInt8]) -> Int? {
        guard !word.isEmpty, word.count <= 4, word.allSatisfy(MessageBytes.isDigit) else { return nil }
        return word.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    /// `YYYY-MM-DD`, possibly followed by `T…`.
    private static func isoDate(_ word: [UInt8]) -> IMAPDate? {
        guard word.count >= 10, word[4] == UInt8(ascii: "-"), word[7] == UInt8(ascii: "-"),
            let year = number(Array(word[0..<4])), let month = number(Array(word[5..<7])),
            let day = number(Array(word[8..<10])), word.count == 10 || word[10] == UInt8(ascii: "T"),
            isValid(year: year, month: month, day: day)
        else { return nil }
        return IMAPDate(year: year, month: month, day: day)
    }

    private static func isValid(year: Int, month: Int, day: Int) -> Bool {
        guard year >= 1, year <= 9999, month >= 1, month <= 12, day >= 1 else { return false }
        let isLeap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths = [31, isLeap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day <= lengths[month - 1]
    }
}
