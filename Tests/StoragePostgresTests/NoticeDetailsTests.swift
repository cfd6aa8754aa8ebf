import Foundation
import Testing

@testable import StoragePostgres

/// The change notices' details: the byte reader takes what PostgreSQL writes, and answers as JSONDecoder does.
struct NoticeDetailsTests {
    static func quick(_ text: String) -> NoticeDetails? {
        Array(text.utf8).withUnsafeBufferPointer { bytes in
            var reader = NoticeDetails.Reader(bytes: bytes)
            return reader.details()
        }
    }

    static func decoded(_ text: String) -> NoticeDetails? {
        try? JSONDecoder().decode(NoticeDetails.self, from: Data(text.utf8))
    }

    @Test func theReaderTakesWhatPostgreSQLWrites() {
        let written = [
            #"{"r" : 12, "c" : [[11, 0, []]]}"#,
            #"{"r" : 5, "c" : [[7, 8, ["$Label1", "Work"]], [9, 40, []]]}"#,
            #"{"r" : 1, "x" : [3, 4, 4294967295]}"#,
            #"{"r":0,"c":[],"x":[]}"#,
            #"{ "x" : [2], "r" : 3 }"#,
            #"{"r" : 2, "c" : [[1, -1, ["a\"b", "c\\d", "\u00e9t\u00E9", "\ud83d\ude00", "tab\there", "\/"]]]}"#,
            #"{"r" : 2, "c" : [[1, 0, ["naïve", "日本"]]]}"#,
        ]
        for text in written {
            let quick = Self.quick(text)
            #expect(quick != nil, "\(text)")
            #expect(quick == Self.decoded(text), "\(text)")
        }
        #expect(Self.quick(#"{"r" : 2, "c" : [[1, 0, ["\u00e9"]]]}"#)?.c?.first?.keywords == ["é"])
        #expect(Self.quick(#"{"r" : 2, "c" : [[1, 0, ["\ud83d\ude00"]]]}"#)?.c?.first?.keywords == ["😀"])
    }

    /// Outside the shape, the reader answers nil and `decode` gives JSONDecoder's answer, value or error.
    @Test func everythingElseIsJSONDecoders() throws {
        let odd = [
            #"{"r" : 2, "c" : null}"#, #"{"r" : 2, "z" : 1}"#, #"{"r" : 2.5}"#, #"{"r" : 02}"#, #"{"r" : 1, "r" : 2}"#,
            #"{"c" : []}"#, #"{"r" : 2, "c" : [[1, 70000, []]]}"#, #"{"r" : 2, "c" : [[1, 0, ["\ud83d"]]]}"#,
            #"{"r" : 2} x"#, #"{"r" : 99999999999999999999}"#, #"{"r" : 2, "x" : [1,]}"#, #"{"r" : 2, "x" : [1"#,
            "", "{", #"{"r" : 2, "c" : [[1, 0, ["a\qb"]]]}"#, "{\"r\" : 2, \"c\" : [[1, 0, [\"a\u{01}\"]]]}",
        ]
        for text in odd {
            #expect(Self.quick(text) == nil, "\(text)")
            let expected = Self.decoded(text)
            let answer = try? NoticeDetails.decode(Substring(text))
            #expect(answer == expected, "\(text)")
        }
        #expect(try NoticeDetails.decode(#"{"r" : 2, "c" : null}"#) == NoticeDetails(r: 2, c: nil, x: nil))
    }
}
