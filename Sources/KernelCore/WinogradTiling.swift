/// The Winograd variants F(m x m, 3x3) the kernels run for 3x3x3 stride-1 "same" layers
/// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): `Winograd` (m = 2,
/// 16 positions) and `Winograd4` (m = 4, 36 positions). A variant supplies its tile size and its
/// transforms; the work split, the register-blocked products, the epilogue and the weight
/// gradient's accumulation are shared (`winogradConvItems`, `winogradWeightGradientItems`).
///
/// Data flow of one forward work item (one band of m output rows, a run of tiles, all frames):
/// 1. input transform V = B^T d B of every (m+2)x(m+2) input tile of every frame, into scratch
///    laid out [frame][xi][tile][c] (xi = one of the Winograd positions);
/// 2. for each output frame, 16-channel block and P tiles: for each xi, sum over the taps kt and
///    channels c of V[t + kt - 1][xi][tile][c] * U[xi][kt][c][o], with the direct convolution's
///    register-blocked inner loop (P tiles x 16 outputs, one broadcast per tile and channel);
/// 3. output transform Y = A^T M A, bias, then the direct kernel's epilogue.
/// The frames just outside the clip are the activation's zero padding: their taps are skipped.
public protocol WinogradTiling {
    /// Output tile side m (the input tile is m + 2).
    static var tileSide: Int { get }
    /// Tiles per work item to aim at: an item's transformed input should stay in L2.
    static var itemTiles: Int { get }
    /// G^T, 3 x (m + 2): the weight gradient's 3x3 taps are G^T M G.
    static var filterTransposed: [[Float]] { get }

    /// V = B^T d B of one input tile, 16 channels: d's rows at `corner + r * rowStride`, its pixels
    /// `pixelStride` apart; V's positions stored at `v`, `v + xiStride`, ...
    static func inputTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int, into v: UnsafeMutablePointer<Float>, xiStride: Int
    ) where V.Scalar == Float

    /// Y = A^T M A + bias for one tile: M's positions at `m`, `m + xiStride`, ...; Y written
    /// row-major, m x m vectors of 16, to `y`.
    static func outputTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, m: UnsafeMutablePointer<Float>, xiStride: Int, bias: V, into y: UnsafeMutablePointer<Float>
    ) where V.Scalar == Float

    /// D = A dY A^T of one m x m tile of dY, 16 outputs: rows at `corner + r * rowStride`, pixels
    /// `pixelStride` apart; D's positions stored at `d`, `d + xiStride`, ...
    static func gradientTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int, into d: UnsafeMutablePointer<Float>, xiStride: Int
    ) where V.Scalar == Float
}

extension WinogradTiling {
    /// Winograd positions per tile, (m + 2)^2.
    @inlinable public static var positions: Int { (tileSide + 2) * (tileSide + 2) }

    /// The most tiles an item holds for any block size the kernels use (P <= 2 itemTiles).
    @inlinable public static var maxTilesPerItem: Int { 2 * itemTiles }

    /// Tiles per work item for P-tile register blocks: a whole number of blocks (so only a row's
    /// last item has a partial block), about itemTiles.
    @inlinable
    public static func tilesPerItem(blockTiles p: Int) -> Int { p * ((itemTiles + p - 1) / p) }

    @inlinable
    static func runsPerBand(width: Int, blockTiles p: Int) -> Int {
        let j = tilesPerItem(blockTiles: p)
        return (width / tileSide + j - 1) / j
    }

    /// Work items of a call with P-tile blocks: bands of m output rows times runs of tiles.
    public static func itemCount(outputSize: (t: Int, h: Int, w: Int), blockTiles p: Int) -> Int {
        (outputSize.h / tileSide) * runsPerBand(width: outputSize.w, blockTiles: p)
    }

    /// Floats of forward scratch one thread needs (transformed input and products).
    public static func scratchCount(inputChannels: Int, outputSize: (t: Int, h: Int, w: Int)) -> Int {
        outputSize.t * positions * maxTilesPerItem * (inputChannels + 16)
    }

    /// Floats of one thread's weight-gradient product accumulator M: [kt][xi][c][outBlock * 16].
    public static func weightGradientAccumulatorCount(_ call: WeightGradientCall) -> Int {
        3 * positions * call.inputChannels * call.outputBlocks * 16
    }

    /// Floats of one thread's weight-gradient transform scratch.
    public static func weightGradientScratchCount(_ call: WeightGradientCall) -> Int {
        call.outputSize.t * positions * maxTilesPerItem * (call.inputChannels + call.outputBlocks * 16)
    }

    /// Adds G^T M G of the summed accumulator into `gradient` ([o][c][3][3][3], PyTorch order),
    /// for input channels `channels` (disjoint ranges may run on different threads).
    public static func finishWeightGradient(_ call: WeightGradientCall, accumulator m: UnsafePointer<Float>,
                                            into gradient: UnsafeMutablePointer<Float>, channels: Range<Int>) {
        let cin = call.inputChannels, width = call.outputBlocks * 16, side = tileSide + 2, n = positions
        let gt = filterTransposed
        var x = [Float](repeating: 0, count: n), rows = [Float](repeating: 0, count: 3 * side)
        for kt in 0 ..< 3 {
            for c in channels {
                for o in 0 ..< call.outputChannels {
                    for xi in 0 ..< n { x[xi] = m[((kt * n + xi) * cin + c) * width + o] }
                    // G^T on the rows (3 x side), then G on the columns.
                    for kh in 0 ..< 3 {
                        for s in 0 ..< side {
                            var sum: Float = 0
                            for r in 0 ..< side where gt[kh][r] != 0 { sum += gt[kh][r] * x[r * side + s] }
                            rows[kh * side + s] = sum
                        }
                    }
                    for kh in 0 ..< 3 {
                        for kw in 0 ..< 3 {
                            var sum: Float = 0
                            for s in 0 ..< side where gt[kw][s] != 0 { sum += rows[kh * side + s] * gt[kw][s] }
                            gradient[(((o * cin + c) * 3 + kt) * 3 + kh) * 3 + kw] += sum
                        }
                    }
                }
            }
        }
    }
}

/// Runs work items `items` of a Winograd-eligible `call` as variant W with transformed weights
/// `u` ([xi][kt][outBlock][c][16]), P tiles per register block; `scratch` holds
/// W.scratchCount floats.
@inlinable @inline(__always)
public func winogradConvItems<W: WinogradTiling, V: SIMD & BitwiseCopyable, let P: Int>(
    _: W.Type, _: V.Type, tiles _: InlineArray<P, Int>.Type, _ call: ConvCall, weights u: UnsafePointer<Float>,
    items: Range<Int>, scratch: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16 && P <= 2 * W.itemTiles, "Winograd kernels work on 16-channel blocks and at most 2 itemTiles tiles")
    let frames = call.outputSize.t, width = call.outputSize.w, positions = W.positions
    let tilesW = width / W.tileSide, runs = W.runsPerBand(width: width, blockTiles: P)
    let perItem = W.tilesPerItem(blockTiles: P)
    let v = scratch, m = scratch + frames * positions * W.maxTilesPerItem * call.inputChannels
    for item in items {
        let band = item / runs, run = item % runs
        let j0 = run * perItem, tiles = min(perItem, tilesW - j0)
        winogradInputTransform(W.self, V.self, input: call.input, strides: call.inputStrides, channels: call.inputChannels,
                               frames: frames, band: band, firstTile: j0, tiles: tiles, into: v)
        for block in 0 ..< call.outputBlocks {
            // xi outermost: its weights (3 taps x C x 16) and its slice of V stay in L1 while every
            // frame and tile uses them; the products go to M [xi][frame][tile][16].
            for xi in 0 ..< positions {
                for t in 0 ..< frames {
                    if tiles < P {
                        for j in 0 ..< tiles {
                            winogradProducts(V.self, InlineArray<1, Int>.self, call, weights: u, positions: positions, v: v, m: m,
                                             tiles: tiles, xi: xi, t: t, start: j, block: block)
                        }
                        continue
                    }
                    var j = 0
                    while j < tiles {
                        let start = min(j, tiles - P)
                        winogradProducts(V.self, InlineArray<P, Int>.self, call, weights: u, positions: positions, v: v, m: m,
                                         tiles: tiles, xi: xi, t: t, start: start, block: block)
                        j = start + P
                    }
                }
            }
            winogradOutputTransform(W.self, V.self, call, m: m, tiles: tiles, band: band, firstTile: j0, block: block)
        }
    }
}

/// V = B^T d B for every frame and tile of an item, 16 channels at a time, stored
/// [frame][xi][tile][c]. Padded input frame f + 1 is clip frame f; tile (band, j) reads rows
/// m band ..< m band + m + 2.
@inlinable @inline(__always)
func winogradInputTransform<W: WinogradTiling, V: SIMD & BitwiseCopyable>(
    _: W.Type, _: V.Type, input: UnsafePointer<Float>, strides s: (t: Int, h: Int, w: Int), channels cin: Int, frames: Int,
    band: Int, firstTile: Int, tiles: Int, into v: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    let side = W.tileSide, positions = W.positions
    for f in 0 ..< frames {
        let frame = input + (f + 1) * s.t + side * band * s.h
        for j in 0 ..< tiles {
            let corner = frame + side * (firstTile + j) * s.w
            for cb in stride(from: 0, to: cin, by: 16) {
                W.inputTile(V.self, corner: corner + cb, rowStride: s.h, pixelStride: s.w,
                            into: v + (f * positions * tiles + j) * cin + cb, xiStride: tiles * cin)
            }
        }
    }
}

/// D = A dY A^T of every frame's m x m dY tiles of an item, stored [frame][xi][tile][outBlock * 16].
@inlinable @inline(__always)
func winogradGradientTransform<W: WinogradTiling, V: SIMD & BitwiseCopyable>(
    _: W.Type, _: V.Type, _ call: WeightGradientCall, band: Int, firstTile: Int, tiles: Int, into d: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    let s = call.gradOutputStrides, rowWidth = call.outputBlocks * 16, side = W.tileSide, positions = W.positions
    for t in 0 ..< call.outputSize.t {
        for j in 0 ..< tiles {
            let corner = call.gradOutput + t * s.t + side * band * s.h + side * (firstTile + j) * s.w
            for block in 0 ..< call.outputBlocks {
                W.gradientTile(V.self, corner: corner + block * 16, rowStride: s.h, pixelStride: s.w,
                               into: d + (t * positions * tiles + j) * rowWidth + block * 16, xiStride: tiles * rowWidth)
            }
        }
    }
}

/// M[xi][t][start ..< start + P] = sum over taps kt and channels c of V[t + kt - 1][xi][tile][c] *
/// U[xi][kt][c][block outputs], with the direct kernel's register-blocked loop.
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
/// direct kernel's epilogue.
@inlinable @inline(__always)
func winogradOutputTransform<W: WinogradTiling, V: SIMD & BitwiseCopyable>(
    _: W.Type, _: V.Type, _ call: ConvCall, m: UnsafeMutablePointer<Float>, tiles: Int, band: Int, firstTile: Int, block: Int
) where V.Scalar == Float {
    let frames = call.outputSize.t, side = W.tileSide
    let lanes = min(16, call.outputChannels - block * 16)
    let slope = call.leakySlope ?? 1
    let bias: V = call.addBias ? call.bias.loadVector(V.self, at: block * 16) : V()
    let os = call.outputStrides
    let xiStride = frames * tiles * 16
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * 16) { buffer in
        let y = buffer.baseAddress!
        for t in 0 ..< frames {
            for j in 0 ..< tiles {
                W.outputTile(V.self, m: m + (t * tiles + j) * 16, xiStride: xiStride, bias: bias, into: y)
                let tile = firstTile + j
                for q in 0 ..< side * side {
                    let (a, b) = (q / side, q % side)
                    let o = call.output + t * os.t + (side * band + a) * os.h + (side * tile + b) * os.w + block * 16
                    applyEpilogue(call.epilogue, y + q * 16, to: o, lanes: lanes, slope: slope)
                }
            }
        }
    }
}

/// Adds work items `items` (as the forward's: bands of m rows x runs of tiles) of `call` into
/// the accumulator `m` ([kt][xi][c][outBlock * 16]); P input channels x 16 outputs per register
/// block. Summed over tiles, frames and channels, the elementwise products
/// (A dY A^T) .* (B^T x B) are `positions` matrix products per tap.
@inlinable @inline(__always)
public func winogradWeightGradientItems<W: WinogradTiling, V: SIMD & BitwiseCopyable, let P: Int>(
    _: W.Type, _: V.Type, channels _: InlineArray<P, Int>.Type, _ call: WeightGradientCall, items: Range<Int>,
    scratch: UnsafeMutablePointer<Float>, accumulator m: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    precondition(V.scalarCount == 16 && P <= 2 * W.itemTiles)
    let frames = call.outputSize.t, width = call.outputSize.w, cin = call.inputChannels, blocks = call.outputBlocks
    let positions = W.positions
    let tilesW = width / W.tileSide, runs = W.runsPerBand(width: width, blockTiles: P)
    let perItem = W.tilesPerItem(blockTiles: P)
    let v = scratch, d = scratch + frames * positions * W.maxTilesPerItem * cin
    let rowWidth = blocks * 16
    for item in items {
        let band = item / runs, run = item % runs
        let j0 = run * perItem, tiles = min(perItem, tilesW - j0)
        winogradInputTransform(W.self, V.self, input: call.input, strides: call.inputStrides, channels: cin, frames: frames,
                               band: band, firstTile: j0, tiles: tiles, into: v)
        winogradGradientTransform(W.self, V.self, call, band: band, firstTile: j0, tiles: tiles, into: d)
        for kt in 0 ..< 3 {
            let firstT = max(0, 1 - kt), endT = min(frames, frames + 1 - kt)
            if firstT >= endT { continue }
            for xi in 0 ..< positions {
                for block in 0 ..< blocks {
                    var c = 0
                    while c < cin {
                        let acc = m + ((kt * positions + xi) * cin + c) * rowWidth + block * 16
                        if cin - c >= P {
                            winogradGradientProducts(V.self, InlineArray<P, Int>.self, positions: positions, v: v, d: d, cin: cin,
                                                     rowWidth: rowWidth, tiles: tiles, kt: kt, xi: xi, frames: firstT ..< endT,
                                                     c: c, block: block, acc: acc)
                            c += P
                        } else if cin - c >= 2 {
                            winogradGradientProducts(V.self, InlineArray<2, Int>.self, positions: positions, v: v, d: d, cin: cin,
                                                     rowWidth: rowWidth, tiles: tiles, kt: kt, xi: xi, frames: firstT ..< endT,
                                                     c: c, block: block, acc: acc)
                            c += 2
                        } else {
                            winogradGradientProducts(V.self, InlineArray<1, Int>.self, positions: positions, v: v, d: d, cin: cin,
                                                     rowWidth: rowWidth, tiles: tiles, kt: kt, xi: xi, frames: firstT ..< endT,
                                                     c: c, block: block, acc: acc)
                            c += 1
                        }
                    }
                }
            }
        }
    }
}

/// acc[c ..< c + P][block outputs] += sum over frames t and tiles of V[t + kt - 1][xi][tile][c + p] * D[t][xi][tile][outputs].
@inlinable @inline(__always)
func winogradGradientProducts<V: SIMD & BitwiseCopyable, let P: Int>(
    _: V.Type, _: InlineArray<P, Int>.Type, positions: Int, v: UnsafeMutablePointer<Float>, d: UnsafeMutablePointer<Float>, cin: Int,
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
