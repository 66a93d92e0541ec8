import Foundation
import Formats

/// Inputs checked at submission, kept in memory until a worker takes them, so a job that starts
/// soon does not decode its files twice. Bounded by bytes; whatever does not fit (and every job
/// after a restart) is rebuilt from the stored files, with the same code and the same result.
final class PreparedInputs: @unchecked Sendable {
    private let lock = NSLock()
    private var inputs: [String: (input: ReconstructionInput, bytes: Int)] = [:]
    private var total = 0
    let budget: Int

    init(budget: Int = 256 << 20) { self.budget = budget }

    /// Keeps `input` for job `id` if it fits in the budget.
    func put(_ id: String, _ input: ReconstructionInput) {
        let bytes = 4 * (input.snapshots.reduce(0) { $0 + $1.pixels.count } + 2 * input.mask.values.count
            + (input.groundTruth?.pixels.count ?? 0))
        lock.withLock {
            guard total + bytes <= budget, inputs[id] == nil else { return }
            inputs[id] = (input, bytes)
            total += bytes
        }
    }

    /// Removes and returns the input kept for job `id`.
    func take(_ id: String) -> ReconstructionInput? {
        lock.withLock {
            guard let entry = inputs.removeValue(forKey: id) else { return nil }
            total -= entry.bytes
            return entry.input
        }
    }
}
