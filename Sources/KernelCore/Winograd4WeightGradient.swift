/// Weight gradient of an F(4x4)-eligible 3x3x3 "same" convolution with the F(4x4, 3x3)
/// transforms run backwards, as Winograd's F(2x2) version (WinogradWeightGradient.swift): for
/// one 4x4 tile of dY and the 6x6 input tile under it the 3x3 spatial gradient is
/// G^T [(A dY A^T) .* (B^T x B)] G, summed over tiles, frames and channels as 36 matrix products
/// M[kt][xi][c][o]; G^T M G then gives the taps. 4x fewer multiply-adds than the direct weight
/// gradient (F(2x2): 2.25x).
extension Winograd4 {
    /// Whether `call` can run this way: F(2x2)-eligible, output height and width multiples of 4.
    public static func isEligible(_ call: WeightGradientCall) -> Bool {
        Winograd.isEligible(call) && call.outputSize.h % 4 == 0 && call.outputSize.w % 4 == 0
    }

    /// Floats of one thread's product accumulator M: [kt][xi][c][outBlock * 16].
    public static func weightGradientAccumulatorCount(_ call: WeightGradientCall) -> Int {
        3 * 36 * call.inputChannels * call.outputBlocks * 16
    }

    /// Floats of one thread's transform scratch.
    public static func weightGradientScratchCount(_ call: WeightGradientCall) -> Int {
        call.outputSize.t * 36 * maxTilesPerItem * (call.inputChannels + call.outputBlocks * 16)
    }

    /// Adds G^T M G of the summed accumulator into `gradient` ([o][c][3][3][3], PyTorch order).
    public static func finishWeightGradient(_ call: WeightGradientCall, accumulator m: UnsafePointer<Float>,
                                            into gradient: UnsafeMutablePointer<Float>) {
        let cin = call.inputChannels, width = call.outputBlocks * 16
        // G^T, the transpose of the forward's G.
        let gt: [[Float]] = [[1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 0],
                             [0, -1.0 / 6, 1.0 / 6, 1.0 / 12, -1.0 / 12, 0],
                             [0, -1.0 / 6, -1.0 / 6, 1.0 / 6, 1.0 / 6, 1]]
        for kt in 0 ..< 3 {
            for c in 0 ..< cin {
                for o in 0 ..< call.outputChannels {
                    var x = InlineArray<36, Float>(repeating: 0)
                    for xi in 0 ..< 36 { x[xi] = m[((kt * 36 + xi) * cin + c) * width + o] }
                    // Rows first (3 x 6), then columns.
                    var rows = InlineArray<18, Float>(repeating: 0)
                    for kh in 0 ..< 3 {
                        for s in 0 ..< 6 {
                            var sum: Float = 0
                            for r in 0 ..< 6 { sum += gt[kh][r] * x[r * 6 + s] }
                            rows[kh * 6 + s] = sum
                        }
                    }
                    for kh in 0 ..< 3 {
                        for kw in 0 ..< 3 {
                            var sum: Float = 0
                            for s in 0 ..< 6 { sum += rows[kh * 6 + s] * gt[kw][s] }
                            gradient[(((o * cin + c) * 3 + kt) * 3 + kh) * 3 + kw] += sum
                        }
                    }
                }
            }
        }
    }
}

/// Adds work items `items` (as the F(4x4) forward's: bands of 4 rows x runs of tiles) of `call`
/// into the accumulator `m`; P input channels x 16 outputs per register block.
@inlinable @inline(__always)
public func winograd4WeightGradientItems<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, channels _: InlineArray<P, Int>.Type, _ call: WeightGradientCall, items: Range<Int>,
    scratch: UnsafeMutablePointer<Float>, accumulator m: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16 && P <= 16)
    let frames = call.outputSize.t, width = call.outputSize.w, cin = call.inputChannels, blocks = call.outputBlocks
    let tilesW = width / 4, runs = Winograd4.runsPerBand(width: width, blockTiles: P)
    let perItem = Winograd4.tilesPerItem(blockTiles: P)
    let v = scratch, d = scratch + frames * 36 * Winograd4.maxTilesPerItem * cin
    let rowWidth = blocks * 16
    for item in items {
        let band = item / runs, run = item % runs
        let j0 = run * perItem, tiles = min(perItem, tilesW - j0)
        winograd4InputTransform(V.self, input: call.input, strides: call.inputStrides, channels: cin, frames: frames,
                                band: band, firstTile: j0, tiles: tiles, into: v)
        winograd4GradientTransform(V.self, call, band: band, firstTile: j0, tiles: tiles, into: d)
        for kt in 0 ..< 3 {
            let firstT = max(0, 1 - kt), endT = min(frames, frames + 1 - kt)
            if firstT >= endT { continue }
            for xi in 0 ..< 36 {
                for block in 0 ..< blocks {
                    var c = 0
                    while c < cin {
                        let acc = m + ((kt * 36 + xi) * cin + c) * rowWidth + block * 16
                        if cin - c >= P {
                            winogradGradientProducts(V.self, InlineArray<P, Int>.self, positions: 36, v: v, d: d, cin: cin, rowWidth: rowWidth,
                                                     tiles: tiles, kt: kt, xi: xi, frames: firstT ..< endT, c: c, block: block, acc: acc)
                            c += P
                        } else if cin - c >= 2 {
                            winogradGradientProducts(V.self, InlineArray<2, Int>.self, positions: 36, v: v, d: d, cin: cin, rowWidth: rowWidth,
                                                     tiles: tiles, kt: kt, xi: xi, frames: firstT ..< endT, c: c, block: block, acc: acc)
                            c += 2
                        } else {
                            winogradGradientProducts(V.self, InlineArray<1, Int>.self, positions: 36, v: v, d: d, cin: cin, rowWidth: rowWidth,
                                                     tiles: tiles, kt: kt, xi: xi, frames: firstT ..< endT, c: c, block: block, acc: acc)
                            c += 1
                        }
                    }
                }
            }
        }
    }
}

/// A applied to one 4-vector of dY (A = the transpose of the forward's A^T), the 6 values at
/// `d`, `d + step`, ...
@inlinable @inline(__always)
func winograd4GradientColumn<V: SIMD & BitwiseCopyable>(_ g0: V, _ g1: V, _ g2: V, _ g3: V) -> InlineArray<6, V>
    where V.Scalar == Float {
    // A = [[1,0,0,0],[1,1,1,1],[1,-1,1,-1],[1,2,4,8],[1,-2,4,-8],[0,0,0,1]].
    let two: V = V(repeating: 2), four: V = V(repeating: 4), eight: V = V(repeating: 8)
    let even = g0 + four * g2, odd = two * g1 + eight * g3
    return [g0, g0 + g1 + g2 + g3, g0 - g1 + g2 - g3, even + odd, even - odd, g3]
}

/// D = A dY A^T of every frame's 4x4 dY tiles, stored [frame][xi][tile][outBlock * 16].
@inlinable @inline(__always)
func winograd4GradientTransform<V: SIMD & BitwiseCopyable>(
    _: V.Type, _ call: WeightGradientCall, band: Int, firstTile: Int, tiles: Int, into d: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    let s = call.gradOutputStrides, rowWidth = call.outputBlocks * 16
    for t in 0 ..< call.outputSize.t {
        for j in 0 ..< tiles {
            let corner = call.gradOutput + t * s.t + 4 * band * s.h + 4 * (firstTile + j) * s.w
            for block in 0 ..< call.outputBlocks {
                // Columns of the 4x4 tile first (A on the rows index), giving 6 x 4, then each of those rows.
                var cols = InlineArray<24, V>(repeating: V())
                for b in 0 ..< 4 {
                    let p = corner + b * s.w + block * 16
                    let r = winograd4GradientColumn(p.loadVector(V.self, at: 0), (p + s.h).loadVector(V.self, at: 0),
                                                    (p + 2 * s.h).loadVector(V.self, at: 0), (p + 3 * s.h).loadVector(V.self, at: 0))
                    for i in 0 ..< 6 { cols[i * 4 + b] = r[i] }
                }
                let base = d + (t * 36 * tiles + j) * rowWidth + block * 16, xiStep = tiles * rowWidth
                for i in 0 ..< 6 {
                    let r = winograd4GradientColumn(cols[i * 4], cols[i * 4 + 1], cols[i * 4 + 2], cols[i * 4 + 3])
                    for k in 0 ..< 6 { (base + (i * 6 + k) * xiStep).storeVector(r[k], at: 0) }
                }
            }
        }
    }
}
