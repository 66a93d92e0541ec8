/// Winograd F(4x4, 3x3) for 3x3x3 "same" layers whose output height and width are multiples of
/// 4: 36 elementwise products per 4x4 output tile instead of 144 multiply-adds (4x fewer; F(2x2)
/// saves 2.25x), summed over the 3 taps in time. Transforms B, G and A are the F(4x4, 3x3) ones
/// of Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016), interpolation
/// points 0, +-1, +-2, infinity.
///
/// Same data flow as the F(2x2) kernel (Winograd.swift): per work item (one band of 4 output
/// rows, a run of tiles, all frames) the input transform into scratch [frame][xi][tile][c], the
/// register-blocked products per Winograd position xi (36 here), the output transform with bias
/// and epilogue. The weights are transformed per call from the layer's packed direct-kernel
/// weights (`transformWeights`), so layers keep no second Winograd copy: training's memory bar
/// counts every stored copy, and the transform costs well under 1% of the convolution.
public enum Winograd4 {
    /// Output tiles (4 pixels wide) per work item for P-tile register blocks: a whole number of
    /// blocks, about 8, so that an item's transformed input stays in L2.
    @inlinable
    public static func tilesPerItem(blockTiles p: Int) -> Int { p * ((8 + p - 1) / p) }

    /// The most tiles an item holds for any block size the kernels use (P <= 16).
    public static let maxTilesPerItem = 16

    /// Whether `call`, already a Winograd F(2x2) call, can run as F(4x4): output height and width
    /// multiples of 4.
    public static func isEligible(_ call: ConvCall) -> Bool {
        call.usesWinograd && call.outputSize.h % 4 == 0 && call.outputSize.w % 4 == 0
    }

    /// Floats of the transformed weights of `call`: [xi 36][kt][outBlock][c][16].
    public static func weightCount(_ call: ConvCall) -> Int { 36 * 3 * call.outputBlocks * call.inputChannels * 16 }

    /// U = G g G^T of every (output, input, tap) of `call`'s packed weights
    /// ([outBlock][kt][kh][kw][c][16]; padding outputs are zero there and stay zero), 16 outputs
    /// at a time, into `u` (weightCount floats).
    public static func transformWeights(_ call: ConvCall, into u: UnsafeMutablePointer<Float>) {
        typealias V = SIMD16<Float>
        let cin = call.inputChannels, blocks = call.outputBlocks
        let xiStride = 3 * blocks * cin * 16
        for block in 0 ..< blocks {
            for kt in 0 ..< 3 {
                for c in 0 ..< cin {
                    var g = InlineArray<9, V>(repeating: V())
                    for k in 0 ..< 9 { g[k] = call.weights.loadVector(V.self, at: (((block * 3 + kt) * 9 + k) * cin + c) * 16) }
                    // G = [[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],[1/24,-1/12,1/6],[0,0,1]]:
                    // G g on the columns (6 x 3), then G^T on the rows (6 x 6).
                    var gg = InlineArray<18, V>(repeating: V())
                    for s in 0 ..< 3 {
                        let r = interpolate(g[s], g[3 + s], g[6 + s])
                        for i in 0 ..< 6 { gg[i * 3 + s] = r[i] }
                    }
                    let first = (kt * blocks + block) * cin * 16 + c * 16
                    for i in 0 ..< 6 {
                        let r = interpolate(gg[i * 3], gg[i * 3 + 1], gg[i * 3 + 2])
                        for s in 0 ..< 6 { (u + (i * 6 + s) * xiStride + first).storeVector(r[s], at: 0) }
                    }
                }
            }
        }
    }

    /// G applied to one 3-vector: the kernel's values at the points 0, -1, 1, 1/2, -1/2 (scaled
    /// as A^T and B^T expect) and its leading coefficient.
    @inline(__always)
    static func interpolate(_ g0: SIMD16<Float>, _ g1: SIMD16<Float>, _ g2: SIMD16<Float>) -> InlineArray<6, SIMD16<Float>> {
        let even = g0 + g2
        let quarter = 0.25 * g0 + g2
        return [0.25 * g0, (even + g1) * (-1 / 6), (even - g1) * (-1 / 6),
                (quarter + 0.5 * g1) * (1 / 6), (quarter - 0.5 * g1) * (1 / 6), g2]
    }

    /// Work items of `call` with P-tile blocks: bands of 4 output rows times runs of tiles.
    public static func itemCount(outputSize: (t: Int, h: Int, w: Int), blockTiles p: Int) -> Int {
        (outputSize.h / 4) * runsPerBand(width: outputSize.w, blockTiles: p)
    }

    @inlinable
    static func runsPerBand(width: Int, blockTiles p: Int) -> Int {
        let j = tilesPerItem(blockTiles: p)
        return (width / 4 + j - 1) / j
    }

    /// Floats of scratch one thread needs for `call` with register blocks of up to 16 tiles.
    public static func scratchCount(inputChannels: Int, outputSize: (t: Int, h: Int, w: Int)) -> Int {
        outputSize.t * 36 * maxTilesPerItem * (inputChannels + 16)
    }
}

/// Runs work items `items` of an F(4x4)-eligible `call` with transformed weights `u`
/// (Winograd4.transformWeights), P tiles per register block; `scratch` holds
/// Winograd4.scratchCount floats.
@inlinable @inline(__always)
public func winograd4ConvItems<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, tiles _: InlineArray<P, Int>.Type, _ call: ConvCall, weights u: UnsafePointer<Float>, items: Range<Int>,
    scratch: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16 && P <= 16, "Winograd kernels work on 16-channel blocks and at most 16 tiles")
    let frames = call.outputSize.t, width = call.outputSize.w
    let tilesW = width / 4, runs = Winograd4.runsPerBand(width: width, blockTiles: P)
    let perItem = Winograd4.tilesPerItem(blockTiles: P)
    let v = scratch, m = scratch + frames * 36 * Winograd4.maxTilesPerItem * call.inputChannels
    for item in items {
        let band = item / runs, run = item % runs
        let j0 = run * perItem, tiles = min(perItem, tilesW - j0)
        winograd4InputTransform(V.self, input: call.input, strides: call.inputStrides, channels: call.inputChannels,
                                frames: frames, band: band, firstTile: j0, tiles: tiles, into: v)
        for block in 0 ..< call.outputBlocks {
            for xi in 0 ..< 36 {
                for t in 0 ..< frames {
                    if tiles < P {
                        for j in 0 ..< tiles {
                            winogradProducts(V.self, InlineArray<1, Int>.self, call, weights: u, positions: 36, v: v, m: m,
                                             tiles: tiles, xi: xi, t: t, start: j, block: block)
                        }
                        continue
                    }
                    var j = 0
                    while j < tiles {
                        let start = min(j, tiles - P)
                        winogradProducts(V.self, InlineArray<P, Int>.self, call, weights: u, positions: 36, v: v, m: m,
                                         tiles: tiles, xi: xi, t: t, start: start, block: block)
                        j = start + P
                    }
                }
            }
            winograd4OutputTransform(V.self, call, m: m, tiles: tiles, band: band, firstTile: j0, block: block)
        }
    }
}

/// B^T applied to one 6-vector (a row or column of an input tile), in place.
@inlinable @inline(__always)
func winograd4InputRows<V: SIMD & BitwiseCopyable>(_ d: inout InlineArray<36, V>, _ i0: Int, _ step: Int) where V.Scalar == Float {
    let a0 = d[i0], a1 = d[i0 + step], a2 = d[i0 + 2 * step], a3 = d[i0 + 3 * step], a4 = d[i0 + 4 * step], a5 = d[i0 + 5 * step]
    // B^T = [[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]]
    let four: V = V(repeating: 4), two: V = V(repeating: 2), five: V = V(repeating: 5)
    let s12 = a1 + a2, d12 = a1 - a2, s34 = a3 + a4, d43 = a4 - a3, d42 = a4 - a2, d31 = a3 - a1
    d[i0] = four * a0 - five * a2 + a4
    d[i0 + step] = s34 - four * s12
    d[i0 + 2 * step] = d43 + four * d12
    d[i0 + 3 * step] = d42 + two * d31
    d[i0 + 4 * step] = d42 - two * d31
    d[i0 + 5 * step] = four * a1 - five * a3 + a5
}

/// V = B^T d B for every frame and tile of an item, 16 channels at a time, stored [frame][xi][tile][c].
@inlinable @inline(__always)
func winograd4InputTransform<V: SIMD & BitwiseCopyable>(
    _: V.Type, input: UnsafePointer<Float>, strides s: (t: Int, h: Int, w: Int), channels cin: Int, frames: Int,
    band: Int, firstTile: Int, tiles: Int, into v: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    for f in 0 ..< frames {
        // Padded input frame f + 1 is clip frame f; tile (band, j) reads rows 4 band ..< 4 band + 6.
        let frame = input + (f + 1) * s.t + 4 * band * s.h
        for j in 0 ..< tiles {
            let corner = frame + 4 * (firstTile + j) * s.w
            for cb in stride(from: 0, to: cin, by: 16) {
                var d = InlineArray<36, V>(repeating: V())
                for r in 0 ..< 6 {
                    for c in 0 ..< 6 { d[r * 6 + c] = (corner + r * s.h + c * s.w + cb).loadVector(V.self, at: 0) }
                }
                for c in 0 ..< 6 { winograd4InputRows(&d, c, 6) }
                for r in 0 ..< 6 { winograd4InputRows(&d, r * 6, 1) }
                for xi in 0 ..< 36 {
                    (v + ((f * 36 + xi) * tiles + j) * cin + cb).storeVector(d[xi], at: 0)
                }
            }
        }
    }
}

/// Y = A^T M A for every frame and tile of an item and one 16-output block, plus bias and the
/// epilogue (as the direct kernel's).
@inlinable @inline(__always)
func winograd4OutputTransform<V: SIMD & BitwiseCopyable>(
    _: V.Type, _ call: ConvCall, m: UnsafeMutablePointer<Float>, tiles: Int, band: Int, firstTile: Int, block: Int
) where V.Scalar == Float {
    let frames = call.outputSize.t
    let lanes = min(16, call.outputChannels - block * 16)
    let slope = call.leakySlope ?? 1
    let bias: V = call.addBias ? call.bias.loadVector(V.self, at: block * 16) : V()
    let os = call.outputStrides
    let xiStride = frames * tiles * 16
    let two: V = V(repeating: 2), four: V = V(repeating: 4), eight: V = V(repeating: 8)
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * 16) { buffer in
        let y = buffer.baseAddress!
        for t in 0 ..< frames {
            for j in 0 ..< tiles {
                let mt = m + (t * tiles + j) * 16
                // A^T = [[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]] on the columns
                // (r, 4 x 6), then on the rows of r.
                var r = InlineArray<24, V>(repeating: V())
                for c in 0 ..< 6 {
                    var x = InlineArray<6, V>(repeating: V())
                    for i in 0 ..< 6 { x[i] = (mt + (i * 6 + c) * xiStride).loadVector(V.self, at: 0) }
                    let s12 = x[1] + x[2], d12 = x[1] - x[2], s34 = x[3] + x[4], d34 = x[3] - x[4]
                    r[c] = x[0] + s12 + s34
                    r[6 + c] = d12 + two * d34
                    r[12 + c] = s12 + four * s34
                    r[18 + c] = d12 + eight * d34 + x[5]
                }
                for a in 0 ..< 4 {
                    let x0 = r[a * 6], x1 = r[a * 6 + 1], x2 = r[a * 6 + 2], x3 = r[a * 6 + 3], x4 = r[a * 6 + 4], x5 = r[a * 6 + 5]
                    let s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d34 = x3 - x4
                    (y + (a * 4) * 16).storeVector(x0 + s12 + s34 + bias, at: 0)
                    (y + (a * 4 + 1) * 16).storeVector(d12 + two * d34 + bias, at: 0)
                    (y + (a * 4 + 2) * 16).storeVector(s12 + four * s34 + bias, at: 0)
                    (y + (a * 4 + 3) * 16).storeVector(d12 + eight * d34 + x5 + bias, at: 0)
                }
                let tile = firstTile + j
                for q in 0 ..< 16 {
                    let (a, b) = (q / 4, q % 4)
                    let o = call.output + t * os.t + (4 * band + a) * os.h + (4 * tile + b) * os.w + block * 16
                    let s = y + q * 16
                    switch call.epilogue {
                    case .store:
                        for l in 0 ..< lanes { let x = s[l]; o[l] = x < 0 ? x * slope : x }
                    case .add:
                        for l in 0 ..< lanes { o[l] += s[l] }
                    case .subtract:
                        for l in 0 ..< lanes { o[l] -= s[l] }
                    }
                }
            }
        }
    }
}
