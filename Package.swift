// swift-tools-version:6.2
//
// akvfs: Azure Key Vault as a read-only filesystem.
// The target graph mirrors the layers in the README's Layout section: C shims at the bottom, the HTTP
// transport and PKI helpers above them, then identity, the Key Vault client, formats, cache,
// filesystem, FUSE glue, the CSI node plugin and the executables. The emulator's server stack
// (Hummingbird) is only reachable from `KeyVaultEmulator` and `akvfs-emulator`, never from
// `akvfs`; the daemon's only NIO is grpc-swift's transport for the CSI socket.
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// What a test target of akvfs's client side builds on when it runs that side against an
/// emulator in its own process (AzureIdentityTests, KeyVaultTests, akvfsTests).
let clientAgainstEmulatorTests: [Target.Dependency] = [
    "AzureIdentity", "KeyVault", "HTTPTransport", "PKI", "KeyVaultEmulator", "EmulatorSupport", "TestSupport",
    .product(name: "HTTPTypes", package: "swift-http-types"),
]

let package = Package(
    name: "akvfs",
    products: [
        .executable(name: "akvfs", targets: ["akvfs"]),
        .executable(name: "akvfs-csi", targets: ["akvfs-csi"]),
        .executable(name: "akvfs-emulator", targets: ["akvfs-emulator"]),
        .executable(name: "akvfs-keeper", targets: ["akvfs-keeper"]),
        .library(name: "KeyVaultEmulator", targets: ["KeyVaultEmulator"]),
    ],
    // `FuzzCSINode` lets akvfs-fuzz reach the three parsers that live in CSINode. It is on by default,
    // so the normal build's replayer runs every target; CI's fuzzer build turns it off
    // (--disable-default-traits) because CSINode brings gRPC, NIO and two copies of BoringSSL,
    // which would triple that build's time (docs/fuzzing.md).
    traits: [
        .trait(name: "FuzzCSINode", description: "akvfs-fuzz includes the targets for CSINode's parsers"),
        .default(enabledTraits: ["FuzzCSINode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2", traits: []),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
    ],
    targets: [
        // MARK: C shims: system libraries found with pkg-config, plus static inline wrappers for
        // what Swift cannot import (function-like macros, variadic functions).
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/Shims/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            path: "Sources/Shims/CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CFuse",
            path: "Sources/Shims/CFuse",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),
        .target(name: "CLinux", path: "Sources/Shims/CLinux"),
        // Turns off GnuTLS's start-up work, which Debian's libcurl loads but akvfs never uses
        // (see gnutls.c). The loader only sees the executable's symbols that it exports.
        .target(
            name: "CCurlDependencies",
            path: "Sources/Shims/CCurlDependencies",
            linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic-symbol=_gnutls_global_init_skip"])]
        ),

        // MARK: Foundations shared by the daemon and the emulator
        .target(
            name: "PKI",
            dependencies: ["COpenSSL"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "HTTPTransport",
            dependencies: [
                "CCurl", "CCurlDependencies", "COpenSSL",
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Identity, the Key Vault client and file formats
        .target(
            name: "AzureIdentity",
            dependencies: [
                "HTTPTransport", "PKI",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "KeyVault",
            dependencies: [
                "AzureIdentity", "HTTPTransport", "PKI", .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSwift
        ),
        .target(name: "ObjectFormats", dependencies: ["PKI"], swiftSettings: strictSwift),
        // Prometheus metrics: the registry and its scrape endpoint (docs/metrics.md).
        .target(
            name: "Telemetry",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Cache, filesystem model and FUSE glue
        .target(
            name: "ObjectCache",
            dependencies: [
                "KeyVault", "PKI", "HTTPTransport", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "VaultFS",
            dependencies: [
                "KeyVault", "ObjectCache", "ObjectFormats", "PKI", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "FuseBridge",
            dependencies: ["CFuse", "VaultFS", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),

        // MARK: Mounts that outlive the process: descriptor passing and keeping (small, for the
        // keeper too), then the state log and handoffs
        .target(name: "DescriptorPassing", dependencies: ["CLinux"], swiftSettings: strictSwift),
        .target(
            name: "Continuity",
            dependencies: [
                "CLinux", "DescriptorPassing", "FuseBridge", "VaultFS", "ObjectCache", "PKI",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        // Holds descriptors for daemons while they restart; knows nothing of akvfs's state.
        .executableTarget(
            name: "akvfs-keeper", dependencies: ["DescriptorPassing", "CLinux"], swiftSettings: strictSwift),

        // MARK: Kubernetes: SecretProviderClass parameters, the CSI protocol and the node plugin
        .target(
            name: "SecretProviderClass",
            dependencies: ["ObjectFormats", "KeyVault"],
            swiftSettings: strictSwift
        ),
        // Generated from csi.proto by scripts/generate-csi and committed: builds never run protoc.
        .target(
            name: "CSIProtocol",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            exclude: ["csi.proto"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "CSINode",
            dependencies: [
                "CLinux", "CSIProtocol", "SecretProviderClass", "AzureIdentity", "KeyVault", "HTTPTransport", "PKI",
                "ObjectCache",
                "ObjectFormats", "VaultFS", "FuseBridge", "Continuity", "DescriptorPassing",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: The daemon and command line
        .target(
            name: "CommandLineSupport",
            dependencies: [
                "CLinux", "KeyVault", "HTTPTransport", "ObjectCache", "Telemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "akvfs",
            dependencies: [
                "AzureIdentity", "KeyVault", "ObjectFormats", "HTTPTransport", "PKI", "ObjectCache", "VaultFS",
                "FuseBridge", "Continuity",
                "DescriptorPassing", "Telemetry",
                "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        // `akvfs csi` runs this executable (see Sources/akvfs-csi/CSIEntry.swift for why it is separate).
        .executableTarget(
            name: "akvfs-csi",
            dependencies: [
                "AzureIdentity", "PKI", "CSINode", "ObjectCache", "CommandLineSupport", "Telemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: The emulator (test bed; never linked into akvfs)
        .target(
            name: "KeyVaultEmulator",
            dependencies: [
                "PKI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        // Key Vault calls per 10 s of a cluster of plugins, on a virtual clock (benchmarks/fleet).
        .executableTarget(
            name: "akvfs-fleet",
            dependencies: [
                "ObjectCache", "KeyVault", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "akvfs-emulator",
            dependencies: [
                "KeyVaultEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Fuzzing: a corpus replayer in normal builds, a libFuzzer binary with -DFUZZING (docs/fuzzing.md)
        .executableTarget(
            name: "akvfs-fuzz",
            dependencies: [
                "SecretProviderClass", "KeyVault", "AzureIdentity", "HTTPTransport", "PKI", "ObjectFormats",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .target(name: "CSINode", condition: .when(traits: ["FuzzCSINode"])),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Tests: the support targets, then a test target per module, named after it
        // (MountTests: whole mounts, across modules).
        // What any test may use: child processes, work on own threads, a hand-moved clock, shared
        // keys, the build's and the repository's paths. It needs only PKI, so PKI's own tests pull
        // in nothing above it.
        .target(name: "TestSupport", dependencies: ["PKI"], path: "Tests/Support", swiftSettings: strictSwift),
        // An emulator in this process and the requests tests send any emulator, with akvfs's clients
        // built against it. Not in TestSupport: it brings the emulator's server stack (Hummingbird,
        // NIO) and the client's (libcurl, identity, Key Vault).
        .target(
            name: "EmulatorSupport",
            dependencies: [
                "KeyVaultEmulator", "HTTPTransport", "AzureIdentity", "KeyVault", "TestSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/EmulatorSupport",
            swiftSettings: strictSwift
        ),
        // A vault in memory (an ObjectSource) for the cache, filesystem and FUSE tests. Not in
        // TestSupport: ObjectCache brings the Key Vault client and libcurl.
        .target(
            name: "ObjectSourceSupport", dependencies: ["ObjectCache", "PKI"], path: "Tests/ObjectSourceSupport",
            swiftSettings: strictSwift),
        .systemLibrary(name: "CXattr", path: "Tests/Shims/CXattr"),

        .testTarget(name: "PKITests", dependencies: ["PKI", "TestSupport"], swiftSettings: strictSwift),
        .testTarget(
            name: "HTTPTransportTests",
            dependencies: [
                "HTTPTransport", "KeyVaultEmulator", "EmulatorSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(name: "AzureIdentityTests", dependencies: clientAgainstEmulatorTests, swiftSettings: strictSwift),
        .testTarget(name: "KeyVaultTests", dependencies: clientAgainstEmulatorTests, swiftSettings: strictSwift),
        .testTarget(
            name: "ObjectFormatsTests", dependencies: ["ObjectFormats", "PKI", "TestSupport"],
            swiftSettings: strictSwift),
        .testTarget(
            name: "ObjectCacheTests",
            dependencies: ["ObjectCache", "KeyVault", "PKI", "HTTPTransport", "TestSupport", "ObjectSourceSupport"],
            swiftSettings: strictSwift),
        .testTarget(
            name: "VaultFSTests",
            dependencies: ["VaultFS", "ObjectCache", "ObjectFormats", "PKI", "TestSupport", "ObjectSourceSupport"],
            swiftSettings: strictSwift),
        .testTarget(
            name: "SecretProviderClassTests",
            dependencies: [
                "SecretProviderClass", "ObjectFormats", "KeyVault", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "CSINodeTests",
            dependencies: [
                "CSINode", "CSIProtocol", "SecretProviderClass", "PKI", "AzureIdentity", "KeyVault", "TestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSwift
        ),
        // The akvfs executable as users run it: get, check, csi forwarding, what it links.
        .testTarget(name: "akvfsTests", dependencies: clientAgainstEmulatorTests, swiftSettings: strictSwift),
        .testTarget(
            name: "KeyVaultEmulatorTests",
            dependencies: [
                "KeyVaultEmulator", "HTTPTransport", "PKI", "TestSupport", "EmulatorSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "ShimTests", dependencies: ["CFuse", "CCurl", "CCurlDependencies", "CLinux", "COpenSSL"],
            swiftSettings: strictSwift),
        // Real mounts: the built executables as child processes, and FUSE sessions in this process.
        .testTarget(
            name: "MountTests",
            dependencies: [
                "HTTPTransport", "CXattr", "TestSupport", "EmulatorSupport", "ObjectSourceSupport", "KeyVaultEmulator",
                "CSINode", "CSIProtocol", "PKI", "FuseBridge", "VaultFS", "ObjectCache", "CLinux", "DescriptorPassing",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)
