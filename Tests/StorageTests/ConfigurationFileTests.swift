import Testing

@testable import Storage

/// The configuration file both tools read: comments, quoted values, lists, repeated keys, and a line that is not
/// `key = value`, named with its number.
@Suite struct ConfigurationFileTests {
    @Test func entriesInOrderWithTheirLines() throws {
        let text = """
            # MailHost
            storage = "sqlite:/var/lib/mailhost/mail.db"   # the embedded store

            imap = 0.0.0.0:143, [::]:143
            imap = 127.0.0.1:1143
            """
        let entries = try ConfigurationFile.parse(text, path: "/etc/mailhost/mailhost.conf")
        #expect(
            entries == [
                .init(line: 2, key: "storage", values: ["sqlite:/var/lib/mailhost/mail.db"]),
                .init(line: 4, key: "imap", values: ["0.0.0.0:143", "[::]:143"]),
                .init(line: 5, key: "imap", values: ["127.0.0.1:1143"]),
            ])
    }

    @Test func aLineWithoutEqualsIsNamed() {
        #expect(throws: ConfigurationFile.Problem.self) {
            try ConfigurationFile.parse("storage = x\nnonsense\n", path: "f.conf")
        }
        do {
            _ = try ConfigurationFile.parse("storage = x\nnonsense\n", path: "f.conf")
        } catch {
            #expect(error.description == "f.conf:2: expected key = value")
        }
    }
}
