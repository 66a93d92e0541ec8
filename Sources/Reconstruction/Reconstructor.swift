import Foundation
import SCICore

/// Thrown when a reconstruction stops because its job was cancelled.
public struct ReconstructionCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "reconstruction cancelled" }
}

/// A flag a caller sets to stop a running reconstruction at the next iteration or layer.
public final class CancellationToken: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public func cancel() { lock.withLock { cancelled = true } }
    public var isCancelled: Bool { lock.withLock { cancelled } }
    public func check() throws { if isCancelled { throw ReconstructionCancelled() } }
}

/// What a reconstruction reports while it runs: fraction done (0-1) and a way to be stopped.
public struct ReconstructionContext: Sendable {
    public var progress: @Sendable (Double) -> Void
    public var cancellation: CancellationToken

    public init(progress: @escaping @Sendable (Double) -> Void = { _ in }, cancellation: CancellationToken = CancellationToken()) {
        self.progress = progress
        self.cancellation = cancellation
    }
}

/// Anything that turns one coded snapshot and its masks into T frames on the [0, 1] scale.
/// GAP-TV and the RevSCI network both implement it, so commands and the service treat them alike.
public protocol Reconstructor: Sendable {
    /// Short name shown to users ("gaptv", "revsci:<model>").
    var name: String { get }
    /// The frames per snapshot this reconstructor requires, or nil if it takes the mask's.
    var requiredFrames: Int? { get }
    func reconstruct(_ snapshot: Snapshot, mask: MaskStack, context: ReconstructionContext) throws -> Video
}

extension Reconstructor {
    /// Reconstructs a stack of snapshots that share one mask, reporting progress over the whole.
    public func reconstruct(_ snapshots: [Snapshot], mask: MaskStack, context: ReconstructionContext) throws -> Video {
        var parts: [Video] = []
        let n = Double(snapshots.count)
        for (i, y) in snapshots.enumerated() {
            try context.cancellation.check()
            let sub = ReconstructionContext(progress: { p in context.progress((Double(i) + p) / n) },
                                            cancellation: context.cancellation)
            parts.append(try reconstruct(y, mask: mask, context: sub))
        }
        context.progress(1)
        return try Video.concatenating(parts)
    }
}
