import Foundation

/// Collects wall time and arithmetic per layer call, for `revsci bench`. Thread-safe; the
/// network passes it down only when asked, so normal runs pay nothing.
public final class LayerProfiler: @unchecked Sendable {
    public struct Entry: Sendable, Codable {
        public var name: String
        public var kind: String
        public var seconds: Double
        public var flops: Double
    }

    private let lock = NSLock()
    private var stored: [Entry] = []

    public init() {}

    func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    func record(_ name: String, kind: String, since start: UInt64, flops: Double) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        lock.withLock { stored.append(Entry(name: name, kind: kind, seconds: seconds, flops: flops)) }
    }

    public var entries: [Entry] { lock.withLock { stored } }
    public func reset() { lock.withLock { stored.removeAll() } }
}
