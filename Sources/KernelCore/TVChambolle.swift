/// Chambolle's projection algorithm for 2-D total-variation denoising of one frame, the way
/// scikit-image's `denoise_tv_chambolle` runs it (the GAP-TV baseline depends on these details):
///
///     d = div(p) (zero at iteration 0), out = image + d
///     g = forward differences of out (zero on the last row/column)
///     E = (sum d^2 + weight * sum |g|) / size
///     p = (p - tau g) / (1 + tau/weight |g|),  tau = 1/4
///     stop when |E_prev - E| < eps * E_0; the result is the last `out`.
///
/// The frame lives in padded rows (`TVFrameLayout`) so that the vector loop needs no edge cases:
/// column -1 of p1 stays zero, column W of `out` mirrors column W-1 (so its difference is zero),
/// and `validMask` (1 on real columns, 0 on padding) keeps padding out of the energy.
public struct TVFrameLayout: Sendable {
    public let height: Int
    public let width: Int
    /// Floats per padded row: column -1, the vectors covering columns 0 ..< width, and one more
    /// vector so that no store of a row reaches the next row's column -1.
    public let stride: Int
    public let vectorWidth: Int

    public init(height: Int, width: Int, vectorWidth: Int) {
        self.height = height
        self.width = width
        self.vectorWidth = vectorWidth
        self.stride = ((width + vectorWidth - 1) / vectorWidth + 1) * vectorWidth
    }

    /// Index of (row, col) in a padded buffer; column -1 is at row start.
    @inlinable public func index(_ row: Int, _ col: Int) -> Int { row * stride + col + 1 }

    /// Floats per padded buffer (one extra row keeps the last vector load in bounds).
    public var bufferCount: Int { (height + 1) * stride }

    /// Number of vectors that cover columns 0 ..< width.
    public var vectorsPerRow: Int { (width + vectorWidth - 1) / vectorWidth }
}

/// Denoises one padded frame in place of `out`. `image`, `out`, `p0`, `p1` and `validMask` are
/// padded buffers of `layout.bufferCount` floats; p0/p1 are scratch and are zeroed here.
/// Returns the number of iterations run.
@inlinable @inline(__always)
public func tvChambolleFrame<V: SIMD & BitwiseCopyable>(
    _: V.Type, layout: TVFrameLayout, image: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
    p0: UnsafeMutablePointer<Float>, p1: UnsafeMutablePointer<Float>, validMask: UnsafePointer<Float>,
    weight: Float, maxIterations: Int, eps: Float
) -> Int where V.Scalar == Float {
    let h = layout.height, w = layout.width, s = layout.stride, nv = layout.vectorsPerRow
    let vw = V.scalarCount
    p0.initialize(repeating: 0, count: layout.bufferCount)
    p1.initialize(repeating: 0, count: layout.bufferCount)
    let tau: Float = 0.25
    let tauV = V(repeating: tau)
    let normScale = V(repeating: tau / weight)
    let one = V(repeating: 1)
    let size = Float(h * w)
    var eInit: Float = 0, ePrev: Float = 0

    // out row r = image + div(p) for that row; returns sum of d^2 over real columns.
    @inline(__always) func computeOutRow(_ r: Int) -> Float {
        var acc = V()
        let base = r * s + 1
        for k in 0 ..< nv {
            let j = base + k * vw
            var d = -(p0.loadVector(V.self, at: j) + p1.loadVector(V.self, at: j)) + p1.loadVector(V.self, at: j - 1)
            if r > 0 { d += p0.loadVector(V.self, at: j - s) }
            out.storeVector(image.loadVector(V.self, at: j) + d, at: j)
            let m = validMask.loadVector(V.self, at: k * vw + 1)
            acc.addProduct(d * m, d)
        }
        out[base + w] = out[base + w - 1] // zero difference across the right edge
        return acc.sum()
    }

    var iteration = 0
    while iteration < maxIterations {
        var energy = computeOutRow(0)
        let last = iteration == maxIterations - 1
        if last {
            // The result is this iteration's `out`; the p update would only feed the stopping test.
            for r in 1 ..< h { energy += computeOutRow(r) }
            iteration += 1
            break
        }
        var normSum = V()
        for r in 0 ..< h {
            if r + 1 < h { energy += computeOutRow(r + 1) }
            let base = r * s + 1
            for k in 0 ..< nv {
                let j = base + k * vw
                let o = out.loadVector(V.self, at: j)
                let g0 = r + 1 < h ? out.loadVector(V.self, at: j + s) - o : V()
                let g1 = out.loadVector(V.self, at: j + 1) - o
                var norm = (g0 * g0).addingProduct(g1, g1).squareRoot()
                normSum.addProduct(norm, validMask.loadVector(V.self, at: k * vw + 1))
                norm = one.addingProduct(norm, normScale)
                p0.storeVector((p0.loadVector(V.self, at: j) - tauV * g0) / norm, at: j)
                p1.storeVector((p1.loadVector(V.self, at: j) - tauV * g1) / norm, at: j)
            }
        }
        let e = (energy + weight * normSum.sum()) / size
        iteration += 1
        if iteration == 1 {
            eInit = e
            ePrev = e
        } else if abs(ePrev - e) < eps * eInit {
            // Converged: skimage returns the `out` computed at the start of this iteration.
            break
        } else {
            ePrev = e
        }
    }
    return iteration
}
