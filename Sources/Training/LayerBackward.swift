import KernelCore
import Reconstruction
import SCICore

/// Gradients of one parameter tensor pair, in PyTorch layout.
public struct ParameterGradient: Sendable {
    public var weight: [Float]
    public var bias: [Float]
}

/// Backward passes of the network's layers on channels-last activations (REFERENCE.md
/// semantics). Each reuses a forward kernel where the mathematics allows: the input gradient
/// of a stride-1 convolution is a convolution of dY with the kernel flipped and transposed;
/// that of the stride-2 stem convolution is a transposed convolution; that of the transposed
/// head convolution is a stride-2 convolution. Weight gradients have their own kernel.
enum LayerBackward {
    /// The stride-1 layer computing dX from dY: weights W'[c][o][a][b][d] = W[o][c][kT-1-a][kH-1-b][kW-1-d].
    static func inputGradientLayer(_ layer: ConvLayer) -> ConvLayer {
        precondition(layer.stride == (1, 1, 1), "\(layer.name): only stride-1 layers have a flipped gradient layer")
        let (o, i) = (layer.outputChannels, layer.inputChannels)
        let (kt, kh, kw) = layer.kernel
        let w = layer.weightValues
        let flipped: (Int, Int, Int, Int, Int) -> Float = { c, oc, a, b, d in
            w[(((oc * i + c) * kt + (kt - 1 - a)) * kh + (kh - 1 - b)) * kw + (kw - 1 - d)]
        }
        let packed = ConvLayer.pack(outputs: i, inputs: o, taps: (kt, kh, kw), value: flipped)
        return ConvLayer(name: layer.name + ".grad", inputChannels: o, outputChannels: i, kernel: layer.kernel, packed: packed,
                         bias: [Float](repeating: 0, count: i), padding: (kt - 1 - layer.padding.t, kh - 1 - layer.padding.h, kw - 1 - layer.padding.w),
                         value: flipped)
    }

    /// dX of the stride-(1,2,2) stem convolution: ConvTranspose3d with the same weight tensor
    /// read as [in = conv outputs, out = conv inputs, k...].
    static func stridedInputGradientLayer(_ layer: ConvLayer) -> ConvTransposeLayer {
        precondition(layer.stride == (1, 2, 2) && layer.kernel.h == 3 && layer.kernel.w == 3)
        return ConvTransposeLayer(name: layer.name + ".grad", weight: layer.weightValues,
                                  shape: [layer.outputChannels, layer.inputChannels, layer.kernel.t, 3, 3],
                                  bias: [Float](repeating: 0, count: layer.inputChannels))
    }

    /// dW and db of `layer` for forward input `input` and output gradient `gradOutput`, added to `grad`.
    static func parameterGradients(_ layer: ConvLayer, input: ActivationView, gradOutput: ActivationView,
                                   into grad: inout ParameterGradient, kernels: KernelSet) {
        let s = input.strides
        let origin = input.origin - layer.padding.t * s.t - layer.padding.h * s.h - layer.padding.w * s.w
        let call = WeightGradientCall(input: UnsafePointer(origin), inputStrides: s, inputChannels: layer.inputChannels,
                                      kernel: layer.kernel, stride: layer.stride, gradOutput: UnsafePointer(gradOutput.origin),
                                      gradOutputStrides: gradOutput.strides, outputChannels: layer.outputChannels,
                                      outputSize: gradOutput.size)
        // The kernel reads dY in 16-lane blocks: lanes past the view must lie inside the allocation.
        precondition(gradOutput.activation.pad >= 1 || gradOutput.activation.channels - gradOutput.channelOffset >= call.outputBlocks * 16,
                     "\(layer.name): dY needs 16-lane padded channels")
        grad.weight.withUnsafeMutableBufferPointer { kernels.convWeightGradient(call, into: $0.baseAddress!) }
        addBiasGradient(gradOutput, into: &grad.bias)
    }

    /// dW and db of the transposed head convolution (weight [in, out, 1, 3, 3]): with the roles of
    /// input and output swapped it is the weight gradient of a stride-2 convolution.
    static func transposedParameterGradients(input: ActivationView, gradOutput: ActivationView, kernelT: Int,
                                             into grad: inout ParameterGradient, kernels: KernelSet) {
        let s = gradOutput.strides
        let origin = gradOutput.origin - (kernelT / 2) * s.t - s.h - s.w
        let call = WeightGradientCall(input: UnsafePointer(origin), inputStrides: s, inputChannels: gradOutput.channels,
                                      kernel: (kernelT, 3, 3), stride: (1, 2, 2), gradOutput: UnsafePointer(input.origin),
                                      gradOutputStrides: input.strides, outputChannels: input.channels, outputSize: input.size)
        grad.weight.withUnsafeMutableBufferPointer { kernels.convWeightGradient(call, into: $0.baseAddress!) }
        addBiasGradient(gradOutput, into: &grad.bias)
    }

    /// db += sum over every pixel of dY, per channel: rows summed in Float, row sums in Double,
    /// rows split across cores (one partial total per chunk, added in chunk order).
    static func addBiasGradient(_ gradOutput: ActivationView, into bias: inout [Float]) {
        let (t, h, w) = gradOutput.size, s = gradOutput.strides, c = gradOutput.channels
        let rows = t * h, chunks = min(rows, Parallel.coreCount * 4), origin = gradOutput.origin
        var partials = [Double](repeating: 0, count: chunks * c)
        partials.withUnsafeMutableBufferPointer { buffer in
            let totals = buffer.baseAddress!
            Parallel.forEach(chunks) { k in
                let total = totals + k * c
                var row = [Float](repeating: 0, count: c)
                for r in (k * rows / chunks) ..< ((k + 1) * rows / chunks) {
                    for j in 0 ..< c { row[j] = 0 }
                    let base = origin + (r / h) * s.t + (r % h) * s.h
                    for wi in 0 ..< w {
                        let px = base + wi * s.w
                        for j in 0 ..< c { row[j] += px[j] }
                    }
                    for j in 0 ..< c { total[j] += Double(row[j]) }
                }
            }
        }
        for k in 0 ..< c {
            var sum = 0.0
            for chunk in 0 ..< chunks { sum += partials[chunk * c + k] }
            bias[k] += Float(sum)
        }
    }

    /// dZ = dA * LReLU'(Z), in place on `grad`, reading the sign of Z from the stored output A
    /// (LeakyReLU with a positive slope keeps signs; Z = 0 takes the slope, as PyTorch does).
    /// Rows are split across cores (it is a memory-bound pass over every activation), and the
    /// select is branch-free so that it vectorises.
    static func leakyReLUBackward(_ grad: ActivationView, activation: ActivationView, slope: Float = 0.01) {
        precondition(grad.size == activation.size && grad.channels == activation.channels)
        let (t, h, w) = grad.size, gs = grad.strides, a = activation.strides, c = grad.channels
        let gradOrigin = grad.origin, activationOrigin = activation.origin
        let rows = t * h, chunks = min(rows, Parallel.coreCount * 4)
        Parallel.forEach(chunks) { k in
            for row in (k * rows / chunks) ..< ((k + 1) * rows / chunks) {
                let (ti, hi) = (row / h, row % h)
                let g = gradOrigin + ti * gs.t + hi * gs.h, x = activationOrigin + ti * a.t + hi * a.h
                for wi in 0 ..< w {
                    let gp = g + wi * gs.w, xp = x + wi * a.w
                    for ch in 0 ..< c { gp[ch] = xp[ch] <= 0 ? gp[ch] * slope : gp[ch] }
                }
            }
        }
    }
}
