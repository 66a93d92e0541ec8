// swift-tools-version:6.0
import PackageDescription

// The network and TV kernels are written once (generic, @inlinable, in the KernelCore target)
// and specialised in one small target per instruction set, each compiled
// with its own -target-cpu, so SIMD code lowers to vector FMAs. The choice is made at run
// time from the CPU's features (CCPUFeatures); a plain path serves every other CPU.
// The kernel targets are optimised in debug builds too, so that `swift test` runs the network
// at usable speed while the rest stays debuggable; -Ounchecked because their hot loops index
// unsafe buffers and the bounds checks on the register-block arrays cost about 20% there.
#if arch(x86_64)
let avx2Flags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "skylake-avx512"])]
#else
let avx2Flags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]
#endif
let genericFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]

let package = Package(
    name: "RevSCI",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "revsci", targets: ["revsci"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "CCPUFeatures", path: "Sources/CCPUFeatures"),
        .target(name: "SCICore"),
        .target(name: "Formats", dependencies: ["SCICore", "CZlib"]),
        .target(name: "KernelCore"),
        .target(name: "KernelsAVX2", dependencies: ["KernelCore"], swiftSettings: avx2Flags),
        .target(name: "KernelsAVX512", dependencies: ["KernelCore"], swiftSettings: avx512Flags),
        .target(name: "KernelsGeneric", dependencies: ["KernelCore"], swiftSettings: genericFlags),
        .target(name: "Reconstruction",
                dependencies: ["SCICore", "Formats", "KernelCore", "KernelsAVX2", "KernelsAVX512", "KernelsGeneric", "CCPUFeatures"]),
        .target(name: "Training", dependencies: ["SCICore", "Formats", "Reconstruction", "KernelCore"]),
        .executableTarget(name: "revsci", dependencies: [
            "SCICore", "Formats", "Reconstruction", "Training", "Service",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "revsci-fuzz", dependencies: ["Formats", "SCICore", "HTTP"]),
        // Finds ../shared (data and fixtures) for the tests; not part of the product.
        .target(name: "TestSupport"),
        // HTTP/1.1 server on POSIX sockets with optional TLS (OpenSSL); independent of the SCI code.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .target(name: "HTTP", dependencies: ["COpenSSL"]),
        // The reconstruction service: job store, worker pool, routes, metrics (HTTP + SCI wired together).
        .target(name: "Service", dependencies: ["HTTP", "COpenSSL", "Formats", "Reconstruction", "SCICore"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"]),
        .testTarget(name: "ServiceTests", dependencies: ["Service", "HTTP", "Formats", "SCICore", "Reconstruction", "TestSupport"]),
        .testTarget(name: "SCICoreTests", dependencies: ["SCICore", "Formats", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "SCICore", "TestSupport"]),
        .testTarget(name: "ReconstructionTests", dependencies: ["Reconstruction", "KernelCore", "Formats", "SCICore", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Reconstruction", "Formats", "SCICore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
