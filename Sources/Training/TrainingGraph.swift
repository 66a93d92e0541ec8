import Foundation
import KernelCore
import Reconstruction
import SCICore

/// How block activations are handled in training.
public enum BackpropMode: String, Sendable, Codable, CaseIterable {
    /// The paper's scheme: no block activations are kept; backward rebuilds each block's input
    /// with `reverse`, recomputes the block, and walks down. Memory is flat in depth.
    case reversible
    /// Every block's activations are kept from the forward pass (memory grows with depth).
    case plain
}

/// Forward and backward of one RevSCI network for one sample, with gradients for every
/// parameter (REFERENCE.md section 4). Built from the network's current weights; rebuild after
/// each optimizer step.
public final class TrainingGraph: @unchecked Sendable {
    public let network: RevSCINetwork
    let stemGrad: [ConvLayer?]                 // flipped layers for stride-1 stem convs (nil: conv1.0, conv1.6)
    let stemStridedGrad: ConvTransposeLayer     // dX of conv1.6
    let upsampleGrad: ConvLayer                 // dX of conv2.0
    let headGrad: [ConvLayer]                   // flipped conv2.2, conv2.4, conv2.6
    public var kernels: KernelSet

    public init(network: RevSCINetwork, kernels: KernelSet = .active) {
        self.network = network
        self.kernels = kernels
        stemGrad = network.stem.enumerated().map { i, l in (i == 0 || l.stride != (1, 1, 1)) ? nil : LayerBackward.inputGradientLayer(l) }
        stemStridedGrad = LayerBackward.stridedInputGradientLayer(network.stem[3])
        let up = network.upsample
        upsampleGrad = ConvLayer(name: "conv2.0.grad", inputChannels: up.outputChannels, outputChannels: up.inputChannels,
                                 kernel: (up.kernelT, 3, 3),
                                 packed: ConvLayer.pack(outputs: up.inputChannels, inputs: up.outputChannels, taps: (up.kernelT, 3, 3)) { c, o, a, b, d in
                                     up.weightValues[(((c * up.outputChannels + o) * up.kernelT + a) * 3 + b) * 3 + d]
                                 },
                                 bias: [Float](repeating: 0, count: up.inputChannels), stride: (1, 2, 2), padding: (up.kernelT / 2, 1, 1))
        headGrad = network.head.map(LayerBackward.inputGradientLayer)
    }

    /// Parameter gradients keyed by layer name ("conv1.0", "layers.3.f.1.nn_layer.0", ...).
    public typealias Gradients = [String: ParameterGradient]

    public func zeroGradients() -> Gradients {
        var g: Gradients = [:]
        func add(_ l: ConvLayer) { g[l.name] = ParameterGradient(weight: [Float](repeating: 0, count: l.weightValues.count), bias: [Float](repeating: 0, count: l.outputChannels)) }
        network.stem.forEach(add)
        network.head.forEach(add)
        for b in network.blocks { for f in b.functions { add(f.first); add(f.second) } }
        let up = network.upsample
        g["conv2.0"] = ParameterGradient(weight: [Float](repeating: 0, count: up.inputChannels * up.outputChannels * up.kernelT * 9),
                                         bias: [Float](repeating: 0, count: up.outputChannels))
        return g
    }

    /// Buffers for one (T, H, W): stem and head activations kept for backward, the state and its
    /// gradient, and scratch. In plain mode the block records come on top.
    final class Buffers {
        let input, a0, a1, a2, state, gradState, hidden, gradHidden, up, h1, h2, output, gradOutput, gradA, gradB: Activation
        init(_ net: RevSCINetwork, t: Int, h: Int, w: Int) {
            let stem = net.stem, head = net.head
            let pad0 = max(stem[0].padding.t, stem[0].padding.h, stem[0].padding.w)
            input = Activation(frames: t, height: h, width: w, channels: net.inputChannels, pad: pad0)
            a0 = Activation(frames: t, height: h, width: w, channels: stem[0].outputChannels, pad: 1)
            a1 = Activation(frames: t, height: h, width: w, channels: stem[1].outputChannels, pad: 1)
            a2 = Activation(frames: t, height: h, width: w, channels: stem[2].outputChannels, pad: 1)
            state = Activation(frames: t, height: h / 2, width: w / 2, channels: net.stateChannels, pad: 1)
            gradState = Activation(frames: t, height: h / 2, width: w / 2, channels: net.stateChannels, pad: 1)
            let group = net.blocks.first?.groupChannels ?? 16
            hidden = Activation(frames: t, height: h / 2, width: w / 2, channels: group, pad: 1)
            gradHidden = Activation(frames: t, height: h / 2, width: w / 2, channels: group, pad: 1)
            up = Activation(frames: t, height: h, width: w, channels: net.upsample.outputChannels, pad: 1)
            h1 = Activation(frames: t, height: h, width: w, channels: head[0].outputChannels, pad: 1)
            h2 = Activation(frames: t, height: h, width: w, channels: head[1].outputChannels, pad: 1)
            output = Activation(frames: t, height: h, width: w, channels: net.outputChannels, pad: 0)
            gradOutput = Activation(frames: t, height: h, width: w, channels: 16, pad: 1)
            let full = max(32, stem.map(\.inputChannels).max() ?? 0, head.map(\.inputChannels).max() ?? 0)
            gradA = Activation(frames: t, height: h, width: w, channels: full, pad: 1)
            gradB = Activation(frames: t, height: h, width: w, channels: full, pad: 1)
        }
    }

    /// One group function application kept by plain mode: its input and hidden activation.
    struct FunctionRecord {
        let input: Activation
        let hidden: Activation
    }

    /// Runs forward and backward for one sample; adds `scale` x the gradient of the MSE loss
    /// (mean over all output elements) to `gradients`; returns the loss and the output.
    @discardableResult
    public func accumulate(input: [Float], target: [Float], frames t: Int, height h: Int, width w: Int, mode: BackpropMode,
                           scale: Float = 1, into gradients: inout Gradients) throws -> (loss: Double, output: [Float]) {
        let net = network
        guard h % 2 == 0, w % 2 == 0 else { throw SCIError("training crops need even height and width") }
        guard input.count == net.inputChannels * t * h * w, target.count == net.outputChannels * t * h * w else {
            throw SCIError("training sample has the wrong size")
        }
        let b = Buffers(net, t: t, h: h, w: w)
        input.withUnsafeBufferPointer { b.input.load(channelMajor: $0.baseAddress!, channels: net.inputChannels) }
        let k = kernels

        // Stem, keeping every activation.
        net.stem[0].run(b.input.all, into: b.a0.all, kernels: k)
        net.stem[1].run(b.a0.all, into: b.a1.all, kernels: k)
        net.stem[2].run(b.a1.all, into: b.a2.all, kernels: k)
        net.stem[3].run(b.a2.all, into: b.state.all, kernels: k)
        // Plain mode keeps conv1_out for the stem's LReLU backward; reversible mode rebuilds it.
        let conv1Out = mode == .plain ? copy(b.state) : nil

        // Body.
        var slots = Array(0 ..< net.groupCount)
        var records: [[FunctionRecord]] = []
        for block in net.blocks {
            if mode == .plain {
                records.append(forwardKeeping(block, state: b.state, slots: &slots))
            } else {
                block.forward(b.state, slots: &slots, hidden: b.hidden, kernels: k)
            }
        }
        // The head reads the groups in logical order.
        let finalSlots = slots
        let permuted = slots != Array(0 ..< slots.count)
        if permuted { net.permuteToLogical(b.state, slots: finalSlots) }

        // Head.
        net.upsample.run(b.state.all, into: b.up.all, leakySlope: 0.01, kernels: k)
        net.head[0].run(b.up.all, into: b.h1.all, kernels: k)
        net.head[1].run(b.h1.all, into: b.h2.all, kernels: k)
        net.head[2].run(b.h2.all, into: b.output.all, leakySlope: nil, kernels: k)

        // Loss and dLoss/dOutput = 2 (out - target) / N.
        let out = b.output.channelMajor(0 ..< net.outputChannels)
        let n = Double(out.count)
        var loss = 0.0
        var gradOut = [Float](repeating: 0, count: out.count)
        for i in 0 ..< out.count {
            let d = Double(out[i]) - Double(target[i])
            loss += d * d
            gradOut[i] = Float(2 * d / n) * scale
        }
        loss /= n
        gradOut.withUnsafeBufferPointer { b.gradOutput.load(channelMajor: $0.baseAddress!, channels: net.outputChannels) }

        // Head backward.
        let cOut = net.outputChannels
        let dOut = b.gradOutput.view(0 ..< cOut)
        LayerBackward.parameterGradients(net.head[2], input: b.h2.all, gradOutput: dOut, into: &gradients[net.head[2].name]!, kernels: k)
        let dH2 = b.gradA.view(0 ..< b.h2.channels)
        headGrad[2].run(dOut, into: dH2, leakySlope: nil, kernels: k)
        LayerBackward.leakyReLUBackward(dH2, activation: b.h2.all)
        LayerBackward.parameterGradients(net.head[1], input: b.h1.all, gradOutput: dH2, into: &gradients[net.head[1].name]!, kernels: k)
        let dH1 = b.gradB.view(0 ..< b.h1.channels)
        headGrad[1].run(dH2, into: dH1, leakySlope: nil, kernels: k)
        LayerBackward.leakyReLUBackward(dH1, activation: b.h1.all)
        LayerBackward.parameterGradients(net.head[0], input: b.up.all, gradOutput: dH1, into: &gradients[net.head[0].name]!, kernels: k)
        let dUp = b.gradA.view(0 ..< b.up.channels)
        headGrad[0].run(dH1, into: dUp, leakySlope: nil, kernels: k)
        LayerBackward.leakyReLUBackward(dUp, activation: b.up.all)
        LayerBackward.transposedParameterGradients(input: b.state.all, gradOutput: dUp, kernelT: net.upsample.kernelT,
                                                   into: &gradients["conv2.0"]!, kernels: k)
        upsampleGrad.run(dUp, into: b.gradState.all, leakySlope: nil, kernels: k)
        if permuted {
            // Back to the layout the last block left: the body's backward walks its slots.
            net.permuteToSlots(b.gradState, slots: finalSlots)
            net.permuteToSlots(b.state, slots: finalSlots)
        }

        // Body backward, top block first.
        for (i, block) in net.blocks.enumerated().reversed() {
            if mode == .plain {
                backwardFromRecords(block, grads: blockGradientLayers(block), records: records[i], gradState: b.gradState, slots: &slots,
                                    gradients: &gradients)
            } else {
                backwardReversible(block, grads: blockGradientLayers(block), state: b.state, gradState: b.gradState, hidden: b.hidden,
                                   gradHidden: b.gradHidden, slots: &slots, gradients: &gradients)
            }
        }
        if slots != Array(0 ..< slots.count) {
            // The gradient (and, reversibly, the rebuilt conv1_out) sit in slot order: make it logical.
            net.permuteToLogical(b.gradState, slots: slots)
            if mode == .reversible { net.permuteToLogical(b.state, slots: slots) }
        }

        // Stem backward.
        let stemOut = conv1Out ?? b.state
        LayerBackward.leakyReLUBackward(b.gradState.all, activation: stemOut.all)
        LayerBackward.parameterGradients(net.stem[3], input: b.a2.all, gradOutput: b.gradState.all, into: &gradients[net.stem[3].name]!, kernels: k)
        let dA2 = b.gradA.view(0 ..< b.a2.channels)
        stemStridedGrad.run(b.gradState.all, into: dA2, leakySlope: nil, kernels: k)
        LayerBackward.leakyReLUBackward(dA2, activation: b.a2.all)
        LayerBackward.parameterGradients(net.stem[2], input: b.a1.all, gradOutput: dA2, into: &gradients[net.stem[2].name]!, kernels: k)
        let dA1 = b.gradB.view(0 ..< b.a1.channels)
        stemGrad[2]!.run(dA2, into: dA1, leakySlope: nil, kernels: k)
        LayerBackward.leakyReLUBackward(dA1, activation: b.a1.all)
        LayerBackward.parameterGradients(net.stem[1], input: b.a0.all, gradOutput: dA1, into: &gradients[net.stem[1].name]!, kernels: k)
        let dA0 = b.gradA.view(0 ..< b.a0.channels)
        stemGrad[1]!.run(dA1, into: dA0, leakySlope: nil, kernels: k)
        LayerBackward.leakyReLUBackward(dA0, activation: b.a0.all)
        LayerBackward.parameterGradients(net.stem[0], input: b.input.all, gradOutput: dA0, into: &gradients[net.stem[0].name]!, kernels: k)
        return (loss, out)
    }

    /// A block's input-gradient layers, built when its backward pass runs and dropped after, so
    /// that training memory does not grow with depth by their packed and Winograd weights.
    func blockGradientLayers(_ block: ReversibleBlock) -> [(first: ConvLayer, second: ConvLayer)] {
        block.functions.map { (LayerBackward.inputGradientLayer($0.first), LayerBackward.inputGradientLayer($0.second)) }
    }

    func copy(_ a: Activation) -> Activation {
        let c = Activation(frames: a.frames, height: a.height, width: a.width, channels: a.channels, pad: a.pad)
        c.storage.update(from: a.storage, count: a.count)
        return c
    }

    func copy(_ v: ActivationView) -> Activation {
        let c = Activation(frames: v.activation.frames, height: v.activation.height, width: v.activation.width, channels: v.channels, pad: v.activation.pad)
        let s = v.strides, d = c.strides
        for t in 0 ..< c.frames { for h in 0 ..< c.height { for w in 0 ..< c.width {
            (c.origin + t * d.t + h * d.h + w * d.w).update(from: v.origin + t * s.t + h * s.h + w * s.w, count: v.channels)
        } } }
        return c
    }

    /// The (src, dst) slots of each group function application of a forward pass, in order.
    func applications(_ block: ReversibleBlock, slots: [Int]) -> [(fn: Int, src: Int, dst: Int)] {
        switch block.layout {
        case .twoBranch:
            return [(0, slots[1], slots[0]), (1, slots[0], slots[1])]
        case .multiGroup:
            let n = block.functions.count
            return (0 ..< n).map { i in (i, i == 0 ? slots[0] : slots[n - i], slots[n - 1 - i]) }
        }
    }

    /// Forward of one block that keeps each function's input and hidden activation (plain mode).
    func forwardKeeping(_ block: ReversibleBlock, state: Activation, slots: inout [Int]) -> [FunctionRecord] {
        var records: [FunctionRecord] = []
        let gc = block.groupChannels
        for (fn, src, dst) in applications(block, slots: slots) {
            let f = block.functions[fn]
            let srcView = state.view(src * gc ..< (src + 1) * gc)
            let input = copy(srcView)
            let hidden = Activation(frames: state.frames, height: state.height, width: state.width, channels: gc, pad: 1)
            f.first.run(srcView, into: hidden.all, kernels: kernels)
            f.second.run(hidden.all, into: state.view(dst * gc ..< (dst + 1) * gc), epilogue: .add, leakySlope: nil, kernels: kernels)
            records.append(FunctionRecord(input: input, hidden: hidden))
        }
        if block.layout == .multiGroup { slots.reverse() }
        return records
    }

    /// Gradient flow through one group function dst += f(src): parameter gradients, and
    /// d(src) += f^T(d(dst)).
    func backwardFunction(_ f: ReversibleBlock.GroupFunction, grads: (first: ConvLayer, second: ConvLayer), input: ActivationView,
                          hidden: Activation, gradDst: ActivationView, gradSrc: ActivationView, gradHidden: Activation,
                          gradients: inout Gradients) {
        LayerBackward.parameterGradients(f.second, input: hidden.all, gradOutput: gradDst, into: &gradients[f.second.name]!, kernels: kernels)
        grads.second.run(gradDst, into: gradHidden.all, leakySlope: nil, kernels: kernels)
        LayerBackward.leakyReLUBackward(gradHidden.all, activation: hidden.all)
        LayerBackward.parameterGradients(f.first, input: input, gradOutput: gradHidden.all, into: &gradients[f.first.name]!, kernels: kernels)
        grads.first.run(gradHidden.all, into: gradSrc, epilogue: .add, leakySlope: nil, kernels: kernels)
    }

    /// Reversible backward of one block: for each function application, last first, recompute
    /// its hidden activation from its (unchanged) source, undo its update of dst (rebuilding the
    /// block's input), and push the gradient through it.
    func backwardReversible(_ block: ReversibleBlock, grads: [(first: ConvLayer, second: ConvLayer)], state: Activation,
                            gradState: Activation, hidden: Activation, gradHidden: Activation, slots: inout [Int],
                            gradients: inout Gradients) {
        let gc = block.groupChannels
        // Slots as they were before this block ran.
        var before = slots
        if block.layout == .multiGroup { before.reverse() }
        for (fn, src, dst) in applications(block, slots: before).reversed() {
            let f = block.functions[fn]
            let srcView = state.view(src * gc ..< (src + 1) * gc)
            f.first.run(srcView, into: hidden.all, kernels: kernels)
            f.second.run(hidden.all, into: state.view(dst * gc ..< (dst + 1) * gc), epilogue: .subtract, leakySlope: nil, kernels: kernels)
            backwardFunction(f, grads: grads[fn], input: srcView, hidden: hidden,
                             gradDst: gradState.view(dst * gc ..< (dst + 1) * gc), gradSrc: gradState.view(src * gc ..< (src + 1) * gc),
                             gradHidden: gradHidden, gradients: &gradients)
        }
        slots = before
    }

    /// Plain backward of one block from the activations its forward kept.
    func backwardFromRecords(_ block: ReversibleBlock, grads: [(first: ConvLayer, second: ConvLayer)], records: [FunctionRecord],
                             gradState: Activation, slots: inout [Int], gradients: inout Gradients) {
        let gc = block.groupChannels
        var before = slots
        if block.layout == .multiGroup { before.reverse() }
        let gradHidden = Activation(frames: gradState.frames, height: gradState.height, width: gradState.width, channels: gc, pad: 1)
        for (k, app) in applications(block, slots: before).enumerated().reversed() {
            backwardFunction(block.functions[app.fn], grads: grads[app.fn], input: records[k].input.all, hidden: records[k].hidden,
                             gradDst: gradState.view(app.dst * gc ..< (app.dst + 1) * gc),
                             gradSrc: gradState.view(app.src * gc ..< (app.src + 1) * gc), gradHidden: gradHidden, gradients: &gradients)
        }
        slots = before
    }
}
