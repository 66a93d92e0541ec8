/// Direct 3-D convolution on channels-last buffers (REFERENCE.md section 3 semantics: PyTorch
/// cross-correlation with bias), register-blocked as P output pixels x 16 output channels.
///
/// Layout: an activation is a (T, H, W, C) buffer, padded in T, H and W with the zeros its
/// consumer's padding needs, so the inner loop has no edge cases. For one (kt, kh, kw) tap the
/// C input channels of a pixel are contiguous, and the packed weights for that tap are
/// [c][16 outputs]: each step broadcasts one input value to P pixels' accumulators.
/// Bias, LeakyReLU and the store mode (write, add into, subtract from) are fused into the
/// epilogue, so reversible blocks update their 64-channel state in place.
public enum ConvEpilogue: Sendable {
    /// output = conv (+ LeakyReLU if a slope is given)
    case store
    /// output += conv
    case add
    /// output -= conv
    case subtract
}

/// Output channels per register block; packed weights and biases are padded to a multiple.
public let convOutputBlock = 16

/// One convolution over explicit strides (in floats). Pointers address element (0, 0, 0) of the
/// channel slice used: `input` at padded-input origin (the conv's padding already subtracted),
/// `output` at the first output pixel.
public struct ConvCall: @unchecked Sendable {
    public var input: UnsafePointer<Float>
    public var inputStrides: (t: Int, h: Int, w: Int)
    public var inputChannels: Int
    public var kernel: (t: Int, h: Int, w: Int)
    public var stride: (t: Int, h: Int, w: Int)
    /// Packed [outBlock][kt][kh][kw][c][16].
    public var weights: UnsafePointer<Float>
    /// outBlocks * 16 values.
    public var bias: UnsafePointer<Float>
    public var outputChannels: Int
    public var output: UnsafeMutablePointer<Float>
    public var outputStrides: (t: Int, h: Int, w: Int)
    public var outputSize: (t: Int, h: Int, w: Int)
    public var epilogue: ConvEpilogue
    /// LeakyReLU slope applied after bias (store mode only); nil for none.
    public var leakySlope: Float?
    /// Add the bias (false for the extra parts of a split convolution).
    public var addBias: Bool
    /// The same weights in Winograd form (Winograd.transformWeights), for calls that are
    /// Winograd-eligible; nil runs the direct kernel.
    public var winogradWeights: UnsafePointer<Float>?
    /// The weights already in F(4x4) form (Winograd4.transformWeights), for layers called many
    /// times with the same weights; nil transforms them for this call.
    public var winograd4Weights: UnsafePointer<Float>?

    public init(input: UnsafePointer<Float>, inputStrides: (t: Int, h: Int, w: Int), inputChannels: Int,
                kernel: (t: Int, h: Int, w: Int), stride: (t: Int, h: Int, w: Int),
                weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, outputChannels: Int,
                output: UnsafeMutablePointer<Float>, outputStrides: (t: Int, h: Int, w: Int),
                outputSize: (t: Int, h: Int, w: Int), epilogue: ConvEpilogue, leakySlope: Float?, addBias: Bool = true,
                winogradWeights: UnsafePointer<Float>? = nil) {
        self.input = input
        self.inputStrides = inputStrides
        self.inputChannels = inputChannels
        self.kernel = kernel
        self.stride = stride
        self.weights = weights
        self.bias = bias
        self.outputChannels = outputChannels
        self.output = output
        self.outputStrides = outputStrides
        self.outputSize = outputSize
        self.epilogue = epilogue
        self.leakySlope = leakySlope
        self.addBias = addBias
        self.winogradWeights = winogradWeights
        self.winograd4Weights = nil
    }

    /// Whether this call runs as Winograd (F(4x4) where Winograd4.isEligible, else F(2x2)).
    public var usesWinograd: Bool {
        winogradWeights != nil
            && Winograd.isEligible(kernel: kernel, stride: stride, inputChannels: inputChannels, outputSize: outputSize)
    }

    public var outputBlocks: Int { (outputChannels + convOutputBlock - 1) / convOutputBlock }
    /// Output rows (t, h pairs): the unit of work split between threads.
    public var rowCount: Int { outputSize.t * outputSize.h }
    /// Multiply-adds x 2 (useful work only, padding lanes excluded).
    public var flops: Double {
        2 * Double(outputSize.t * outputSize.h * outputSize.w) * Double(outputChannels) * Double(inputChannels)
            * Double(kernel.t * kernel.h * kernel.w)
    }
}

/// P pixels x one 16-channel block, all taps, then the epilogue; stores pixels from `firstStore`.
@inlinable @inline(__always)
func convPixelBlock<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, _: InlineArray<P, Int>.Type, _ call: ConvCall, t: Int, h: Int, w0: Int, firstStore: Int, block: Int
) where V.Scalar == Float {
    let cin = call.inputChannels
    let pixelStep = call.stride.w * call.inputStrides.w
    var acc = InlineArray<P, V>(repeating: call.addBias ? call.bias.loadVector(V.self, at: block * 16) : V())
    var wp = call.weights + block * call.kernel.t * call.kernel.h * call.kernel.w * cin * 16
    for kt in 0 ..< call.kernel.t {
        for kh in 0 ..< call.kernel.h {
            let row = call.input + (t * call.stride.t + kt) * call.inputStrides.t + (h * call.stride.h + kh) * call.inputStrides.h
                + w0 * pixelStep
            for kw in 0 ..< call.kernel.w {
                convSteps(V.self, &acc, input: row + kw * call.inputStrides.w, weights: wp, steps: cin, pixelStep: pixelStep)
                wp += cin * 16
            }
        }
    }
    let out = call.output + t * call.outputStrides.t + h * call.outputStrides.h + w0 * call.outputStrides.w + block * 16
    // Spill the accumulators with constant indices, then finish in scalar loops over the spilled
    // lanes (which LLVM vectorises): a data-dependent loop over the InlineArray itself would
    // keep it in memory during the hot loop, and generic SIMD select/max lower poorly.
    withUnsafeTemporaryAllocation(of: Float.self, capacity: P * 16) { buffer in
        let spilled = buffer.baseAddress!
        for p in 0 ..< P { UnsafeMutableRawPointer(spilled + p * 16).storeBytes(of: acc[p], as: V.self) }
        let lanes = min(16, call.outputChannels - block * 16)
        let slope = call.leakySlope ?? 1
        for p in firstStore ..< P {
            let s = spilled + p * 16
            applyEpilogue(call.epilogue, s, to: out + p * call.outputStrides.w, lanes: lanes, slope: slope)
        }
    }
}

/// Runs output rows `rows` (index = t * H + h) of `call` with P-pixel register blocks; the last
/// block of a row overlaps the previous one (storing only new pixels), so any width >= P works
/// without a remainder loop; narrower rows use single pixels.
@inlinable @inline(__always)
public func convRows<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, pixels _: InlineArray<P, Int>.Type, _ call: ConvCall, rows: Range<Int>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16, "conv kernels work on 16-channel blocks")
    let width = call.outputSize.w
    for row in rows {
        // Rows run h-major (all frames of one image row, then the next row): consecutive rows share
        // most of their input rows, which then stay in cache instead of being fetched once per frame.
        let t = row % call.outputSize.t, h = row / call.outputSize.t
        for block in 0 ..< call.outputBlocks {
            if width < P {
                for w in 0 ..< width {
                    convPixelBlock(V.self, InlineArray<1, Int>.self, call, t: t, h: h, w0: w, firstStore: 0, block: block)
                }
                continue
            }
            var w0 = 0
            while w0 < width {
                let start = min(w0, width - P)
                convPixelBlock(V.self, InlineArray<P, Int>.self, call, t: t, h: h, w0: start, firstStore: w0 - start, block: block)
                w0 = start + P
            }
        }
    }
}

/// `steps` input channels of one tap: broadcast each pixel's value, multiply-add the weights.
@inlinable @inline(__always)
func convSteps<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, _ acc: inout InlineArray<P, V>, input: UnsafePointer<Float>, weights: UnsafePointer<Float>, steps: Int, pixelStep: Int
) where V.Scalar == Float {
    var a = acc
    var wp = weights
    var ip = input
    for _ in 0 ..< steps {
        let wv = UnsafeRawPointer(wp).loadUnaligned(as: V.self)
        for p in 0 ..< P {
            a[p] = a[p].addingProduct(V(repeating: ip[p * pixelStep]), wv)
        }
        wp += 16
        ip += 1
    }
    acc = a
}

/// Writes `lanes` finished outputs `s` (bias included) to `o` by the call's epilogue: store with
/// LeakyReLU (slope 1: none), add into or subtract from what is there.
@inlinable @inline(__always)
func applyEpilogue(_ epilogue: ConvEpilogue, _ s: UnsafeMutablePointer<Float>, to o: UnsafeMutablePointer<Float>, lanes: Int, slope: Float) {
    switch epilogue {
    case .store:
        for l in 0 ..< lanes { let x = s[l]; o[l] = x < 0 ? x * slope : x }
    case .add:
        for l in 0 ..< lanes { o[l] += s[l] }
    case .subtract:
        for l in 0 ..< lanes { o[l] -= s[l] }
    }
}
