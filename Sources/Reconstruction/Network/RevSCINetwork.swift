import Formats
import KernelCore
import SCICore

/// The RevSCI network (REFERENCE.md sections 3-5): a stem `conv1` to 64 channels at half
/// resolution, reversible blocks run in place, and a head `conv2` back to full resolution.
/// Grayscale and color models share this code; shapes come from the weights.
public final class RevSCINetwork: @unchecked Sendable {
    public let stem: [ConvLayer]
    public let blocks: [ReversibleBlock]
    public let upsample: ConvTransposeLayer
    public let head: [ConvLayer]

    public var layout: ReversibleBlock.Layout { blocks.first?.layout ?? .twoBranch }
    public var inputChannels: Int { stem[0].inputChannels }
    public var outputChannels: Int { head[head.count - 1].outputChannels }
    public var stateChannels: Int { stem[stem.count - 1].outputChannels }
    public var groupCount: Int { blocks.first?.groupCount ?? 2 }

    /// Builds the network from PyTorch state-dict names (`conv1.{0,2,4,6}`, `layers.{i}...`,
    /// `conv2.{0,2,4,6}`); the block layout and counts are read from the names present.
    public init(weights: [String: NumericArray]) throws {
        func tensor(_ name: String) throws -> NumericArray {
            guard let t = weights[name] else { throw SCIError("weights lack '\(name)' (is this a RevSCI-net checkpoint?)") }
            return t
        }
        func conv(_ prefix: String, stride: (Int, Int, Int) = (1, 1, 1)) throws -> ConvLayer {
            try ConvLayer(name: prefix, weight: tensor(prefix + ".weight"), bias: tensor(prefix + ".bias"), stride: stride)
        }
        stem = [try conv("conv1.0"), try conv("conv1.2"), try conv("conv1.4"), try conv("conv1.6", stride: (1, 2, 2))]
        upsample = try ConvTransposeLayer(name: "conv2.0", weight: tensor("conv2.0.weight"), bias: tensor("conv2.0.bias"))
        head = [try conv("conv2.2"), try conv("conv2.4"), try conv("conv2.6")]

        var blocks: [ReversibleBlock] = []
        let channels = stem[3].outputChannels
        while true {
            let i = blocks.count
            if weights["layers.\(i).f1.0.weight"] != nil {
                let fns = try ["f1", "g1"].map { n in
                    ReversibleBlock.GroupFunction(first: try conv("layers.\(i).\(n).0"), second: try conv("layers.\(i).\(n).2"))
                }
                blocks.append(try ReversibleBlock(layout: .twoBranch, functions: fns, channels: channels))
            } else if weights["layers.\(i).f.0.nn_layer.0.weight"] != nil {
                var fns: [ReversibleBlock.GroupFunction] = []
                while weights["layers.\(i).f.\(fns.count).nn_layer.0.weight"] != nil {
                    let p = "layers.\(i).f.\(fns.count).nn_layer"
                    fns.append(.init(first: try conv(p + ".0"), second: try conv(p + ".2")))
                }
                guard channels % fns.count == 0 else { throw SCIError("\(fns.count) groups do not divide \(channels) channels") }
                blocks.append(try ReversibleBlock(layout: .multiGroup, functions: fns, channels: channels))
            } else {
                break
            }
        }
        self.blocks = blocks
        if let first = blocks.first, blocks.contains(where: { $0.layout != first.layout || $0.groupCount != first.groupCount }) {
            throw SCIError("blocks mix layouts or group counts; every block must be alike")
        }
        let known = Set(weights.keys)
        let used = Set(parameterNames)
        if let extra = known.subtracting(used).sorted().first {
            throw SCIError("weights hold '\(extra)', which this architecture (\(layout.rawValue), \(blocks.count) blocks) does not use")
        }
        // The stem, body and head must chain.
        let chain: [(String, Int, Int)] = [
            ("conv1.2", stem[0].outputChannels, stem[1].inputChannels), ("conv1.4", stem[1].outputChannels, stem[2].inputChannels),
            ("conv1.6", stem[2].outputChannels, stem[3].inputChannels), ("conv2.0", channels, upsample.inputChannels),
            ("conv2.2", upsample.outputChannels, head[0].inputChannels), ("conv2.4", head[0].outputChannels, head[1].inputChannels),
            ("conv2.6", head[1].outputChannels, head[2].inputChannels),
        ]
        for (name, have, want) in chain where have != want {
            throw SCIError("\(name) takes \(want) channels but receives \(have)")
        }
        guard stem.allSatisfy({ $0.kernel.t % 2 == 1 && $0.kernel.h % 2 == 1 && $0.kernel.w % 2 == 1 }),
              head.allSatisfy({ $0.kernel.t % 2 == 1 && $0.kernel.h % 2 == 1 && $0.kernel.w % 2 == 1 }) else {
            throw SCIError("convolution kernels must have odd sizes")
        }
    }

    /// Every parameter name, in PyTorch state-dict order.
    public var parameterNames: [String] {
        var names: [String] = []
        for p in ["conv1.0", "conv1.2", "conv1.4", "conv1.6"] { names += [p + ".weight", p + ".bias"] }
        for (i, b) in blocks.enumerated() {
            for (g, f) in b.functions.enumerated() {
                let prefix = b.layout == .twoBranch ? "layers.\(i).\(g == 0 ? "f1" : "g1")" : "layers.\(i).f.\(g).nn_layer"
                _ = f
                for k in [0, 2] { names += ["\(prefix).\(k).weight", "\(prefix).\(k).bias"] }
            }
        }
        for p in ["conv2.0", "conv2.2", "conv2.4", "conv2.6"] { names += [p + ".weight", p + ".bias"] }
        return names
    }

    public var parameterCount: Int {
        stem.reduce(0) { $0 + $1.parameterCount } + blocks.reduce(0) { $0 + $1.parameterCount }
            + upsample.parameterCount + head.reduce(0) { $0 + $1.parameterCount }
    }

    /// Multiply-adds x 2 of one forward pass at (T, H, W).
    public func flops(frames t: Int, height h: Int, width w: Int) -> Double {
        let full = Double(t * h * w), half = full / 4
        var total = 0.0
        for (i, c) in stem.enumerated() {
            let px = i == stem.count - 1 ? half : full
            total += 2 * px * Double(c.inputChannels * c.outputChannels * c.kernel.t * c.kernel.h * c.kernel.w)
        }
        for b in blocks {
            for f in b.functions {
                for c in [f.first, f.second] {
                    total += 2 * half * Double(c.inputChannels * c.outputChannels * c.kernel.t * c.kernel.h * c.kernel.w)
                }
            }
        }
        total += 2 * half * Double(upsample.inputChannels * upsample.outputChannels * 9)
        for c in head { total += 2 * full * Double(c.inputChannels * c.outputChannels * c.kernel.t * c.kernel.h * c.kernel.w) }
        return total
    }

    /// Working memory of one forward pass: what `Workspace` allocates.
    public final class Workspace: @unchecked Sendable {
        public let input: Activation
        public let fullA: Activation
        public let fullB: Activation
        public let state: Activation
        public let hidden: Activation
        public let output: Activation

        init(_ net: RevSCINetwork, frames t: Int, height h: Int, width w: Int) {
            let stemPad = max(net.stem[0].padding.t, net.stem[0].padding.h, net.stem[0].padding.w)
            let fullChannels = max(net.stem.dropLast().map(\.outputChannels).max() ?? 0, net.upsample.outputChannels,
                                   net.head.dropLast().map(\.outputChannels).max() ?? 0)
            input = Activation(frames: t, height: h, width: w, channels: net.inputChannels, pad: stemPad)
            fullA = Activation(frames: t, height: h, width: w, channels: fullChannels, pad: 1)
            fullB = Activation(frames: t, height: h, width: w, channels: fullChannels, pad: 1)
            state = Activation(frames: t, height: h / 2, width: w / 2, channels: net.stateChannels, pad: 1)
            hidden = Activation(frames: t, height: h / 2, width: w / 2, channels: net.blocks.first?.groupChannels ?? 1, pad: 1)
            output = Activation(frames: t, height: h, width: w, channels: net.outputChannels, pad: 0)
        }

        public var bytes: Int { [input, fullA, fullB, state, hidden, output].reduce(0) { $0 + $1.count * 4 } }
    }

    public func makeWorkspace(frames t: Int, height h: Int, width w: Int) -> Workspace { Workspace(self, frames: t, height: h, width: w) }

    /// Runs a chain of stem or head layers through the two full-resolution buffers: 1x1x1
    /// layers run in place, others write to the buffer the current result is not in. The last
    /// layer writes `last`. Returns nothing: the result is in `last`.
    func runChain(_ layers: [ConvLayer], from source: ActivationView, _ ws: Workspace, into last: ActivationView,
                  lastLeaky: Bool, kernels: KernelSet, profiler: LayerProfiler?) {
        var current = source
        for (k, layer) in layers.enumerated() {
            let target: ActivationView
            let inFullBuffer = current.activation === ws.fullA || current.activation === ws.fullB
            if k == layers.count - 1 {
                target = last
            } else if inFullBuffer, layer.kernel == (1, 1, 1), layer.stride == (1, 1, 1), current.channelOffset == 0,
                      current.activation.channels >= layer.outputChannels {
                target = current.activation.view(0 ..< layer.outputChannels)
            } else {
                target = (current.activation === ws.fullA ? ws.fullB : ws.fullA).view(0 ..< layer.outputChannels)
            }
            let slope: Float? = k == layers.count - 1 && !lastLeaky ? nil : 0.01
            layer.run(current, into: target, epilogue: .store, leakySlope: slope, kernels: kernels, profiler: profiler)
            current = target
        }
    }

    /// Stem: input (already in `ws.input`) to the 64-channel state, in logical group order.
    public func runStem(_ ws: Workspace, kernels: KernelSet = .active, profiler: LayerProfiler? = nil) {
        runChain(stem, from: ws.input.all, ws, into: ws.state.all, lastLeaky: true, kernels: kernels, profiler: profiler)
    }

    /// Head: state (with groups in `slots` order) to the output.
    public func runHead(_ ws: Workspace, slots: [Int], kernels: KernelSet = .active, profiler: LayerProfiler? = nil) {
        if slots != Array(0 ..< slots.count) { permuteToLogical(ws.state, slots: slots) }
        let up = ws.fullA.view(0 ..< upsample.outputChannels)
        upsample.run(ws.state.all, into: up, leakySlope: 0.01, kernels: kernels, profiler: profiler)
        runChain(head, from: up, ws, into: ws.output.all, lastLeaky: false, kernels: kernels, profiler: profiler)
    }

    /// Moves channel groups so that logical group g sits in slot g.
    public func permuteToLogical(_ state: Activation, slots: [Int]) { permute(state, slots: slots, toLogical: true) }

    /// Moves channel groups from logical order to slot order: group g to slot `slots[g]`.
    public func permuteToSlots(_ state: Activation, slots: [Int]) { permute(state, slots: slots, toLogical: false) }

    func permute(_ state: Activation, slots: [Int], toLogical: Bool) {
        let gc = state.channels / slots.count
        let s = state.strides
        var tmp = [Float](repeating: 0, count: state.channels)
        for t in 0 ..< state.frames {
            for h in 0 ..< state.height {
                for w in 0 ..< state.width {
                    let px = state.origin + t * s.t + h * s.h + w * s.w
                    for (g, slot) in slots.enumerated() {
                        let (to, from) = toLogical ? (g, slot) : (slot, g)
                        for c in 0 ..< gc { tmp[to * gc + c] = px[from * gc + c] }
                    }
                    for c in 0 ..< state.channels { px[c] = tmp[c] }
                }
            }
        }
    }

    /// The state as a (C, T, h, w) channel-major array in logical channel order.
    public func logicalState(_ state: Activation, slots: [Int]) -> [Float] {
        let gc = state.channels / slots.count
        return slots.flatMap { state.channelMajor($0 * gc ..< ($0 + 1) * gc) }
    }

    /// Forward pass on a (C_in, T, H, W) channel-major input; returns (C_out, T, H, W).
    /// `inspect`, when given, receives "conv1_out" and "block<k>_out" states (channel-major).
    /// Checks `cancellation` between blocks and reports progress through `progress`.
    public func forward(_ input: [Float], frames t: Int, height h: Int, width w: Int, kernels: KernelSet = .active,
                        workspace: Workspace? = nil, context: ReconstructionContext = ReconstructionContext(),
                        profiler: LayerProfiler? = nil, inspect: ((String, [Float]) -> Void)? = nil) throws -> [Float] {
        guard h % 2 == 0, w % 2 == 0, h >= 2, w >= 2 else {
            throw SCIError("RevSCI needs even height and width (got \(h)x\(w))")
        }
        guard input.count == inputChannels * t * h * w else {
            throw SCIError("network input has \(input.count) values; expected \(inputChannels)x\(t)x\(h)x\(w)")
        }
        let ws = workspace ?? makeWorkspace(frames: t, height: h, width: w)
        input.withUnsafeBufferPointer { ws.input.load(channelMajor: $0.baseAddress!, channels: inputChannels) }
        let steps = Double(blocks.count + 2)
        runStem(ws, kernels: kernels, profiler: profiler)
        var slots = Array(0 ..< groupCount)
        inspect?("conv1_out", logicalState(ws.state, slots: slots))
        context.progress(1 / steps)
        for (k, block) in blocks.enumerated() {
            try context.cancellation.check()
            block.forward(ws.state, slots: &slots, hidden: ws.hidden, kernels: kernels, profiler: profiler)
            inspect?("block\(k)_out", logicalState(ws.state, slots: slots))
            context.progress(Double(k + 2) / steps)
        }
        try context.cancellation.check()
        runHead(ws, slots: slots, kernels: kernels, profiler: profiler)
        context.progress(1)
        return ws.output.channelMajor(0 ..< outputChannels)
    }

    /// Block k's inverse applied to a (64, T, h, w) state given in logical order.
    public func reverseBlock(_ k: Int, output: [Float], frames t: Int, height h: Int, width w: Int, kernels: KernelSet = .active) -> [Float] {
        let state = Activation(frames: t, height: h, width: w, channels: stateChannels, pad: 1)
        let hidden = Activation(frames: t, height: h, width: w, channels: blocks[k].groupChannels, pad: 1)
        output.withUnsafeBufferPointer { state.load(channelMajor: $0.baseAddress!, channels: stateChannels) }
        var slots = Array(0 ..< groupCount)
        blocks[k].reverse(state, slots: &slots, hidden: hidden, kernels: kernels)
        return logicalState(state, slots: slots)
    }
}
