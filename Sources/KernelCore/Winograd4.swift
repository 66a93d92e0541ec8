/// Winograd F(4x4, 3x3) (see WinogradTiling) for 3x3x3 "same" layers whose output height and
/// width are multiples of 4: 36 elementwise products per 4x4 output tile instead of 144
/// multiply-adds (4x fewer; F(2x2) saves 2.25x), summed over the 3 taps in time. Transforms B, G
/// and A are the F(4x4, 3x3) ones of Lavin & Gray (2016), interpolation points 0, +-1, +-2 and
/// infinity. The weights are transformed per call from the layer's packed direct-kernel weights
/// (`transformWeights`), so layers keep no second copy: training's memory bar counts every
/// stored copy, and the transform costs well under 1% of the convolution.
public enum Winograd4: WinogradTiling {
    @inlinable public static var tileSide: Int { 4 }
    /// About 8 tiles (32 pixels), so that an item's transformed input stays in L2.
    @inlinable public static var itemTiles: Int { 8 }
    /// G^T, the transpose of the G in `interpolate`.
    public static let filterTransposed: [[Float]] = [[1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 0],
                                                     [0, -1.0 / 6, 1.0 / 6, 1.0 / 12, -1.0 / 12, 0],
                                                     [0, -1.0 / 6, -1.0 / 6, 1.0 / 6, 1.0 / 6, 1]]

    /// Whether `call`, already a Winograd F(2x2) call, can run as F(4x4): output height and width
    /// multiples of 4.
    public static func isEligible(_ call: ConvCall) -> Bool {
        call.usesWinograd && call.outputSize.h % 4 == 0 && call.outputSize.w % 4 == 0
    }

    /// Whether a weight-gradient call can run this way: F(2x2)-eligible, output height and width
    /// multiples of 4.
    public static func isEligible(_ call: WeightGradientCall) -> Bool {
        Winograd.isEligible(call) && call.outputSize.h % 4 == 0 && call.outputSize.w % 4 == 0
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

    /// G applied to one 3-vector g (a polynomial g0 + g1 x + g2 x^2): its values at the points
    /// 0, 1, -1, 2, -2 (scaled as A^T and B^T expect) and its leading coefficient (the point at infinity).
    @inline(__always)
    static func interpolate(_ g0: SIMD16<Float>, _ g1: SIMD16<Float>, _ g2: SIMD16<Float>) -> InlineArray<6, SIMD16<Float>> {
        let even = g0 + g2
        let quarter = 0.25 * g0 + g2
        return [0.25 * g0, (even + g1) * (-1 / 6), (even - g1) * (-1 / 6),
                (quarter + 0.5 * g1) * (1 / 6), (quarter - 0.5 * g1) * (1 / 6), g2]
    }

    /// B^T applied to one 6-vector (a row or column of an input tile), in place.
    @inlinable @inline(__always)
    static func inputRows<V: SIMD & BitwiseCopyable>(_ d: inout InlineArray<36, V>, _ i0: Int, _ step: Int) where V.Scalar == Float {
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

    @inlinable @inline(__always)
    public static func inputTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int, into v: UnsafeMutablePointer<Float>, xiStride: Int
    ) where V.Scalar == Float {
        var d = InlineArray<36, V>(repeating: V())
        for r in 0 ..< 6 {
            for c in 0 ..< 6 { d[r * 6 + c] = (corner + r * rowStride + c * pixelStride).loadVector(V.self, at: 0) }
        }
        for c in 0 ..< 6 { inputRows(&d, c, 6) }
        for r in 0 ..< 6 { inputRows(&d, r * 6, 1) }
        for xi in 0 ..< 36 { (v + xi * xiStride).storeVector(d[xi], at: 0) }
    }

    @inlinable @inline(__always)
    public static func outputTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, m mt: UnsafeMutablePointer<Float>, xiStride: Int, bias: V, into y: UnsafeMutablePointer<Float>
    ) where V.Scalar == Float {
        // A^T = [[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]] on the columns (r, 4 x 6),
        // then on the rows of r.
        let two: V = V(repeating: 2), four: V = V(repeating: 4), eight: V = V(repeating: 8)
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
    }

    /// A applied to one 4-vector of dY (A is the transpose of the forward's A^T).
    @inlinable @inline(__always)
    static func gradientColumn<V: SIMD & BitwiseCopyable>(_ g0: V, _ g1: V, _ g2: V, _ g3: V) -> InlineArray<6, V>
        where V.Scalar == Float {
        // A = [[1,0,0,0],[1,1,1,1],[1,-1,1,-1],[1,2,4,8],[1,-2,4,-8],[0,0,0,1]].
        let two: V = V(repeating: 2), four: V = V(repeating: 4), eight: V = V(repeating: 8)
        let even = g0 + four * g2, odd = two * g1 + eight * g3
        return [g0, g0 + g1 + g2 + g3, g0 - g1 + g2 - g3, even + odd, even - odd, g3]
    }

    /// D = A dY A^T: the tile's columns first (A on the row index, giving 6 x 4), then each of those rows.
    @inlinable @inline(__always)
    public static func gradientTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int, into d: UnsafeMutablePointer<Float>, xiStride: Int
    ) where V.Scalar == Float {
        var cols = InlineArray<24, V>(repeating: V())
        for b in 0 ..< 4 {
            let p = corner + b * pixelStride
            let r = gradientColumn(p.loadVector(V.self, at: 0), (p + rowStride).loadVector(V.self, at: 0),
                                   (p + 2 * rowStride).loadVector(V.self, at: 0), (p + 3 * rowStride).loadVector(V.self, at: 0))
            for i in 0 ..< 6 { cols[i * 4 + b] = r[i] }
        }
        for i in 0 ..< 6 {
            let r = gradientColumn(cols[i * 4], cols[i * 4 + 1], cols[i * 4 + 2], cols[i * 4 + 3])
            for k in 0 ..< 6 { (d + (i * 6 + k) * xiStride).storeVector(r[k], at: 0) }
        }
    }
}
