/// Winograd F(2x2, 3x3) for the network's 3x3x3, stride-1, "same" convolutions: the 3x3 spatial
/// part of each temporal tap becomes 16 elementwise products per 2x2 output tile instead of 36
/// multiply-adds (2.25x fewer), summed over the 3 taps in time (Lavin & Gray, "Fast Algorithms
/// for Convolutional Neural Networks", 2016, for the transforms B, G and A used below).
///
/// Data flow for one work item (one band of 2 output rows, a run of up to 16 tiles, all frames):
/// 1. input transform V = B^T d B of every 4x4 input tile of every frame, into scratch laid out
///    [frame][xi][tile][c] (xi = one of the 16 Winograd-domain positions);
/// 2. for each output frame, 16-channel block and P tiles: for each xi, sum over the taps kt and
///    channels c of V[t + kt - 1][xi][tile][c] * U[xi][kt][c][o], with the direct convolution's
///    register-blocked inner loop (P tiles x 16 outputs, one broadcast per tile and channel);
/// 3. output transform Y = A^T M A, bias, then the same epilogues as the direct kernel.
/// The frames just outside the clip are the activation's zero padding: their taps are skipped.
public enum Winograd {
    /// Output tiles (2 pixels wide) per work item for P-tile register blocks: a whole number of
    /// blocks (so only a row's last item has a partial block), about 16 so that an item's
    /// transformed input stays in L2.
    @inlinable
    public static func tilesPerItem(blockTiles p: Int) -> Int { p * ((16 + p - 1) / p) }

    /// The most tiles an item holds for any block size the kernels use (P <= 16).
    public static let maxTilesPerItem = 32

    /// Whether `call` can run as Winograd: 3x3x3 kernel, stride 1, even output height and width,
    /// input channels in whole 16-channel blocks.
    public static func isEligible(kernel: (t: Int, h: Int, w: Int), stride: (t: Int, h: Int, w: Int),
                                  inputChannels: Int, outputSize: (t: Int, h: Int, w: Int)) -> Bool {
        kernel == (3, 3, 3) && stride == (1, 1, 1) && inputChannels % 16 == 0
            && outputSize.h % 2 == 0 && outputSize.w % 2 == 0 && outputSize.h > 0 && outputSize.w > 0 && outputSize.t > 0
    }

    /// Weights [out][in][3][3][3] given by `value(o, c, kt, kh, kw)`, transformed to U = G g G^T per
    /// (o, c, kt) and packed [xi][kt][outBlock][c][16] (outputs padded to 16 with zeros).
    public static func transformWeights(outputs: Int, inputs: Int, value: (Int, Int, Int, Int, Int) -> Float) -> [Float] {
        let blocks = (outputs + 15) / 16
        var u = [Float](repeating: 0, count: 16 * 3 * blocks * inputs * 16)
        for o in 0 ..< outputs {
            for c in 0 ..< inputs {
                for kt in 0 ..< 3 {
                    // G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]]: U = G g G^T, columns then rows.
                    var gg = InlineArray<12, Float>(repeating: 0) // G g, 4 x 3
                    for s in 0 ..< 3 {
                        let g0 = value(o, c, kt, 0, s), g1 = value(o, c, kt, 1, s), g2 = value(o, c, kt, 2, s)
                        gg[s] = g0
                        gg[3 + s] = 0.5 * (g0 + g1 + g2)
                        gg[6 + s] = 0.5 * (g0 - g1 + g2)
                        gg[9 + s] = g2
                    }
                    let base = (kt * blocks + o / 16) * inputs + c
                    for r in 0 ..< 4 {
                        let g0 = gg[r * 3], g1 = gg[r * 3 + 1], g2 = gg[r * 3 + 2]
                        let row = (g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2)
                        // xi = r * 4 + s lives at ((xi * 3 + kt) * blocks + block) * inputs + c.
                        let step = 3 * blocks * inputs * 16
                        let first = (r * 4 * 3 * blocks * inputs + base) * 16 + o % 16
                        u[first] = row.0
                        u[first + step] = row.1
                        u[first + 2 * step] = row.2
                        u[first + 3 * step] = row.3
                    }
                }
            }
        }
        return u
    }

    /// Work items of `call` with P-tile blocks: bands of 2 output rows times runs of tiles.
    public static func itemCount(outputSize: (t: Int, h: Int, w: Int), blockTiles p: Int) -> Int {
        (outputSize.h / 2) * runsPerBand(width: outputSize.w, blockTiles: p)
    }

    @inlinable
    static func runsPerBand(width: Int, blockTiles p: Int) -> Int {
        let j = tilesPerItem(blockTiles: p)
        return (width / 2 + j - 1) / j
    }

    /// Floats of scratch one thread needs for `call` with register blocks of up to 16 tiles.
    public static func scratchCount(inputChannels: Int, outputSize: (t: Int, h: Int, w: Int)) -> Int {
        outputSize.t * 16 * maxTilesPerItem * (inputChannels + 16)
    }
}

/// Runs work items `items` of a Winograd-eligible `call` (`call.winogradWeights` set), P tiles per
/// register block; `scratch` holds Winograd.scratchCount floats.
@inlinable @inline(__always)
public func winogradConvItems<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, tiles _: InlineArray<P, Int>.Type, _ call: ConvCall, items: Range<Int>, scratch: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16 && P <= 16, "Winograd kernels work on 16-channel blocks and at most 16 tiles")
    let frames = call.outputSize.t, width = call.outputSize.w
    let tilesW = width / 2, runs = Winograd.runsPerBand(width: width, blockTiles: P)
    let perItem = Winograd.tilesPerItem(blockTiles: P)
    let v = scratch, m = scratch + frames * 16 * Winograd.maxTilesPerItem * call.inputChannels
    let u = call.winogradWeights!
    for item in items {
        let band = item / runs, run = item % runs
        let j0 = run * perItem, tiles = min(perItem, tilesW - j0)
        winogradInputTransform(V.self, input: call.input, strides: call.inputStrides, channels: call.inputChannels,
                               frames: frames, band: band, firstTile: j0, tiles: tiles, into: v)
        for block in 0 ..< call.outputBlocks {
            // xi outermost: its weights (3 taps x C x 16) and its slice of V stay in L1 while every
            // frame and tile uses them; the products go to M [xi][frame][tile][16].
            for xi in 0 ..< 16 {
                for t in 0 ..< frames {
                    if tiles < P {
                        for j in 0 ..< tiles {
                            winogradProducts(V.self, InlineArray<1, Int>.self, call, weights: u, positions: 16, v: v, m: m, tiles: tiles, xi: xi, t: t, start: j, block: block)
                        }
                        continue
                    }
                    var j = 0
                    while j < tiles {
                        let start = min(j, tiles - P)
                        winogradProducts(V.self, InlineArray<P, Int>.self, call, weights: u, positions: 16, v: v, m: m, tiles: tiles, xi: xi, t: t, start: start, block: block)
                        j = start + P
                    }
                }
            }
            winogradOutputTransform(V.self, call, m: m, tiles: tiles, band: band, firstTile: j0, block: block)
        }
    }
}

/// V = B^T d B for every frame and tile of an item, 16 channels at a time, stored [frame][xi][tile][c].
@inlinable @inline(__always)
func winogradInputTransform<V: SIMD & BitwiseCopyable>(
    _: V.Type, input: UnsafePointer<Float>, strides s: (t: Int, h: Int, w: Int), channels cin: Int, frames: Int,
    band: Int, firstTile: Int, tiles: Int, into v: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    for f in 0 ..< frames {
        // Padded input frame f + 1 is clip frame f; tile (band, j) reads rows 2 band ..< 2 band + 4.
        let frame = input + (f + 1) * s.t + 2 * band * s.h
        for j in 0 ..< tiles {
            let corner = frame + 2 * (firstTile + j) * s.w
            for cb in stride(from: 0, to: cin, by: 16) {
                var d = InlineArray<16, V>(repeating: V())
                for r in 0 ..< 4 {
                    for c in 0 ..< 4 { d[r * 4 + c] = (corner + r * s.h + c * s.w + cb).loadVector(V.self, at: 0) }
                }
                // B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]] on rows, then on columns.
                for c in 0 ..< 4 {
                    let a0 = d[c], a1 = d[4 + c], a2 = d[8 + c], a3 = d[12 + c]
                    d[c] = a0 - a2; d[4 + c] = a1 + a2; d[8 + c] = a2 - a1; d[12 + c] = a1 - a3
                }
                for r in 0 ..< 4 {
                    let a0 = d[r * 4], a1 = d[r * 4 + 1], a2 = d[r * 4 + 2], a3 = d[r * 4 + 3]
                    d[r * 4] = a0 - a2; d[r * 4 + 1] = a1 + a2; d[r * 4 + 2] = a2 - a1; d[r * 4 + 3] = a1 - a3
                }
                for xi in 0 ..< 16 {
                    (v + ((f * 16 + xi) * tiles + j) * cin + cb).storeVector(d[xi], at: 0)
                }
            }
        }
    }
}

/// M[xi][t][start ..< start + P] = sum over taps kt and channels c of V[t + kt - 1][xi][tile][c] *
/// U[xi][kt][c][block outputs], with the direct kernel's register-blocked loop; `positions` is
/// the number of Winograd positions (16 for F(2x2), 36 for F(4x4)).
@inlinable @inline(__always)
func winogradProducts<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, _: InlineArray<P, Int>.Type, _ call: ConvCall, weights u: UnsafePointer<Float>, positions: Int,
    v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, tiles: Int, xi: Int, t: Int, start: Int, block: Int
) where V.Scalar == Float {
    let cin = call.inputChannels, frames = call.outputSize.t, blocks = call.outputBlocks
    var acc = InlineArray<P, V>(repeating: V())
    for kt in 0 ..< 3 {
        let f = t + kt - 1
        if f < 0 || f >= frames { continue }
        convSteps(V.self, &acc, input: v + ((f * positions + xi) * tiles + start) * cin,
                  weights: u + ((xi * 3 + kt) * blocks + block) * cin * 16, steps: cin, pixelStep: cin)
    }
    let out = m + ((xi * frames + t) * tiles + start) * 16
    for p in 0 ..< P { (out + p * 16).storeVector(acc[p], at: 0) }
}

/// Y = A^T M A for every frame and tile of an item and one 16-output block, plus bias and the
/// epilogue (as the direct kernel's).
@inlinable @inline(__always)
func winogradOutputTransform<V: SIMD & BitwiseCopyable>(
    _: V.Type, _ call: ConvCall, m: UnsafeMutablePointer<Float>, tiles: Int, band: Int, firstTile: Int, block: Int
) where V.Scalar == Float {
    let frames = call.outputSize.t
    let lanes = min(16, call.outputChannels - block * 16)
    let slope = call.leakySlope ?? 1
    let bias: V = call.addBias ? call.bias.loadVector(V.self, at: block * 16) : V()
    let os = call.outputStrides
    let xiStride = frames * tiles * 16
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * 16) { buffer in
        let y = buffer.baseAddress!
        for t in 0 ..< frames {
            for j in 0 ..< tiles {
                let mt = m + (t * tiles + j) * 16
                // A^T = [[1,1,1,0],[0,1,-1,-1]] on rows, then on columns.
                var r = InlineArray<8, V>(repeating: V())
                for c in 0 ..< 4 {
                    let m0 = (mt + c * xiStride).loadVector(V.self, at: 0)
                    let m1 = (mt + (4 + c) * xiStride).loadVector(V.self, at: 0)
                    let m2 = (mt + (8 + c) * xiStride).loadVector(V.self, at: 0)
                    let m3 = (mt + (12 + c) * xiStride).loadVector(V.self, at: 0)
                    r[c] = m0 + m1 + m2
                    r[4 + c] = m1 - m2 - m3
                }
                for a in 0 ..< 2 {
                    (y + (a * 2) * 16).storeVector(r[a * 4] + r[a * 4 + 1] + r[a * 4 + 2] + bias, at: 0)
                    (y + (a * 2 + 1) * 16).storeVector(r[a * 4 + 1] - r[a * 4 + 2] - r[a * 4 + 3] + bias, at: 0)
                }
                let tile = firstTile + j
                for q in 0 ..< 4 {
                    let (a, b) = (q / 2, q % 2)
                    let o = call.output + t * os.t + (2 * band + a) * os.h + (2 * tile + b) * os.w + block * 16
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
