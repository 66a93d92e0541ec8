import KernelCore
import Reconstruction
import XCTest

/// The generic convolution and weight-gradient kernels against a plain loop, for every register
/// block size the instruction sets use (P = 1, 2, 6, 14: AVX-512's 14 included, so its blocking
/// logic is checked on any CPU), widths below and above P, strides 1 and 2, and all epilogues.
final class ConvKernelTests: XCTestCase {
    struct Case {
        let cin: Int, cout: Int, k: (Int, Int, Int), stride: (Int, Int, Int), out: (Int, Int, Int)
    }

    let cases = [
        Case(cin: 3, cout: 5, k: (3, 3, 3), stride: (1, 1, 1), out: (2, 3, 17)),
        Case(cin: 4, cout: 20, k: (1, 3, 3), stride: (1, 2, 2), out: (2, 2, 9)),
        Case(cin: 2, cout: 16, k: (1, 1, 1), stride: (1, 1, 1), out: (1, 2, 5)),
        Case(cin: 7, cout: 33, k: (3, 1, 3), stride: (1, 1, 2), out: (3, 2, 15)),
    ]

    /// Input (tIn, hIn, wIn, cin) channels-last with extra pixel stride (cin + 3) and padded
    /// output strides, so that non-contiguous views are exercised too.
    func run(_ c: Case, pixels: Int, epilogue: ConvEpilogue, slope: Float?) {
        var rng = SplitMix(seed: UInt64(c.cin * 100 + c.cout + pixels))
        let tIn = (c.out.0 - 1) * c.stride.0 + c.k.0, hIn = (c.out.1 - 1) * c.stride.1 + c.k.1, wIn = (c.out.2 - 1) * c.stride.2 + c.k.2
        let ps = c.cin + 3
        let input = (0 ..< tIn * hIn * wIn * ps).map { _ in rng.unit() * 2 - 1 }
        let weights = (0 ..< c.cout * c.cin * c.k.0 * c.k.1 * c.k.2).map { _ in rng.unit() - 0.5 }
        let bias = (0 ..< c.cout).map { _ in rng.unit() }
        let blocks = (c.cout + 15) / 16
        var packed = [Float](repeating: 0, count: blocks * c.k.0 * c.k.1 * c.k.2 * c.cin * 16)
        var i = 0
        for b in 0 ..< blocks { for a in 0 ..< c.k.0 { for h in 0 ..< c.k.1 { for w in 0 ..< c.k.2 { for ic in 0 ..< c.cin { for l in 0 ..< 16 {
            let o = b * 16 + l
            if o < c.cout { packed[i] = weights[(((o * c.cin + ic) * c.k.0 + a) * c.k.1 + h) * c.k.2 + w] }
            i += 1
        } } } } } }
        let biasPadded = bias + [Float](repeating: 0, count: blocks * 16 - c.cout)
        let os = c.cout + 1
        let outCount = c.out.0 * c.out.1 * c.out.2 * os
        let initial = (0 ..< outCount).map { _ in rng.unit() }
        var got = initial
        // Reference.
        var want = initial
        for t in 0 ..< c.out.0 { for h in 0 ..< c.out.1 { for w in 0 ..< c.out.2 { for o in 0 ..< c.cout {
            var s = bias[o]
            for a in 0 ..< c.k.0 { for b in 0 ..< c.k.1 { for d in 0 ..< c.k.2 { for ic in 0 ..< c.cin {
                let x = input[(((t * c.stride.0 + a) * hIn + h * c.stride.1 + b) * wIn + w * c.stride.2 + d) * ps + ic]
                s += x * weights[(((o * c.cin + ic) * c.k.0 + a) * c.k.1 + b) * c.k.2 + d]
            } } } }
            let idx = ((t * c.out.1 + h) * c.out.2 + w) * os + o
            switch epilogue {
            case .store: want[idx] = slope.map { s < 0 ? s * $0 : s } ?? s
            case .add: want[idx] += s - bias[o]
            case .subtract: want[idx] -= s - bias[o]
            }
        } } } }
        input.withUnsafeBufferPointer { ip in packed.withUnsafeBufferPointer { wp in biasPadded.withUnsafeBufferPointer { bp in
            got.withUnsafeMutableBufferPointer { op in
                let call = ConvCall(input: ip.baseAddress!, inputStrides: (hIn * wIn * ps, wIn * ps, ps), inputChannels: c.cin,
                                    kernel: c.k, stride: c.stride, weights: wp.baseAddress!, bias: bp.baseAddress!,
                                    outputChannels: c.cout, output: op.baseAddress!, outputStrides: (c.out.1 * c.out.2 * os, c.out.2 * os, os),
                                    outputSize: c.out, epilogue: epilogue, leakySlope: slope, addBias: epilogue == .store)
                switch pixels {
                case 1: convRows(SIMD16<Float>.self, pixels: InlineArray<1, Int>.self, call, rows: 0 ..< call.rowCount)
                case 2: convRows(SIMD16<Float>.self, pixels: InlineArray<2, Int>.self, call, rows: 0 ..< call.rowCount)
                case 6: convRows(SIMD16<Float>.self, pixels: InlineArray<6, Int>.self, call, rows: 0 ..< call.rowCount)
                default: convRows(SIMD16<Float>.self, pixels: InlineArray<14, Int>.self, call, rows: 0 ..< call.rowCount)
                }
            }
        } } }
        let err = zip(got, want).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(err, 1e-4, "cin \(c.cin) cout \(c.cout) P \(pixels) \(epilogue)")
    }

    func testConvolutionMatchesPlainLoops() {
        for c in cases {
            for p in [1, 2, 6, 14] {
                run(c, pixels: p, epilogue: .store, slope: 0.01)
                run(c, pixels: p, epilogue: .store, slope: nil)
                run(c, pixels: p, epilogue: .add, slope: nil)
                run(c, pixels: p, epilogue: .subtract, slope: nil)
            }
        }
    }

    func testWeightGradientMatchesPlainLoops() {
        for c in cases {
            var rng = SplitMix(seed: 77)
            let tIn = (c.out.0 - 1) * c.stride.0 + c.k.0, hIn = (c.out.1 - 1) * c.stride.1 + c.k.1, wIn = (c.out.2 - 1) * c.stride.2 + c.k.2
            let input = (0 ..< tIn * hIn * wIn * c.cin).map { _ in rng.unit() - 0.5 }
            let dyStride = ((c.cout + 15) / 16) * 16 // 16-lane padded channels, as gradient buffers are
            let n = c.out.0 * c.out.1 * c.out.2
            var dy = [Float](repeating: 0, count: n * dyStride)
            for p in 0 ..< n { for o in 0 ..< c.cout { dy[p * dyStride + o] = rng.unit() - 0.5 } }
            let taps = c.k.0 * c.k.1 * c.k.2
            var got = [Float](repeating: 0, count: c.cout * c.cin * taps)
            input.withUnsafeBufferPointer { ip in dy.withUnsafeBufferPointer { dp in
                let call = WeightGradientCall(input: ip.baseAddress!, inputStrides: (hIn * wIn * c.cin, wIn * c.cin, c.cin), inputChannels: c.cin,
                                              kernel: c.k, stride: c.stride, gradOutput: dp.baseAddress!,
                                              gradOutputStrides: (c.out.1 * c.out.2 * dyStride, c.out.2 * dyStride, dyStride),
                                              outputChannels: c.cout, outputSize: c.out)
                got.withUnsafeMutableBufferPointer { KernelSet.generic.convWeightGradient(call, into: $0.baseAddress!) }
            } }
            var err: Float = 0
            for o in 0 ..< c.cout { for ic in 0 ..< c.cin { for a in 0 ..< c.k.0 { for b in 0 ..< c.k.1 { for d in 0 ..< c.k.2 {
                var s: Float = 0
                for t in 0 ..< c.out.0 { for h in 0 ..< c.out.1 { for w in 0 ..< c.out.2 {
                    s += input[(((t * c.stride.0 + a) * hIn + h * c.stride.1 + b) * wIn + w * c.stride.2 + d) * c.cin + ic]
                        * dy[((t * c.out.1 + h) * c.out.2 + w) * dyStride + o]
                } } }
                err = max(err, abs(s - got[(((o * c.cin + ic) * c.k.0 + a) * c.k.1 + b) * c.k.2 + d]))
            } } } } }
            XCTAssertLessThan(err, 1e-4, "cin \(c.cin) cout \(c.cout)")
        }
    }

    /// Winograd F(2x2, 3x3) against the direct kernel: 3x3x3 "same" layers with zero time padding
    /// (as activations have), widths giving one and several tile runs and runs shorter than P,
    /// 16 and 32 input channels, partial output blocks, every epilogue and every P.
    func testWinogradMatchesDirectConvolution() {
        let shapes = [(cin: 16, cout: 20, out: (3, 4, 10)), (cin: 32, cout: 32, out: (2, 4, 34)), (cin: 16, cout: 1, out: (4, 2, 2))]
        checkWinogradAgainstDirect(shapes: shapes, tolerance: 2e-5) { c, p in
            XCTAssertTrue(c.usesWinograd)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Winograd.scratchCount(inputChannels: c.inputChannels, outputSize: c.outputSize))
            defer { scratch.deallocate() }
            let items = 0 ..< Winograd.itemCount(outputSize: c.outputSize, blockTiles: p)
            switch p {
            case 1: winogradConvItems(Winograd.self, SIMD16<Float>.self, tiles: InlineArray<1, Int>.self, c, weights: c.winogradWeights!, items: items, scratch: scratch)
            case 2: winogradConvItems(Winograd.self, SIMD16<Float>.self, tiles: InlineArray<2, Int>.self, c, weights: c.winogradWeights!, items: items, scratch: scratch)
            case 6: winogradConvItems(Winograd.self, SIMD16<Float>.self, tiles: InlineArray<6, Int>.self, c, weights: c.winogradWeights!, items: items, scratch: scratch)
            default: winogradConvItems(Winograd.self, SIMD16<Float>.self, tiles: InlineArray<14, Int>.self, c, weights: c.winogradWeights!, items: items, scratch: scratch)
            }
        }
    }

    /// Winograd F(4x4, 3x3), weights transformed from the packed direct-kernel weights, against
    /// the direct kernel: one run, several runs with a short last one (14 tiles), runs shorter
    /// than P, one and two output blocks (partial), every epilogue and every P. Its larger
    /// transform constants cost some float32 accuracy, hence the looser bound.
    func testWinograd4MatchesDirectConvolution() {
        let shapes = [(cin: 16, cout: 20, out: (3, 4, 12)), (cin: 32, cout: 32, out: (2, 4, 56)), (cin: 16, cout: 1, out: (4, 4, 4))]
        checkWinogradAgainstDirect(shapes: shapes, tolerance: 1e-4) { c, p in
            XCTAssertTrue(Winograd4.isEligible(c))
            let u = UnsafeMutablePointer<Float>.allocate(capacity: Winograd4.weightCount(c))
            defer { u.deallocate() }
            Winograd4.transformWeights(c, into: u)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Winograd4.scratchCount(inputChannels: c.inputChannels, outputSize: c.outputSize))
            defer { scratch.deallocate() }
            let items = 0 ..< Winograd4.itemCount(outputSize: c.outputSize, blockTiles: p)
            switch p {
            case 1: winogradConvItems(Winograd4.self, SIMD16<Float>.self, tiles: InlineArray<1, Int>.self, c, weights: u, items: items, scratch: scratch)
            case 2: winogradConvItems(Winograd4.self, SIMD16<Float>.self, tiles: InlineArray<2, Int>.self, c, weights: u, items: items, scratch: scratch)
            case 6: winogradConvItems(Winograd4.self, SIMD16<Float>.self, tiles: InlineArray<6, Int>.self, c, weights: u, items: items, scratch: scratch)
            default: winogradConvItems(Winograd4.self, SIMD16<Float>.self, tiles: InlineArray<14, Int>.self, c, weights: u, items: items, scratch: scratch)
            }
        }
        // Heights or widths that are not multiples of 4 stay on F(2x2).
        var call = ConvCall(input: UnsafePointer(bitPattern: 8)!, inputStrides: (0, 0, 0), inputChannels: 16, kernel: (3, 3, 3),
                            stride: (1, 1, 1), weights: UnsafePointer(bitPattern: 8)!, bias: UnsafePointer(bitPattern: 8)!,
                            outputChannels: 16, output: UnsafeMutablePointer(bitPattern: 8)!, outputStrides: (0, 0, 0),
                            outputSize: (2, 6, 8), epilogue: .store, leakySlope: nil, winogradWeights: UnsafePointer(bitPattern: 8)!)
        XCTAssertTrue(call.usesWinograd)
        XCTAssertFalse(Winograd4.isEligible(call))
        call.outputSize = (2, 8, 8)
        XCTAssertTrue(Winograd4.isEligible(call))
    }

    /// Runs a Winograd kernel (`run(call, P)`, the call carrying packed and F(2x2) weights and
    /// its output buffer) against the direct kernel on random data for each shape, epilogue and P.
    private func checkWinogradAgainstDirect(shapes: [(cin: Int, cout: Int, out: (Int, Int, Int))], tolerance: Float,
                                            run: (ConvCall, Int) -> Void) {
        for shape in shapes {
            var rng = SplitMix(seed: UInt64(shape.cin * 7 + shape.cout))
            let (t, h, w) = shape.out
            let ps = shape.cin + 3 // pixel stride with slack: a view, not a tight buffer
            let (tIn, hIn, wIn) = (t + 2, h + 2, w + 2)
            var input = [Float](repeating: 0, count: tIn * hIn * wIn * ps)
            for f in 1 ... t { for y in 0 ..< hIn { for x in 0 ..< wIn { for c in 0 ..< shape.cin {
                input[((f * hIn + y) * wIn + x) * ps + c] = rng.unit() * 2 - 1
            } } } }
            let weights = (0 ..< shape.cout * shape.cin * 27).map { _ in rng.unit() - 0.5 }
            let value: (Int, Int, Int, Int, Int) -> Float = { o, c, a, b, d in weights[(((o * shape.cin + c) * 3 + a) * 3 + b) * 3 + d] }
            let packed = ConvLayer.pack(outputs: shape.cout, inputs: shape.cin, taps: (3, 3, 3), value: value)
            let wino = Winograd.transformWeights(outputs: shape.cout, inputs: shape.cin, value: value)
            let bias = (0 ..< ((shape.cout + 15) / 16) * 16).map { $0 < shape.cout ? rng.unit() : 0 }
            let os = shape.cout + 1
            let initial = (0 ..< t * h * w * os).map { _ in rng.unit() }
            for (epilogue, slope) in [(ConvEpilogue.store, Float(0.01)), (.store, nil), (.add, nil), (.subtract, nil)] as [(ConvEpilogue, Float?)] {
                var want = initial
                var call = ConvCall(input: UnsafePointer(bitPattern: 8)!, inputStrides: (hIn * wIn * ps, wIn * ps, ps), inputChannels: shape.cin,
                                    kernel: (3, 3, 3), stride: (1, 1, 1), weights: UnsafePointer(bitPattern: 8)!, bias: UnsafePointer(bitPattern: 8)!,
                                    outputChannels: shape.cout, output: UnsafeMutablePointer(bitPattern: 8)!,
                                    outputStrides: (h * w * os, w * os, os), outputSize: shape.out, epilogue: epilogue, leakySlope: slope,
                                    addBias: epilogue == .store)
                input.withUnsafeBufferPointer { ip in packed.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { bp in
                    want.withUnsafeMutableBufferPointer { op in
                        call.input = ip.baseAddress!; call.weights = wp.baseAddress!; call.bias = bp.baseAddress!; call.output = op.baseAddress!
                        convRows(SIMD16<Float>.self, pixels: InlineArray<1, Int>.self, call, rows: 0 ..< call.rowCount)
                    }
                } } }
                for p in [1, 2, 6, 14] {
                    var got = initial
                    input.withUnsafeBufferPointer { ip in packed.withUnsafeBufferPointer { wp in wino.withUnsafeBufferPointer { up in
                        bias.withUnsafeBufferPointer { bp in got.withUnsafeMutableBufferPointer { op in
                            var c = call
                            c.input = ip.baseAddress!; c.weights = wp.baseAddress!; c.bias = bp.baseAddress!; c.output = op.baseAddress!
                            c.winogradWeights = up.baseAddress!
                            run(c, p)
                        } }
                    } } }
                    let err = zip(got, want).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(err, tolerance, "cin \(shape.cin) cout \(shape.cout) out \(shape.out) P \(p) \(epilogue)")
                    // Slack channels beyond cout in each output pixel are never written.
                    for i in stride(from: shape.cout, to: got.count, by: os) { XCTAssertEqual(got[i], initial[i]) }
                }
            }
        }
    }

    /// The Winograd weight gradient (3x3x3 "same" layers, zero time padding as activations have)
    /// against a plain loop, on every instruction set the CPU has: several tile runs, 16 and 32
    /// input channels, partial output blocks, F(2x2) and F(4x4).
    func testWinogradWeightGradientMatchesPlainLoops() {
        // The first two run F(2x2) (a width or height not a multiple of 4), the others F(4x4).
        for shape in [(cin: 16, cout: 20, out: (3, 4, 10)), (cin: 32, cout: 32, out: (2, 2, 70)),
                      (cin: 16, cout: 20, out: (3, 4, 12)), (cin: 32, cout: 32, out: (2, 4, 56))] {
            var rng = SplitMix(seed: UInt64(shape.cin + shape.cout))
            let (t, h, w) = shape.out
            let (tIn, hIn, wIn) = (t + 2, h + 2, w + 2)
            var input = [Float](repeating: 0, count: tIn * hIn * wIn * shape.cin)
            for f in 1 ... t { for y in 0 ..< hIn { for x in 0 ..< wIn { for c in 0 ..< shape.cin {
                input[((f * hIn + y) * wIn + x) * shape.cin + c] = rng.unit() - 0.5
            } } } }
            let dyStride = ((shape.cout + 15) / 16) * 16
            var dy = [Float](repeating: 0, count: t * h * w * dyStride)
            for p in 0 ..< t * h * w { for o in 0 ..< shape.cout { dy[p * dyStride + o] = rng.unit() - 0.5 } }
            var want = [Float](repeating: 0, count: shape.cout * shape.cin * 27)
            for o in 0 ..< shape.cout { for ic in 0 ..< shape.cin { for a in 0 ..< 3 { for b in 0 ..< 3 { for d in 0 ..< 3 {
                var s: Float = 0
                for tt in 0 ..< t { for y in 0 ..< h { for x in 0 ..< w {
                    s += input[(((tt + a) * hIn + y + b) * wIn + x + d) * shape.cin + ic] * dy[((tt * h + y) * w + x) * dyStride + o]
                } } }
                want[(((o * shape.cin + ic) * 3 + a) * 3 + b) * 3 + d] = s
            } } } } }
            for kernels in KernelSet.supported {
                var got = [Float](repeating: 0, count: want.count)
                input.withUnsafeBufferPointer { ip in dy.withUnsafeBufferPointer { dp in
                    let call = WeightGradientCall(input: ip.baseAddress!, inputStrides: (hIn * wIn * shape.cin, wIn * shape.cin, shape.cin),
                                                  inputChannels: shape.cin, kernel: (3, 3, 3), stride: (1, 1, 1), gradOutput: dp.baseAddress!,
                                                  gradOutputStrides: (h * w * dyStride, w * dyStride, dyStride), outputChannels: shape.cout,
                                                  outputSize: shape.out)
                    XCTAssertTrue(Winograd.isEligible(call))
                    XCTAssertEqual(Winograd4.isEligible(call), shape.out.1 % 4 == 0 && shape.out.2 % 4 == 0)
                    got.withUnsafeMutableBufferPointer { kernels.convWeightGradient(call, into: $0.baseAddress!) }
                } }
                let err = zip(got, want).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(err, 1e-4, "\(kernels) cin \(shape.cin) cout \(shape.cout)")
            }
        }
    }
}
