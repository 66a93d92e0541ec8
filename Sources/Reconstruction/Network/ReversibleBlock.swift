import Formats
import KernelCore
import SCICore

/// One reversible block on the 64-channel state (REFERENCE.md section 4), run in place: the
/// state is split into equal channel groups held in "slots", and each step adds (forward) or
/// subtracts (reverse) a group function's output into one slot. Scratch: one hidden activation
/// of one group's width.
///
/// Multi-group (n groups, the paper's `rev_3d_part1`):
///     y[0] = x[n-1] + f_0(x[0]);  y[i] = x[n-1-i] + f_i(y[i-1])
/// y[i] is formed in the slot that held x[n-1-i], so the logical group order reverses each
/// block; `slots[g]` tracks which slot holds logical group g (no data is moved).
/// Two-branch (`rev_3d_part`, F and G): y1 = x1 + F(x2); y2 = x2 + G(y1); slots never move.
public final class ReversibleBlock: @unchecked Sendable {
    public enum Layout: String, Sendable, Codable {
        case multiGroup = "multigroup"
        case twoBranch = "twobranch"
    }

    /// Conv3d, LeakyReLU, Conv3d.
    public struct GroupFunction: Sendable {
        public let first: ConvLayer
        public let second: ConvLayer

        /// hidden = LReLU(first(src)); dst (+|-)= second(hidden)
        func apply(_ src: ActivationView, to dst: ActivationView, hidden: Activation, epilogue: ConvEpilogue, kernels: KernelSet,
                   profiler: LayerProfiler?) {
            first.run(src, into: hidden.all, epilogue: .store, leakySlope: 0.01, kernels: kernels, profiler: profiler)
            second.run(hidden.all, into: dst, epilogue: epilogue, leakySlope: nil, kernels: kernels, profiler: profiler)
        }
    }

    public let layout: Layout
    public let functions: [GroupFunction]
    public let groupChannels: Int

    init(layout: Layout, functions: [GroupFunction], channels: Int) throws {
        self.layout = layout
        self.functions = functions
        groupChannels = channels / (layout == .twoBranch ? 2 : functions.count)
        for f in functions {
            guard f.first.inputChannels == groupChannels, f.first.outputChannels == groupChannels,
                  f.second.inputChannels == groupChannels, f.second.outputChannels == groupChannels else {
                throw SCIError("block function \(f.first.name) maps \(f.first.inputChannels) -> \(f.second.outputChannels) channels; expected \(groupChannels) -> \(groupChannels)")
            }
        }
    }

    /// Number of channel groups the state is split into.
    public var groupCount: Int { layout == .twoBranch ? 2 : functions.count }

    func slot(_ state: Activation, _ s: Int) -> ActivationView { state.view(s * groupChannels ..< (s + 1) * groupChannels) }

    /// Forward in place. `slots[g]` = the slot holding logical group g; updated.
    public func forward(_ state: Activation, slots: inout [Int], hidden: Activation, kernels: KernelSet = .active,
                        profiler: LayerProfiler? = nil) {
        switch layout {
        case .twoBranch:
            // y1 = x1 + F(x2); y2 = x2 + G(y1)
            functions[0].apply(slot(state, slots[1]), to: slot(state, slots[0]), hidden: hidden, epilogue: .add, kernels: kernels, profiler: profiler)
            functions[1].apply(slot(state, slots[0]), to: slot(state, slots[1]), hidden: hidden, epilogue: .add, kernels: kernels, profiler: profiler)
        case .multiGroup:
            let n = functions.count
            for i in 0 ..< n {
                // source: x[0] for i = 0, else y[i-1], which sits in x[n-i]'s slot
                let src = i == 0 ? slots[0] : slots[n - i]
                functions[i].apply(slot(state, src), to: slot(state, slots[n - 1 - i]), hidden: hidden, epilogue: .add, kernels: kernels, profiler: profiler)
            }
            slots.reverse()
        }
    }

    /// Inverse in place: rebuilds the block's input from its output.
    public func reverse(_ state: Activation, slots: inout [Int], hidden: Activation, kernels: KernelSet = .active,
                        profiler: LayerProfiler? = nil) {
        switch layout {
        case .twoBranch:
            // x2 = y2 - G(y1); x1 = y1 - F(x2)
            functions[1].apply(slot(state, slots[0]), to: slot(state, slots[1]), hidden: hidden, epilogue: .subtract, kernels: kernels, profiler: profiler)
            functions[0].apply(slot(state, slots[1]), to: slot(state, slots[0]), hidden: hidden, epilogue: .subtract, kernels: kernels, profiler: profiler)
        case .multiGroup:
            let n = functions.count
            // x[n-1-i] = y[i] - f_i(y[i-1]) for i = n-1 ... 1 (each reads a y not yet changed)
            for i in stride(from: n - 1, through: 1, by: -1) {
                functions[i].apply(slot(state, slots[i - 1]), to: slot(state, slots[i]), hidden: hidden, epilogue: .subtract, kernels: kernels, profiler: profiler)
            }
            // x[n-1] = y[0] - f_0(x[0]); x[0] now sits in y[n-1]'s slot
            functions[0].apply(slot(state, slots[n - 1]), to: slot(state, slots[0]), hidden: hidden, epilogue: .subtract, kernels: kernels, profiler: profiler)
            slots.reverse()
        }
    }

    public var parameterCount: Int { functions.reduce(0) { $0 + $1.first.parameterCount + $1.second.parameterCount } }
}
