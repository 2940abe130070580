// swift-tools-version:6.2
//
// The framework floor for Benchmarks/run: SwiftNIO's standard HTTP/1.1 server pipeline and one
// handler that answers every request with a fixed 64-byte body. Whatever webhook-tokend costs
// above this server is ours; what this server costs is NIO's.

import PackageDescription

let package = Package(
    name: "minimal-nio-server",
    dependencies: [
        // The same version range as the daemon's, so that both measure the same NIO.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")
    ],
    targets: [
        .executableTarget(
            name: "minimal-nio-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            linkerSettings: [.unsafeFlags(["-static-stdlib"])]
        )
    ]
)
