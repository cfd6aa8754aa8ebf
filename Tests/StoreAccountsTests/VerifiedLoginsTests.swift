import StoreAccounts
import Testing

@Suite struct VerifiedLoginsTests {
    @Test func onlyTheSameLoginHashAndPasswordHit() {
        let cache = VerifiedLogins()
        cache.insert(login: "ann", storedHash: "$6$salt$one", password: "secret")
        #expect(cache.contains(login: "ann", storedHash: "$6$salt$one", password: "secret"))
        #expect(!cache.contains(login: "ann", storedHash: "$6$salt$one", password: "secreT"))
        #expect(!cache.contains(login: "ann", storedHash: "$6$salt$one", password: ""))
        #expect(!cache.contains(login: "ann", storedHash: "$6$salt$two", password: "secret"))
        #expect(!cache.contains(login: "bob", storedHash: "$6$salt$one", password: "secret"))
        // The parts are length-prefixed: moving bytes from the hash into the password is another triple.
        #expect(!cache.contains(login: "ann", storedHash: "$6$salt$on", password: "esecret"))
        #expect(cache.hits == 1)
        #expect(cache.count == 1)
    }

    @Test func aNewPasswordReplacesTheOld() {
        let cache = VerifiedLogins()
        cache.insert(login: "ann", storedHash: "h1", password: "old")
        cache.insert(login: "ann", storedHash: "h2", password: "new")
        #expect(cache.count == 1)
        #expect(!cache.contains(login: "ann", storedHash: "h1", password: "old"))
        #expect(cache.contains(login: "ann", storedHash: "h2", password: "new"))
    }

    @Test func theCapacityBoundsWhatIsKept() {
        let cache = VerifiedLogins(capacity: 3)
        for i in 0..<50 { cache.insert(login: "user\(i)", storedHash: "h", password: "p\(i)") }
        #expect(cache.count == 3)
        // The newest login always gets its place.
        #expect(cache.contains(login: "user49", storedHash: "h", password: "p49"))

        let none = VerifiedLogins(capacity: 0)
        none.insert(login: "ann", storedHash: "h", password: "p")
        #expect(none.count == 0)
        #expect(!none.contains(login: "ann", storedHash: "h", password: "p"))
    }

    @Test func anExpiredEntryIsNotUsedAndMakesRoom() {
        let expired = VerifiedLogins(capacity: 2, lifetime: .zero)
        expired.insert(login: "ann", storedHash: "h", password: "p")
        #expect(!expired.contains(login: "ann", storedHash: "h", password: "p"))
        expired.insert(login: "bob", storedHash: "h", password: "p")
        expired.insert(login: "cid", storedHash: "h", password: "p")
        // Both expired entries went when the third login needed room.
        #expect(expired.count == 1)
        #expect(expired.hits == 0)
    }
}
