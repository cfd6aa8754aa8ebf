/// A calendar date as SEARCH uses it (RFC 9051 `date`): "1-Feb-1994", time and zone disregarded.
public struct IMAPDate: Hashable, Sendable, Comparable {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public static func < (a: IMAPDate, b: IMAPDate) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }

    /// Days since 1970-01-01.
    public var dayNumber: Int64 { InternalDate.daysFromCivil(year: year, month: month, day: day) }

    /// ISO form for SQL binds: `1994-02-01`.
    public var iso: String {
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    var isValid: Bool {
        (1...12).contains(month) && day >= 1 && day <= IMAPDate.daysIn(month: month, year: year)
    }
}

/// An INTERNALDATE (RFC 9051 `date-time`): an instant plus the zone offset it was given in.
public struct InternalDate: Hashable, Sendable {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSinceEpoch: Int64
    /// Minutes east of UTC, as given by the client or the server's choice (UTC).
    public var zoneMinutes: Int

    public init(secondsSinceEpoch: Int64, zoneMinutes: Int) {
        self.secondsSinceEpoch = secondsSinceEpoch
        self.zoneMinutes = zoneMinutes
    }

    /// From calendar fields in the given zone; nil when a field is out of range.
    public init?(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, zoneMinutes: Int) {
        let date = IMAPDate(year: year, month: month, day: day)
        guard date.isValid, (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
            abs(zoneMinutes) < 24 * 60, (1...9999).contains(year)
        else { return nil }
        let days = InternalDate.daysFromCivil(year: year, month: month, day: day)
        let local = days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        self.init(secondsSinceEpoch: local - Int64(zoneMinutes * 60), zoneMinutes: zoneMinutes)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }

    /// The calendar date in this date's own zone (what SEARCH BEFORE/ON/SINCE compares).
    public var localDate: IMAPDate {
        let local = secondsSinceEpoch + Int64(zoneMinutes * 60)
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let civil = InternalDate.civilFromDays(days)
        return IMAPDate(year: civil.year, month: civil.month, day: civil.day)
    }

    /// RFC 9051 `date-time`: `"17-Jul-1996 02:44:25 -0700"` (with the quotes).
    public var wire: String {
        let local = secondsSinceEpoch + Int64(zoneMinutes * 60)
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondsOfDay = Int(local - days * 86_400)
        let civil = InternalDate.civilFromDays(days)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        let dayText = civil.day < 10 ? " \(civil.day)" : String(civil.day)
        let yearText = String(repeating: "0", count: max(0, 4 - String(civil.year).count)) + String(civil.year)
        let sign = zoneMinutes < 0 ? "-" : "+"
        let zone = abs(zoneMinutes)
        return "\"\(dayText)-\(IMAPDate.monthNames[civil.month - 1])-\(yearText) "
            + "\(two(secondsOfDay / 3600)):\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60)) "
            + "\(sign)\(two(zone / 60))\(two(zone % 60))\""
    }
}
