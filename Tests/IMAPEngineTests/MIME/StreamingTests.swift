import Testing

@testable import IMAPEngine

/// Issue #9 §3: FETCH decodes (BINARY) and filters (HEADER.FIELDS) large sections piece by piece. The streamed
/// result must be byte for byte the whole-buffer one, however the input is cut.
@Suite struct StreamingTests {
    /// Random inputs built from the bytes the decoders care about, cut at random places.
    static func samples(_ alphabet: [[UInt8]], count: Int, seed: UInt64) -> [[UInt8]] {
        var random = MIMEFuzz.Generator(state: seed)
        return (0..<count).map { _ in
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...120, using: &random) {
                bytes += alphabet[Int.random(in: 0..<alphabet.count, using: &random)]
            }
            return bytes
        }
    }

    static func cuts(_ bytes: [UInt8], seed: UInt64) -> [[UInt8]] {
        var random = MIMEFuzz.Generator(state: seed)
        var pieces: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + Int.random(in: 1...7, using: &random))
            pieces.append(Array(bytes[start..<end]))
            start = end
        }
        return pieces
    }

    @Test(arguments: ["base64", "quoted-printable", "7bit"]) func decoderMatchesWholeDecoding(encoding: String) {
        let alphabet: [[UInt8]] = [
            "QUJD", "ZA==", "=", "==", "\r\n", "\n", "\r", " ", "\t", "=4", "=41", "=4a", "=\r\n", "= \r\n", "=\n", "x",
            "é", "!", "+/", "a", "  \r\n", "=X",
        ].map { Array($0.utf8) }
        for (n, input) in Self.samples(alphabet, count: 3000, seed: 7).enumerated() {
            var decoder = TransferEncoding.Decoder(encoding: encoding)
            var out: [UInt8] = []
            for piece in Self.cuts(input, seed: UInt64(n)) { decoder?.feed(piece, into: &out) }
            decoder?.finish(into: &out)
            #expect(
                out == TransferEncoding.decode(input, encoding: encoding), "\(String(decoding: input, as: UTF8.self))")
        }
        #expect(TransferEncoding.Decoder(encoding: "x-unknown") == nil)
    }

    @Test func headerFilterMatchesWholeFiltering() {
        let alphabet: [[UInt8]] = [
            "Subject: hi", "From: a", "X-Other: b", "subject :x", "\r\n", "\n", " folded", "\tmore", "\r\n\r\n",
            "NoColon", ":", "To", "\r",
        ].map { Array($0.utf8) }
        for (n, input) in Self.samples(alphabet, count: 3000, seed: 11).enumerated() {
            for not in [false, true] {
                var stream = HeaderFilter.Stream(names: ["Subject", "to"], not: not)
                var out: [UInt8] = []
                for piece in Self.cuts(input, seed: UInt64(n)) { stream.feed(Array(piece), into: &out) }
                stream.finish(into: &out)
                let whole = HeaderFilter.filter(input, names: ["Subject", "to"], not: not)
                #expect(out == whole, "\(String(decoding: input, as: UTF8.self))")
            }
        }
    }

    @Test func partialWindowSkipsAndTakesAcrossPieces() {
        var window = PartialWindow(3..<8)
        let pieces: [[UInt8]] = [[0, 1], [2, 3, 4], [5], [6, 7, 8, 9]]
        var out: [UInt8] = []
        for piece in pieces { out += window.take(piece) }
        #expect(out == [3, 4, 5, 6, 7])
        #expect(window.remaining == 0 && window.count == 5)
    }
}
