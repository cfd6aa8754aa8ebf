import StoreAccounts
import Testing

@Suite struct PasswordHashTests {
    @Test func newHashesAreYescryptAndVerify() throws {
        let hash = try PasswordHash.hash("correct horse")
        #expect(hash.hasPrefix("$y$"))
        #expect(PasswordHash.verify("correct horse", against: hash))
        #expect(!PasswordHash.verify("correct horsE", against: hash))
        #expect(try PasswordHash.hash("correct horse") != hash)  // salted
    }

    /// Hashes made by Dovecot's `doveadm pw` and by `openssl passwd -6`, as a migrating admin brings them.
    @Test func existingHashesAreAcceptedAsTheyAre() throws {
        let dovecotSHA512 =
            "{SHA512-CRYPT}$6$OXAzqzir0wBgGCex$EzYPZDRivxgVlwKVoVXF1puaOvGZZku/I0hoaAGPU9ROCnB6CMdFttzphNA/mDHlTRrlo/1DQjtlpNQiNMJ1H."
        let dovecotBcrypt = "{BLF-CRYPT}$2y$05$UtAhQKv3ykAU1zLoxKX/L.4ie0UMYd/EP4hkj6o85JhmrPsphOYz6"
        #expect(PasswordHash.verify("migrated from dovecot", against: dovecotSHA512))
        #expect(!PasswordHash.verify("migrated from dovecoT", against: dovecotSHA512))
        #expect(PasswordHash.verify("bcrypt pass", against: dovecotBcrypt))
        #expect(PasswordHash.verify("bcrypt pass", against: String(dovecotBcrypt.dropFirst("{BLF-CRYPT}".count))))
        #expect(try PasswordHash.cryptString(dovecotSHA512).hasPrefix("$6$"))
    }

    @Test(arguments: ["{PLAIN}secret", "{SSHA}abc", "plaintext", "$9$notamethod$xxxxxxxxxxxx", "", "$6$a:b"])
    func unusableHashesAreRefused(_ hash: String) {
        #expect(throws: PasswordHash.HashError.self) { try PasswordHash.cryptString(hash) }
        #expect(!PasswordHash.verify("secret", against: hash))
    }
}
