@testable import StoragePostgres
import Testing

/// The storage URL's pool settings.
struct StoreConfigurationTests {
    static let base = "postgres://mail@db.example/mailhost"

    @Test func poolIdleTimeoutIsSecondsWithZeroForNever() throws {
        #expect(try PostgresStoreConfiguration(url: Self.base).poolIdleTimeout == .seconds(60))
        #expect(
            try PostgresStoreConfiguration(url: Self.base + "?pool_idle_timeout=120").poolIdleTimeout == .seconds(120))
        #expect(try PostgresStoreConfiguration(url: Self.base + "?pool_idle_timeout=0").poolIdleTimeout == nil)
        #expect(
            try PostgresStoreConfiguration(url: Self.base + "?pool_idle_timeout=86400").poolIdleTimeout
                == .seconds(86_400))
        for bad in ["-1", "86401", "1.5", "never", ""] {
            #expect(throws: (any Error).self, "\(bad)") {
                try PostgresStoreConfiguration(url: Self.base + "?pool_idle_timeout=\(bad)")
            }
        }
    }
}
