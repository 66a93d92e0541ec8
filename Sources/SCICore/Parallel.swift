#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Wraps a value that the caller guarantees is used without data races (e.g. disjoint index
/// ranges of one buffer written by parallel workers), so it can cross into Dispatch closures.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }
}

public enum Parallel {
    /// Runs body(0..<n) on all cores (Dispatch's concurrentPerform); returns when all are done.
    /// The body must only touch disjoint data per index.
    public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 0 { return }
        if n == 1 { body(0); return }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: n) { i in box.value(i) }
        }
    }

    /// Number of cores Dispatch will use.
    public static var coreCount: Int { ProcessInfo_activeProcessorCount() }
}

@usableFromInline
func ProcessInfo_activeProcessorCount() -> Int {
    #if canImport(Glibc)
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
    return 2
    #endif
}
