// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "MailHost",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mailhost", targets: ["MailHost"]),
        .executable(name: "mailadmin", targets: ["AdminCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.9.0"..<"6.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .target(
            name: "IMAPEngine",
            dependencies: [
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "StoragePostgres",
            dependencies: [
                "IMAPEngine",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embedded store: one SQLite file (WAL, one writer, many readers) for one server process.
        .target(
            name: "StorageSQLite",
            dependencies: [
                "IMAPEngine",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Store accounts' passwords (crypt(3)) and their `Authenticator`, over any backend's `CredentialStore`.
        .target(
            name: "StoreAccounts",
            dependencies: [
                "IMAPEngine", "CCrypt",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The factory from a storage setting to a `StoreBackend`: the one target that knows every backend.
        .target(
            name: "Storage",
            dependencies: [
                "IMAPEngine", "StoragePostgres", "StorageSQLite", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The wire formats at the server's edge that are not IMAP: the LMTP framing and command syntax, and the
        // PROXY protocol header (their own targets so that the fuzzers can link them without the server).
        .target(
            name: "LMTPProtocol",
            dependencies: ["IMAPEngine", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(name: "ProxyProtocol", swiftSettings: swiftSettings),
        .systemLibrary(name: "CPAM", path: "Sources/CPAM"),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(
            name: "AuthPAM",
            dependencies: [
                "CPAM",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MailHost",
            dependencies: [
                "IMAPEngine", "Storage", "StoreAccounts", "AuthPAM", "LMTPProtocol", "ProxyProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "AdminCLI",
            dependencies: [
                "IMAPEngine", "Storage", "StoreAccounts",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IMAPEngineTests",
            dependencies: ["IMAPEngine", .product(name: "NIOEmbedded", package: "swift-nio")],
            exclude: ["MIME/Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StoragePostgresTests",
            dependencies: [
                "StoragePostgres", "StorageSQLite", "IMAPEngine", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StoreAccountsTests",
            dependencies: ["StoreAccounts"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "Storage", "IMAPEngine", "StoragePostgres", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AdminCLITests",
            dependencies: ["AdminCLI", "IMAPEngine"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LMTPProtocolTests",
            dependencies: ["LMTPProtocol", "IMAPEngine", .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AuthPAMTests",
            dependencies: ["AuthPAM"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "IMAPEngine", "StoragePostgres", "StorageSQLite", "Storage", "StoreAccounts", "MailHost", "AuthPAM",
                "ProxyProtocol", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (scripts/fuzz): only when MAILHOST_FUZZ is set, since they have no main function and link only
// with `--sanitize=fuzzer`.
if Context.environment["MAILHOST_FUZZ"] != nil {
    let fuzzers: [(String, [Target.Dependency])] = [
        ("IMAPCommands", ["IMAPEngine", .product(name: "NIOEmbedded", package: "swift-nio")]),
        ("MIME", ["IMAPEngine"]),
        ("LMTP", ["IMAPEngine", "LMTPProtocol", .product(name: "NIOEmbedded", package: "swift-nio")]),
        ("ProxyHeader", ["ProxyProtocol"]),
    ]
    for (name, dependencies) in fuzzers {
        package.targets.append(
            .executableTarget(
                name: "Fuzz\(name)", dependencies: dependencies, path: "Fuzz/\(name)", swiftSettings: swiftSettings))
    }
}
