import Foundation
import Formats
import KernelCore
import SCICore

/// A Conv3d layer (PyTorch semantics: cross-correlation, zero padding, bias) with its weights
/// packed once into the kernels' [outBlock][kt][kh][kw][c][16] layout.
public final class ConvLayer: @unchecked Sendable {
    public let name: String
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernel: (t: Int, h: Int, w: Int)
    public let stride: (t: Int, h: Int, w: Int)
    public let padding: (t: Int, h: Int, w: Int)
    let packed: [Float]
    let bias: [Float]
    /// Winograd F(2x2, 3x3) weights for 3x3x3 "same" layers with 16-channel input blocks, else empty.
    let winograd: [Float]
    /// The weights as loaded, [out, in, kT, kH, kW] (empty for derived layers); training reads them.
    public let weightValues: [Float]
    public let biasValues: [Float]
    /// Keep the F(4x4) form of the weights after the first call instead of transforming them
    /// on every call (layers run many times with the same weights, as FFDNet in a PnP loop).
    public var cachesWinograd4 = false
    private let cacheLock = NSLock()
    private var winograd4Cache: UnsafeMutablePointer<Float>?

    deinit { winograd4Cache?.deallocate() }

    /// The cached F(4x4) weights for `call`, transformed on first use.
    private func cachedWinograd4(_ call: ConvCall) -> UnsafePointer<Float>? {
        guard cachesWinograd4, KernelSet.winograd4Enabled, call.usesWinograd, Winograd4.isEligible(call) else { return nil }
        return cacheLock.withLock {
            if let winograd4Cache { return UnsafePointer(winograd4Cache) }
            let u = UnsafeMutablePointer<Float>.allocate(capacity: Winograd4.weightCount(call))
            Winograd4.transformWeights(call, into: u)
            winograd4Cache = u
            return UnsafePointer(u)
        }
    }

    /// `weight` is [out, in, kT, kH, kW]; padding defaults to kernel / 2 ("same" for odd kernels).
    public init(name: String, weight: NumericArray, bias: NumericArray, stride: (t: Int, h: Int, w: Int) = (1, 1, 1),
                padding: (t: Int, h: Int, w: Int)? = nil) throws {
        guard weight.shape.count == 5 else {
            throw SCIError("\(name).weight has shape \(weight.shape); a Conv3d weight is [out, in, kT, kH, kW]")
        }
        let (o, i, kt, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3], weight.shape[4])
        guard bias.shape == [o] else { throw SCIError("\(name).bias has shape \(bias.shape), expected [\(o)]") }
        self.name = name
        inputChannels = i
        outputChannels = o
        kernel = (kt, kh, kw)
        self.stride = stride
        self.padding = padding ?? (kt / 2, kh / 2, kw / 2)
        let w = weight.floats()
        packed = Self.pack(outputs: o, inputs: i, taps: (kt, kh, kw)) { oc, ic, a, b, c in
            w[(((oc * i + ic) * kt + a) * kh + b) * kw + c]
        }
        weightValues = w
        biasValues = bias.floats()
        self.bias = Self.padBias(biasValues, outputs: o)
        winograd = Self.winogradWeights(outputs: o, inputs: i, kernel: kernel, stride: stride, padding: self.padding) { oc, ic, a, b, c in
            w[(((oc * i + ic) * kt + a) * kh + b) * kw + c]
        }
    }

    /// Winograd-form weights when the layer qualifies (3x3x3, stride 1, padding 1, input channels
    /// in 16-blocks); the output size decides per call whether they are used.
    static func winogradWeights(outputs: Int, inputs: Int, kernel: (t: Int, h: Int, w: Int), stride: (t: Int, h: Int, w: Int),
                                padding: (t: Int, h: Int, w: Int), value: (Int, Int, Int, Int, Int) -> Float) -> [Float] {
        guard kernel == (3, 3, 3), stride == (1, 1, 1), padding == (1, 1, 1), inputs % 16 == 0 else { return [] }
        return Winograd.transformWeights(outputs: outputs, inputs: inputs, value: value)
    }

    /// Wraps pre-packed weights (the transposed convolution's sub-kernels, training's flipped
    /// layers); `value(o, c, kt, kh, kw)`, when given, yields the Winograd form too.
    public init(name: String, inputChannels: Int, outputChannels: Int, kernel: (t: Int, h: Int, w: Int), packed: [Float], bias: [Float],
                stride: (t: Int, h: Int, w: Int) = (1, 1, 1), padding: (t: Int, h: Int, w: Int) = (0, 0, 0),
                value: ((Int, Int, Int, Int, Int) -> Float)? = nil) {
        self.name = name
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.packed = packed
        self.bias = Self.padBias(bias, outputs: outputChannels)
        weightValues = []
        biasValues = bias
        winograd = value.map { Self.winogradWeights(outputs: outputChannels, inputs: inputChannels, kernel: kernel, stride: stride,
                                                    padding: padding, value: $0) } ?? []
    }

    static func padBias(_ b: [Float], outputs: Int) -> [Float] {
        let blocks = (outputs + convOutputBlock - 1) / convOutputBlock
        return b + [Float](repeating: 0, count: blocks * convOutputBlock - outputs)
    }

    /// Packs weights given by `value(out, in, kt, kh, kw)` into [outBlock][kt][kh][kw][in][16].
    public static func pack(outputs: Int, inputs: Int, taps: (Int, Int, Int), value: (Int, Int, Int, Int, Int) -> Float) -> [Float] {
        let blocks = (outputs + convOutputBlock - 1) / convOutputBlock
        let (kt, kh, kw) = taps
        var packed = [Float](repeating: 0, count: blocks * kt * kh * kw * inputs * convOutputBlock)
        var k = 0
        for blk in 0 ..< blocks {
            for a in 0 ..< kt {
                for b in 0 ..< kh {
                    for c in 0 ..< kw {
                        for ic in 0 ..< inputs {
                            for l in 0 ..< convOutputBlock {
                                let oc = blk * convOutputBlock + l
                                if oc < outputs { packed[k] = value(oc, ic, a, b, c) }
                                k += 1
                            }
                        }
                    }
                }
            }
        }
        return packed
    }

    public func outputSize(for input: (t: Int, h: Int, w: Int)) -> (t: Int, h: Int, w: Int) {
        ((input.t + 2 * padding.t - kernel.t) / stride.t + 1,
         (input.h + 2 * padding.h - kernel.h) / stride.h + 1,
         (input.w + 2 * padding.w - kernel.w) / stride.w + 1)
    }

    /// Runs the layer from `input` into `output` (whose size must be outputSize(for: input.size)).
    /// The input activation's padding must cover this layer's.
    public func run(_ input: ActivationView, into output: ActivationView, epilogue: ConvEpilogue = .store,
                    leakySlope: Float? = 0.01, kernels: KernelSet = .active, profiler: LayerProfiler? = nil) {
        precondition(input.channels == inputChannels && output.channels == outputChannels, "\(name): channel mismatch")
        precondition(input.activation.pad >= max(padding.t, padding.h, padding.w), "\(name): input padding too small")
        let expected = outputSize(for: input.size)
        precondition(expected == output.size, "\(name): output size \(output.size) != \(expected)")
        let inPlace = input.activation === output.activation
        precondition(!inPlace || (kernel == (1, 1, 1) && stride == (1, 1, 1) && epilogue == .store),
                     "\(name): only 1x1x1 stride-1 layers run in place")
        let s = input.strides
        let origin = input.origin - padding.t * s.t - padding.h * s.h - padding.w * s.w
        run(input: UnsafePointer(origin), inputStrides: s, output: output.origin, outputStrides: output.strides,
            outputSize: expected, epilogue: epilogue, leakySlope: leakySlope, kernels: kernels, inPlace: inPlace,
            profiler: profiler)
    }

    public func run(input: UnsafePointer<Float>, inputStrides: (t: Int, h: Int, w: Int), output: UnsafeMutablePointer<Float>,
             outputStrides: (t: Int, h: Int, w: Int), outputSize: (t: Int, h: Int, w: Int), epilogue: ConvEpilogue,
             leakySlope: Float?, kernels: KernelSet, inPlace: Bool = false, profiler: LayerProfiler? = nil) {
        let start = profiler?.now()
        defer {
            if let profiler, let start {
                profiler.record(name, kind: "conv \(inputChannels)->\(outputChannels) \(kernel.t)x\(kernel.h)x\(kernel.w)",
                                since: start, flops: 2 * Double(outputSize.t * outputSize.h * outputSize.w * outputChannels * inputChannels * kernel.t * kernel.h * kernel.w))
            }
        }
        packed.withUnsafeBufferPointer { w in
            bias.withUnsafeBufferPointer { b in
                winograd.withUnsafeBufferPointer { u in
                    var call = ConvCall(input: input, inputStrides: inputStrides, inputChannels: inputChannels, kernel: kernel,
                                        stride: stride, weights: w.baseAddress!, bias: b.baseAddress!, outputChannels: outputChannels,
                                        output: output, outputStrides: outputStrides, outputSize: outputSize,
                                        epilogue: epilogue, leakySlope: epilogue == .store ? leakySlope : nil,
                                        winogradWeights: u.isEmpty ? nil : u.baseAddress)
                    // The packed weights live as long as the layer, so the cache stays valid.
                    call.winograd4Weights = cachedWinograd4(call)
                    kernels.conv(call, inPlace: inPlace)
                }
            }
        }
    }

    public var parameterCount: Int { inputChannels * outputChannels * kernel.t * kernel.h * kernel.w + outputChannels }
}

/// ConvTranspose3d with kernel (kT, 3, 3), stride (1, 2, 2), padding (kT/2, 1, 1) and output
/// padding (0, 1, 1): the head's upsampling layer (kT = 1), and the input gradient of the
/// stem's stride-2 convolution. Computed as four small convolutions, one per output pixel
/// parity: even output rows take kernel row 1 at input row m; odd rows take row 2 at m and row 0
/// at m+1 (likewise for columns); in time it is a correlation with the kernel flipped. Reads past
/// the input's edges hit its zero padding.
public final class ConvTransposeLayer: @unchecked Sendable {
    public let name: String
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelT: Int
    /// The weights as given, [in, out, kT, 3, 3], and the bias; training reads them.
    public let weightValues: [Float]
    public let biasValues: [Float]
    let parts: [(rowParity: Int, colParity: Int, conv: ConvLayer)]

    /// `weight` is [in, out, kT, 3, 3] (PyTorch's ConvTranspose3d layout).
    public convenience init(name: String, weight: NumericArray, bias: NumericArray) throws {
        guard weight.shape.count == 5, weight.shape[2] % 2 == 1, weight.shape[3] == 3, weight.shape[4] == 3 else {
            throw SCIError("\(name).weight has shape \(weight.shape); expected [in, out, kT, 3, 3] with odd kT")
        }
        guard bias.shape == [weight.shape[1]] else { throw SCIError("\(name).bias has shape \(bias.shape), expected [\(weight.shape[1])]") }
        self.init(name: name, weight: weight.floats(), shape: weight.shape, bias: bias.floats())
    }

    /// `weight` in [in, out, kT, 3, 3] order with that `shape`; `bias` of `out` values.
    public init(name: String, weight w: [Float], shape: [Int], bias b: [Float]) {
        let (i, o, kt) = (shape[0], shape[1], shape[2])
        self.name = name
        inputChannels = i
        outputChannels = o
        kernelT = kt
        weightValues = w
        biasValues = b
        // Kernel index used by tap d (0 or 1) of parity a: even -> [1]; odd -> [2 (offset 0), 0 (offset 1)].
        func tap(_ parity: Int, _ d: Int) -> Int { parity == 0 ? 1 : (d == 0 ? 2 : 0) }
        var parts: [(Int, Int, ConvLayer)] = []
        for a in 0 ..< 2 {
            for c in 0 ..< 2 {
                let packed = ConvLayer.pack(outputs: o, inputs: i, taps: (kt, 1 + a, 1 + c)) { oc, ic, dt, dh, dw in
                    w[(((ic * o + oc) * kt + (kt - 1 - dt)) * 3 + tap(a, dh)) * 3 + tap(c, dw)]
                }
                parts.append((a, c, ConvLayer(name: "\(name)[\(a)\(c)]", inputChannels: i, outputChannels: o,
                                              kernel: (kt, 1 + a, 1 + c), packed: packed, bias: b)))
            }
        }
        self.parts = parts
    }

    public func outputSize(for input: (t: Int, h: Int, w: Int)) -> (t: Int, h: Int, w: Int) { (input.t, 2 * input.h, 2 * input.w) }

    public func run(_ input: ActivationView, into output: ActivationView, leakySlope: Float? = 0.01, kernels: KernelSet = .active,
                    profiler: LayerProfiler? = nil, epilogue: ConvEpilogue = .store) {
        precondition(input.channels == inputChannels && output.channels == outputChannels, "\(name): channel mismatch")
        precondition(input.activation.pad >= max(1, kernelT / 2), "\(name): input needs padding")
        precondition(outputSize(for: input.size) == output.size, "\(name): output size mismatch")
        let o = output.strides, s = input.strides
        for (a, c, conv) in parts {
            conv.run(input: UnsafePointer(input.origin - (kernelT / 2) * s.t), inputStrides: s,
                     output: output.origin + a * o.h + c * o.w, outputStrides: (o.t, 2 * o.h, 2 * o.w), outputSize: input.size,
                     epilogue: epilogue, leakySlope: leakySlope, kernels: kernels, profiler: profiler)
        }
    }

    public var parameterCount: Int { inputChannels * outputChannels * 9 * kernelT + outputChannels }
}
