import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 3339 / ISO 8601 UTC timestamps with milliseconds, as the API shows them
/// (`2025-11-25T18:09:26.123Z`).
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        var whole = time_t(floor(seconds))
        var millis = Int(((seconds - floor(seconds)) * 1000).rounded())
        if millis == 1000 {
            whole += 1
            millis = 0
        }
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }

    /// `date` as a JSON string, or `null`.
    static func json(_ date: Date?) -> JSONValue { date.map { .string(format($0)) } ?? .null }
}

/// Where the service writes its log lines (one line each, to standard error by default).
public struct ServiceLog: Sendable {
    public var write: @Sendable (String) -> Void

    public init(write: @escaping @Sendable (String) -> Void) { self.write = write }

    /// Timestamped lines on standard error.
    public static let standardError = ServiceLog { line in
        FileHandle.standardError.write(Data("\(Timestamp.format(Date())) \(line)\n".utf8))
    }

    /// Discards everything (tests).
    public static let silent = ServiceLog { _ in }

    public func callAsFunction(_ line: String) { write(line) }
}
