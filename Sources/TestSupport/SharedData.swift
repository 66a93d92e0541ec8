import Foundation

/// Locates the read-only `shared/` folder (data, fixtures) that lies beside the checkout, or
/// wherever `REVSCI_SHARED` points. Tests read third-party data from there; it is never copied
/// into the repository.
public enum SharedData {
    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "shared test data not found at \(path): clone the project beside ../shared or set REVSCI_SHARED"
        }
    }

    /// The package root (the folder holding Package.swift).
    public static var packageRoot: URL {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() } // Sources/TestSupport/SharedData.swift
        return url
    }

    public static var root: URL {
        if let env = ProcessInfo.processInfo.environment["REVSCI_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    /// `shared/<relative>`; throws `Missing` with a clear message when it does not exist.
    public static func url(_ relative: String) throws -> URL {
        let url = root.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else { throw Missing(path: url.path) }
        return url
    }

    /// The bytes of `shared/<relative>`.
    public static func bytes(_ relative: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(relative)))
    }
}
