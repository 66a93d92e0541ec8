/// Why `HTTPServer.start()` failed.
public enum HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `start()` was called on a server that was already started or shut down.
    case alreadyStarted
    /// A configuration value is out of range.
    case invalidConfiguration(String)
    /// The host could not be resolved to an address to listen on.
    case invalidAddress(String)
    /// A socket call failed (`operation` names it, `errno` says why).
    case socket(operation: String, errno: Int32)
    /// The TLS certificate or key could not be loaded.
    case tls(String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case .alreadyStarted: return "The server was already started."
        case .invalidConfiguration(let message): return "Invalid server configuration: \(message)"
        case .invalidAddress(let message): return "Cannot listen on that address: \(message)"
        case .socket(let operation, let code): return "\(operation) failed: \(SocketErrorText.describe(code))"
        case .tls(let message): return "TLS setup failed: \(message)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum SocketErrorText {
    static func describe(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: text)) (errno \(code))"
    }
}
