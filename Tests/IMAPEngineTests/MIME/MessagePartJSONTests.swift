import Foundation
import Testing

@testable import IMAPEngine

/// `MessagePart.json`, which the stores keep and read back with JSONDecoder: it must decode to the same tree.
struct MessagePartJSONTests {
    @Test(arguments: MIMEFixture.all)
    func fixturesComeBackWhole(_ name: String) throws {
        let root = MIMEFixture.parsed(name).root
        let decoded = try JSONDecoder().decode(MessagePart.self, from: Data(root.json))
        #expect(decoded == root)
        // And JSONEncoder's text reads the same, so rows written before and after this encoder agree.
        #expect(try JSONDecoder().decode(MessagePart.self, from: JSONEncoder().encode(root)) == decoded)
    }

    /// Media types come from the message: quotes, backslashes, controls and non-ASCII are escaped or kept as JSON
    /// requires, and a missing decoded size stays missing.
    @Test func oddStringsAndAbsentSizes() throws {
        let odd = MessagePart(
            headerStart: 0, bodyStart: 10, bodyEnd: 90, type: "multipart", subtype: "mixed",
            children: [
                MessagePart(
                    headerStart: 12, bodyStart: 30, bodyEnd: 40, type: "te\"xt\\", subtype: "pl\u{01}ain\t\u{1F}",
                    encoding: "x-ünïcode/€", decodedSize: 10),
                MessagePart(headerStart: 42, bodyStart: 50, bodyEnd: 88, type: "", subtype: "", encoding: "x-unknown"),
            ])
        let text = String(decoding: odd.json, as: UTF8.self)
        #expect(try JSONDecoder().decode(MessagePart.self, from: Data(text.utf8)) == odd)
        #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
    }
}
