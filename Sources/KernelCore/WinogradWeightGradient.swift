/// Weight gradient of a Winograd-eligible 3x3x3 "same" convolution with the F(2x2, 3x3)
/// transforms run backwards (Lavin & Gray 2016): for one 2x2 tile of dY and the 4x4 input tile
/// under it, the 3x3 spatial gradient is G^T [(A dY A^T) .* (B^T x B)] G, with the forward pass's
/// A, B and G. Summed over tiles, frames and channels, the 16 elementwise products are 16
/// matrix products M[kt][xi][c][o] += sum over (frame, tile) of V[frame + kt - 1][xi][tile][c] *
/// D[frame][xi][tile][o]; G^T M G then gives the 3x3 taps (Winograd.finishWeightGradient).
/// 2.25x fewer multiply-adds than the direct weight gradient, with long register-resident sums.
extension Winograd {
    /// Whether `call` can run this way (as the forward: 3x3x3, stride 1, even sizes, 16-channel input blocks).
    public static func isEligible(_ call: WeightGradientCall) -> Bool {
        isEligible(kernel: call.kernel, stride: call.stride, inputChannels: call.inputChannels, outputSize: call.outputSize)
    }

    /// Floats of one thread's product accumulator M: [kt][xi][c][outBlock * 16].
    public static func weightGradientAccumulatorCount(_ call: WeightGradientCall) -> Int {
        3 * 16 * call.inputChannels * call.outputBlocks * 16
    }

    /// Floats of one thread's transform scratch.
    public static func weightGradientScratchCount(_ call: WeightGradientCall) -> Int {
        call.outputSize.t * 16 * maxTilesPerItem * (call.inputChannels + call.outputBlocks * 16)
    }

    /// Adds G^T M G of the summed accumulator into `gradient` ([o][c][3][3][3], PyTorch order).
    public static func finishWeightGradient(_ call: WeightGradientCall, accumulator m: UnsafePointer<Float>,
                                            into gradient: UnsafeMutablePointer<Float>) {
        let cin = call.inputChannels, width = call.outputBlocks * 16
        // G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]].
        let gt: [[Float]] = [[1, 0.5, 0.5, 0], [0, 0.5, -0.5, 0], [0, 0.5, 0.5, 1]]
        for kt in 0 ..< 3 {
            for c in 0 ..< cin {
                for o in 0 ..< call.outputChannels {
                    var x = InlineArray<16, Float>(repeating: 0)
                    for xi in 0 ..< 16 { x[xi] = m[((kt * 16 + xi) * cin + c) * width + o] }
                    for kh in 0 ..< 3 {
                        for kw in 0 ..< 3 {
                            var sum: Float = 0
                            for r in 0 ..< 4 where gt[kh][r] != 0 {
                                for s in 0 ..< 4 where gt[kw][s] != 0 { sum += gt[kh][r] * x[r * 4 + s] * gt[kw][s] }
                            }
                            gradient[(((o * cin + c) * 3 + kt) * 3 + kh) * 3 + kw] += sum
                        }
                    }
                }
            }
        }
    }
}

/// Adds work items `items` (as the forward's: bands of 2 rows x runs of tiles) of `call` into the
/// accumulator `m`; P input channels x 16 outputs per register block.
@inlinable @inline(__always)
public func winogradWeightGradientItems<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, channels _: InlineArray<P, Int>.Type, _ call: WeightGradientCall, items: Range<Int>,
    scratch: UnsafeMutablePointer<Float>, accumulator m: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16 && P <= 16)
    let frames = call.outputSize.t, width = call.outputSize.w, cin = call.inputChannels, blocks = call.outputBlocks
    let tilesW = width / 2, runs = Winograd.runsPerBand(width: width, blockTiles: P)
    let perItem = Winograd.tilesPerItem(blockTiles: P)
    let v = scratch, d = scratch + frames * 16 * Winograd.maxTilesPerItem * cin
    let rowWidth = blocks * 16
    for item in items {
        let band = item / runs, run = item % runs
        let j0 = run * perItem, tiles = min(perItem, tilesW - j0)
        winogradInputTransform(V.self, input: call.input, strides: call.inputStrides, channels: cin, frames: frames,
                               band: band, firstTile: j0, tiles: tiles, into: v)
        winogradGradientTransform(V.self, call, band: band, firstTile: j0, tiles: tiles, into: d)
        for kt in 0 ..< 3 {
            let firstT = max(0, 1 - kt), endT = min(frames, frames + 1 - kt)
            if firstT >= endT { continue }
            for xi in 0 ..< 16 {
                for block in 0 ..< blocks {
                    var c = 0
                    while c < cin {
                        let acc = m + ((kt * 16 + xi) * cin + c) * rowWidth + block * 16
                        if cin - c >= P {
                            winogradGradientProducts(V.self, InlineArray<P, Int>.self, v: v, d: d, cin: cin, rowWidth: rowWidth, tiles: tiles,
                                                     kt: kt, xi: xi, frames: firstT ..< endT, c: c, block: block, acc: acc)
                            c += P
                        } else if cin - c >= 2 {
                            winogradGradientProducts(V.self, InlineArray<2, Int>.self, v: v, d: d, cin: cin, rowWidth: rowWidth, tiles: tiles,
                                                     kt: kt, xi: xi, frames: firstT ..< endT, c: c, block: block, acc: acc)
                            c += 2
                        } else {
                            winogradGradientProducts(V.self, InlineArray<1, Int>.self, v: v, d: d, cin: cin, rowWidth: rowWidth, tiles: tiles,
                                                     kt: kt, xi: xi, frames: firstT ..< endT, c: c, block: block, acc: acc)
                            c += 1
                        }
                    }
                }
            }
        }
    }
}

/// D = A dY A^T (A = [[1,0],[1,1],[1,-1],[0,-1]]) of every frame's 2x2 dY tiles, stored [frame][xi][tile][outBlock * 16].
@inlinable @inline(__always)
func winogradGradientTransform<V: SIMD & BitwiseCopyable>(
    _: V.Type, _ call: WeightGradientCall, band: Int, firstTile: Int, tiles: Int, into d: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    let s = call.gradOutputStrides, rowWidth = call.outputBlocks * 16
    for t in 0 ..< call.outputSize.t {
        for j in 0 ..< tiles {
            let corner = call.gradOutput + t * s.t + 2 * band * s.h + 2 * (firstTile + j) * s.w
            for block in 0 ..< call.outputBlocks {
                let g00 = (corner + block * 16).loadVector(V.self, at: 0), g01 = (corner + s.w + block * 16).loadVector(V.self, at: 0)
                let g10 = (corner + s.h + block * 16).loadVector(V.self, at: 0)
                let g11 = (corner + s.h + s.w + block * 16).loadVector(V.self, at: 0)
                // Rows: [g0, g0 + g1, g0 - g1, -g1] of the two columns; then the same along each row.
                let base = d + (t * 16 * tiles + j) * rowWidth + block * 16, xiStep = tiles * rowWidth
                winogradGradientRow(V.self, g00, g01, into: base, xiStep: xiStep)
                winogradGradientRow(V.self, g00 + g10, g01 + g11, into: base + 4 * xiStep, xiStep: xiStep)
                winogradGradientRow(V.self, g00 - g10, g01 - g11, into: base + 8 * xiStep, xiStep: xiStep)
                winogradGradientRow(V.self, V() - g10, V() - g11, into: base + 12 * xiStep, xiStep: xiStep)
            }
        }
    }
}

/// One row of D: [a, a + b, a - b, -b] at four consecutive xi.
@inlinable @inline(__always)
func winogradGradientRow<V: SIMD & BitwiseCopyable>(_: V.Type, _ a: V, _ b: V, into d: UnsafeMutablePointer<Float>, xiStep: Int)
    where V.Scalar == Float {
    d.storeVector(a, at: 0)
    (d + xiStep).storeVector(a + b, at: 0)
    (d + 2 * xiStep).storeVector(a - b, at: 0)
    (d + 3 * xiStep).storeVector(V() - b, at: 0)
}

/// acc[c ..< c + P][block outputs] += sum over frames t and tiles of V[t + kt - 1][xi][tile][c + p] * D[t][xi][tile][outputs];
/// `positions` Winograd positions per frame (16 for F(2x2), 36 for F(4x4)).
@inlinable @inline(__always)
func winogradGradientProducts<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, _: InlineArray<P, Int>.Type, positions: Int = 16, v: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>, cin: Int,
    rowWidth: Int, tiles: Int, kt: Int, xi: Int, frames: Range<Int>, c: Int, block: Int, acc: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    var a = InlineArray<P, V>(repeating: V())
    for t in frames {
        var xp = v + (((t + kt - 1) * positions + xi) * tiles) * cin + c
        var dp = d + ((t * positions + xi) * tiles) * rowWidth + block * 16
        for _ in 0 ..< tiles {
            let g = UnsafeRawPointer(dp).loadUnaligned(as: V.self)
            for p in 0 ..< P { a[p] = a[p].addingProduct(V(repeating: xp[p]), g) }
            xp += cin
            dp += rowWidth
        }
    }
    for p in 0 ..< P {
        let q = acc + p * rowWidth
        q.storeVector(q.loadVector(V.self, at: 0) + a[p], at: 0)
    }
}
