/// Winograd F(2x2, 3x3) (see WinogradTiling): the 3x3 spatial part of each temporal tap becomes
/// 16 elementwise products per 2x2 output tile instead of 36 multiply-adds (2.25x fewer). Used
/// where a layer's output height or width is even but not a multiple of 4 (else Winograd4), and
/// for every eligible layer with `REVSCI_WINOGRAD4=0`. Its weights are transformed once, when a
/// layer is built (`transformWeights`), and stored beside the packed ones.
public enum Winograd: WinogradTiling {
    @inlinable public static var tileSide: Int { 2 }
    /// About 16 tiles, so that an item's transformed input stays in L2.
    @inlinable public static var itemTiles: Int { 16 }
    /// G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]].
    public static let filterTransposed: [[Float]] = [[1, 0.5, 0.5, 0], [0, 0.5, -0.5, 0], [0, 0.5, 0.5, 1]]

    /// Whether `call` can run as Winograd: 3x3x3 kernel, stride 1, even output height and width,
    /// input channels in whole 16-channel blocks.
    public static func isEligible(kernel: (t: Int, h: Int, w: Int), stride: (t: Int, h: Int, w: Int),
                                  inputChannels: Int, outputSize: (t: Int, h: Int, w: Int)) -> Bool {
        kernel == (3, 3, 3) && stride == (1, 1, 1) && inputChannels % 16 == 0
            && outputSize.h % 2 == 0 && outputSize.w % 2 == 0 && outputSize.h > 0 && outputSize.w > 0 && outputSize.t > 0
    }

    /// Whether a weight-gradient call can run this way (as the forward: 3x3x3, stride 1, even sizes,
    /// 16-channel input blocks).
    public static func isEligible(_ call: WeightGradientCall) -> Bool {
        isEligible(kernel: call.kernel, stride: call.stride, inputChannels: call.inputChannels, outputSize: call.outputSize)
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

    @inlinable @inline(__always)
    public static func inputTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int, into v: UnsafeMutablePointer<Float>, xiStride: Int
    ) where V.Scalar == Float {
        var d = InlineArray<16, V>(repeating: V())
        for r in 0 ..< 4 {
            for c in 0 ..< 4 { d[r * 4 + c] = (corner + r * rowStride + c * pixelStride).loadVector(V.self, at: 0) }
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
        for xi in 0 ..< 16 { (v + xi * xiStride).storeVector(d[xi], at: 0) }
    }

    @inlinable @inline(__always)
    public static func outputTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, m mt: UnsafeMutablePointer<Float>, xiStride: Int, bias: V, into y: UnsafeMutablePointer<Float>
    ) where V.Scalar == Float {
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
    }

    /// D = A dY A^T with A = [[1,0],[1,1],[1,-1],[0,-1]].
    @inlinable @inline(__always)
    public static func gradientTile<V: SIMD & BitwiseCopyable>(
        _: V.Type, corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int, into d: UnsafeMutablePointer<Float>, xiStride: Int
    ) where V.Scalar == Float {
        let g00 = corner.loadVector(V.self, at: 0), g01 = (corner + pixelStride).loadVector(V.self, at: 0)
        let g10 = (corner + rowStride).loadVector(V.self, at: 0), g11 = (corner + rowStride + pixelStride).loadVector(V.self, at: 0)
        // Rows: [g0, g0 + g1, g0 - g1, -g1] of the two columns; then the same along each row.
        gradientRow(V.self, g00, g01, into: d, xiStep: xiStride)
        gradientRow(V.self, g00 + g10, g01 + g11, into: d + 4 * xiStride, xiStep: xiStride)
        gradientRow(V.self, g00 - g10, g01 - g11, into: d + 8 * xiStride, xiStep: xiStride)
        gradientRow(V.self, V() - g10, V() - g11, into: d + 12 * xiStride, xiStep: xiStride)
    }

    /// One row of D: [a, a + b, a - b, -b] at four consecutive xi.
    @inlinable @inline(__always)
    static func gradientRow<V: SIMD & BitwiseCopyable>(_: V.Type, _ a: V, _ b: V, into d: UnsafeMutablePointer<Float>, xiStep: Int)
        where V.Scalar == Float {
        d.storeVector(a, at: 0)
        (d + xiStep).storeVector(a + b, at: 0)
        (d + 2 * xiStep).storeVector(a - b, at: 0)
        (d + 3 * xiStep).storeVector(V() - b, at: 0)
    }
}
