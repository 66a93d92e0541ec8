import Foundation

/// Resident-set figures of this process from /proc/self/status (Linux); nil elsewhere.
enum ProcessMemory {
    /// Peak resident set size (VmHWM) in bytes.
    static var peakResidentBytes: Int? { field("VmHWM:") }
    /// Current resident set size (VmRSS) in bytes.
    static var residentBytes: Int? { field("VmRSS:") }

    private static func field(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let kb = line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
