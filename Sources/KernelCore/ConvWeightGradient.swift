/// Weight gradient of a convolution: for every tap (kt, kh, kw),
///     dW[tap][c][o] += sum over output positions p of  x[p * stride + tap][c] * dY[p][o]
/// with channels-last buffers as in `ConvCall` (x at padded origin, dY at its first pixel).
/// Register block: CB input channels x 16 output channels, accumulated along one output row,
/// so each row's x and dY stay in cache while every tap and channel block passes over them.
public struct WeightGradientCall: @unchecked Sendable {
    public var input: UnsafePointer<Float>
    public var inputStrides: (t: Int, h: Int, w: Int)
    public var inputChannels: Int
    public var kernel: (t: Int, h: Int, w: Int)
    public var stride: (t: Int, h: Int, w: Int)
    public var gradOutput: UnsafePointer<Float>
    public var gradOutputStrides: (t: Int, h: Int, w: Int)
    public var outputChannels: Int
    public var outputSize: (t: Int, h: Int, w: Int)

    public init(input: UnsafePointer<Float>, inputStrides: (t: Int, h: Int, w: Int), inputChannels: Int,
                kernel: (t: Int, h: Int, w: Int), stride: (t: Int, h: Int, w: Int), gradOutput: UnsafePointer<Float>,
                gradOutputStrides: (t: Int, h: Int, w: Int), outputChannels: Int, outputSize: (t: Int, h: Int, w: Int)) {
        self.input = input
        self.inputStrides = inputStrides
        self.inputChannels = inputChannels
        self.kernel = kernel
        self.stride = stride
        self.gradOutput = gradOutput
        self.gradOutputStrides = gradOutputStrides
        self.outputChannels = outputChannels
        self.outputSize = outputSize
    }

    public var outputBlocks: Int { (outputChannels + 15) / 16 }
    public var taps: Int { kernel.t * kernel.h * kernel.w }
    /// Floats of the accumulator: [tap][c][outBlock * 16] (padded output lanes are written too).
    public var accumulatorCount: Int { taps * inputChannels * outputBlocks * 16 }
    public var rowCount: Int { outputSize.t * outputSize.h }
}

/// Adds rows `rows` of the weight gradient into `acc` ([tap][c][outBlock*16]). The dY lanes
/// beyond `outputChannels` must be readable (they are in padded activations) but their sums
/// are ignored by the caller.
@inlinable @inline(__always)
public func convWeightGradientRows<V: SIMD & BitwiseCopyable>(
    _: V.Type, _ call: WeightGradientCall, rows: Range<Int>, acc: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16)
    let cin = call.inputChannels, ob = call.outputBlocks, rowWidth = ob * 16
    for row in rows {
        // Rows run h-major (all frames of one image row, then the next row): consecutive rows share
        // most of their input rows, which then stay in cache instead of being fetched once per frame.
        let t = row % call.outputSize.t, h = row / call.outputSize.t
        let dyRow = call.gradOutput + t * call.gradOutputStrides.t + h * call.gradOutputStrides.h
        var tap = 0
        for kt in 0 ..< call.kernel.t {
            for kh in 0 ..< call.kernel.h {
                for kw in 0 ..< call.kernel.w {
                    let xRow = call.input + (t * call.stride.t + kt) * call.inputStrides.t
                        + (h * call.stride.h + kh) * call.inputStrides.h + kw * call.inputStrides.w
                    let tapAcc = acc + tap * cin * rowWidth
                    var c = 0
                    while c < cin {
                        let left = cin - c
                        if left >= 6 {
                            weightGradBlock(V.self, InlineArray<6, Int>.self, call, xRow: xRow + c, dyRow: dyRow, acc: tapAcc + c * rowWidth)
                            c += 6
                        } else if left >= 4 {
                            weightGradBlock(V.self, InlineArray<4, Int>.self, call, xRow: xRow + c, dyRow: dyRow, acc: tapAcc + c * rowWidth)
                            c += 4
                        } else if left >= 2 {
                            weightGradBlock(V.self, InlineArray<2, Int>.self, call, xRow: xRow + c, dyRow: dyRow, acc: tapAcc + c * rowWidth)
                            c += 2
                        } else {
                            weightGradBlock(V.self, InlineArray<1, Int>.self, call, xRow: xRow + c, dyRow: dyRow, acc: tapAcc + c * rowWidth)
                            c += 1
                        }
                    }
                    tap += 1
                }
            }
        }
    }
}

/// CB input channels x every 16-wide output block, summed along one output row.
@inlinable @inline(__always)
func weightGradBlock<V: SIMD & BitwiseCopyable, let CB: Int>(
    _: V.Type, _: InlineArray<CB, Int>.Type, _ call: WeightGradientCall, xRow: UnsafePointer<Float>,
    dyRow: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    let rowWidth = call.outputBlocks * 16
    let xStep = call.stride.w * call.inputStrides.w, dyStep = call.gradOutputStrides.w
    for block in 0 ..< call.outputBlocks {
        var a = InlineArray<CB, V>(repeating: V())
        var xp = xRow, dp = dyRow + block * 16
        for _ in 0 ..< call.outputSize.w {
            let dy = UnsafeRawPointer(dp).loadUnaligned(as: V.self)
            for c in 0 ..< CB { a[c] = a[c].addingProduct(V(repeating: xp[c]), dy) }
            xp += xStep
            dp += dyStep
        }
        for c in 0 ..< CB {
            let p = acc + c * rowWidth + block * 16
            UnsafeMutableRawPointer(p).storeBytes(of: UnsafeRawPointer(p).loadUnaligned(as: V.self) + a[c], as: V.self)
        }
    }
}
