// swift-tools-version:6.1
import PackageDescription

// Baton: a deploy agent (`batond`) and controller (`baton`) for fleets of Linux hosts.
// Layering (see docs/design.md §1): BatonProtocol does no I/O; BatonAgent and
// BatonController never import each other and speak only through BatonProtocol.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "baton",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "batond", targets: ["batond"]),
        .executable(name: "baton", targets: ["baton"]),
        .library(name: "BatonProtocol", targets: ["BatonProtocol"]),
        .library(name: "BatonAgent", targets: ["BatonAgent"]),
        .library(name: "BatonController", targets: ["BatonController"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // No default traits: "FullFoundation" would link the whole of Foundation (ICU data
        // included) into batond for URL-encoded forms it never reads; "ConfigurationSupport"
        // brings swift-configuration, which nothing here uses.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The shared history store for teams (docs/history-store.md); SQLite stays the default.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Property-based tests (Swift Testing): random sequences of deployments and returns.
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // Wire types, manifest v1, DSSE envelopes, Ed25519, trust policy, error codes. No I/O.
        .target(
            name: "BatonProtocol",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                "CYAML",
            ],
            swiftSettings: swiftSettings
        ),
        // Fleet CA, agent and controller certificates, CSRs (ECDSA P-256, X.509).
        .target(
            name: "BatonPKI",
            dependencies: [
                "BatonProtocol",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // libyaml, linked statically: the YAML parser under YAMLDocument (Debian: libyaml-dev).
        .systemLibrary(name: "CYAML", path: "Sources/CYAML"),
        // zlib, the system library every Linux host has.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Streaming, policy-checked tar / tar.gz extraction relative to directory descriptors.
        .target(
            name: "BatonArchive",
            dependencies: ["BatonProtocol", "CZlib"],
            swiftSettings: swiftSettings
        ),
        // The agent as a library: config, artifact cache, deployment engine, state, audit log.
        .target(
            name: "BatonAgent",
            dependencies: [
                "BatonProtocol",
                "BatonArchive",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The controller as a library: fleet inventory, strategies, agent client, rollouts.
        .target(
            name: "BatonController",
            dependencies: [
                "BatonProtocol",
                "BatonPKI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // What both executables share: error reporting with stable codes and exit statuses,
        // output, file helpers. Kept out of the libraries, which never print.
        .target(
            name: "BatonCLISupport",
            dependencies: [
                "BatonProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "batond",
            dependencies: [
                "BatonAgent",
                "BatonPKI",
                "BatonCLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `baton demo`'s fleet: files, agents and a small HTTP service on loopback.
        .target(
            name: "BatonDemo",
            dependencies: ["BatonCLISupport"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "baton",
            dependencies: [
                "BatonController",
                "BatonDemo",
                "BatonPKI",
                "BatonProtocol",
                "BatonCLISupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Stands in for many agents on the wire only, so bench/scale.sh can roll out to 2,000.
        .executableTarget(
            name: "baton-loadsim",
            dependencies: [
                "BatonProtocol", "BatonPKI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/BatonLoadSim",
            swiftSettings: swiftSettings
        ),
        // Shared by the test targets: temporary directories, running the built binaries,
        // crafting tar archives byte by byte.
        .target(
            name: "BatonTestSupport",
            dependencies: [
                "CZlib",
                // WebhookReceiver: a real HTTP server on loopback for notification tests.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/BatonTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonProtocolTests",
            dependencies: ["BatonProtocol", "BatonTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonPKITests",
            dependencies: ["BatonPKI", "BatonTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonArchiveTests",
            dependencies: ["BatonArchive", "BatonTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonAgentTests",
            dependencies: [
                "BatonAgent", "BatonProtocol", "BatonArchive", "BatonTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // In-process API tests: requests straight into the agent's router.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BatonControllerTests",
            dependencies: [
                "BatonController", "BatonProtocol", "BatonPKI", "BatonTestSupport",
                // Checks webhook signatures as a receiver would, apart from the controller's code.
                .product(name: "Crypto", package: "swift-crypto"),
                // Reads the SQLite history's own settings (HistoryDurabilityTests).
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command-line edge in-process: how errors become lines and exit statuses.
        .testTarget(
            name: "BatonCLISupportTests",
            dependencies: ["BatonCLISupport", "BatonProtocol", "BatonPKI"],
            swiftSettings: swiftSettings
        ),
        // Runs the built `baton` and `batond` executables as an operator would.
        .testTarget(
            name: "BatonCLITests",
            dependencies: ["BatonProtocol", "BatonPKI", "BatonTestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
