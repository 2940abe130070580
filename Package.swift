// swift-tools-version:6.2
//
// webhook-tokend: a per-host broker for OAuth 2.0 client-credentials bearer tokens
// (Akamai Identity Cloud Webhooks v3 first), served over a Unix domain socket.

import PackageDescription

/// Settings every target of ours shares: Swift 6 language mode (strict concurrency) comes with
/// tools version 6; warnings are errors; the upcoming features make APIs and imports explicit.
let strictSettings: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// How the daemon is linked, for a small resident size at rest (measured in Benchmarks/run):
/// - the Swift runtime statically (`-static-stdlib`): no libswiftCore, libFoundation… to load and
///   relocate, and only what the daemon uses is in the binary (not full Foundation with its ICU
///   data, which TOMLKit imports); FoundationEssentials' own C libraries must then be named, as
///   the static runtime's link arguments do not list them;
/// - no exported symbols (`local-symbols.map`), which `-static-stdlib`'s `-export-dynamic` would
///   otherwise add by the ten thousand (about 1 MiB resident).
/// Packing the 80 000 relative relocations (DT_RELR) would save another 1.8 MiB at start, but gold
/// (the default linker here) cannot, GNU ld then loses RELRO (an input `.rodata` is writable) and
/// lld pulls in FoundationInternationalization and ICU: not done.
let daemonLinkerFlags = [
    "-static-stdlib", "-l_FoundationCollections", "-l_FoundationCShims",
    "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/webhook-tokend/local-symbols.map",
]

let package = Package(
    name: "webhook-tokend",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "webhook-tokend", targets: ["webhook-tokend"]),
        .executable(name: "webhook-token", targets: ["webhook-token"]),
        .executable(name: "token-endpoint-emulator", targets: ["token-endpoint-emulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // MARK: Pure core: configuration model, token state, renewal policy. No NIO, no clock.
        .target(
            name: "WebhookTokenCore",
            dependencies: [
                "WebhookTokenProtocol",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strictSettings
        ),

        // The socket API's wire vocabulary (error codes, headers), shared by the daemon and the
        // Glibc-only client so that they cannot drift. No dependencies.
        .target(name: "WebhookTokenProtocol", swiftSettings: strictSettings),

        // MARK: I/O layers
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // prctl(2), which Swift's Glibc module lacks (for PR_SET_DUMPABLE).
        .systemLibrary(name: "CProcessControl"),
        // The Swift runtime's global-executor hook, to run every task on the NIO event loop.
        .systemLibrary(name: "CSwiftConcurrencyHooks"),
        .target(
            name: "WebhookTokenSystemd",
            dependencies: [
                "CSystemd",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WebhookTokenEndpoint",
            dependencies: [
                "WebhookTokenCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WebhookTokenServer",
            dependencies: [
                "WebhookTokenCore",
                "WebhookTokenProtocol",
                // The authenticating proxy's upstream client, with the token client's error classes.
                "WebhookTokenEndpoint",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TokenEndpointEmulator",
            dependencies: [
                "WebhookTokenCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WebhookTokenDaemon",
            dependencies: [
                "WebhookTokenCore",
                "WebhookTokenProtocol",
                "WebhookTokenEndpoint",
                "WebhookTokenServer",
                "WebhookTokenSystemd",
                "TokenEndpointEmulator",
                "CProcessControl",
                "CSwiftConcurrencyHooks",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Executables, a few dozen lines each
        .executableTarget(
            name: "webhook-tokend",
            dependencies: [
                "WebhookTokenDaemon",
                "WebhookTokenServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["local-symbols.map"],
            swiftSettings: strictSettings,
            linkerSettings: [.unsafeFlags(daemonLinkerFlags)]
        ),
        // The client runs once per API call in shell scripts: Glibc only (no Foundation, no NIO),
        // linked fully statically (Swift runtime and glibc) and stripped, so that start-up is a
        // bare exec with no dynamic loader work: about 1 ms less per call than -static-stdlib,
        // which still loads libstdc++ and friends (measured with hyperfine, see README). lld,
        // because GNU ld warns about glibc's NSS and dlopen in static binaries (harmless here:
        // only an error message looks up a group name).
        .executableTarget(
            name: "webhook-token",
            dependencies: ["WebhookTokenProtocol"],
            swiftSettings: strictSettings,
            linkerSettings: [.unsafeFlags(["-static-executable", "-use-ld=lld", "-Xlinker", "--strip-all"])]
        ),
        .executableTarget(
            name: "token-endpoint-emulator",
            dependencies: [
                "TokenEndpointEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "WebhookTokenCoreTests",
            dependencies: [
                "WebhookTokenCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strictSettings
        ),
        // The production renewal driver on a manual clock, without sockets or processes.
        .testTarget(
            name: "WebhookTokenDaemonTests",
            dependencies: [
                "WebhookTokenCore",
                "WebhookTokenDaemon",
                "WebhookTokenEndpoint",
                "WebhookTokenServer",
                "WebhookTokenProtocol",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WebhookTokenIntegrationTests",
            dependencies: [
                "WebhookTokenCore",
                "WebhookTokenProtocol",
                "WebhookTokenEndpoint",
                "WebhookTokenServer",
                "WebhookTokenSystemd",
                "TokenEndpointEmulator",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
