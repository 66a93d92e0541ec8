/// One (accelerated) generalized-alternating-projection step on padded frames, rows
/// `rows` only (so callers can split the frame across cores):
///
///     yb = sum_t Phi_t x_t
///     y1 = y1 + (y - yb)                 (only when `accelerate`)
///     x_t = x_t + Phi_t (y1 - yb) / Phi_s
///
/// Without acceleration y1 must hold y itself. All planes use `layout`'s padded rows; `phi` and
/// `x` hold `frames` consecutive planes of `layout.bufferCount` floats. Padding must hold finite
/// values (Phi 0, Phi_s 1) so that it stays harmless.
@inlinable @inline(__always)
public func gapProjectionRows<V: SIMD & BitwiseCopyable>(
    _: V.Type, layout: TVFrameLayout, frames: Int, rows: Range<Int>,
    y: UnsafePointer<Float>, y1: UnsafeMutablePointer<Float>, phiSum: UnsafePointer<Float>,
    phi: UnsafePointer<Float>, x: UnsafeMutablePointer<Float>, accelerate: Bool
) where V.Scalar == Float {
    let plane = layout.bufferCount, vw = V.scalarCount, nv = layout.vectorsPerRow
    for r in rows {
        let base = r * layout.stride + 1
        for k in 0 ..< nv {
            let j = base + k * vw
            var yb = V()
            for t in 0 ..< frames {
                yb.addProduct(phi.loadVector(V.self, at: t * plane + j), x.loadVector(V.self, at: t * plane + j))
            }
            var target = y1.loadVector(V.self, at: j)
            if accelerate {
                target += y.loadVector(V.self, at: j) - yb
                y1.storeVector(target, at: j)
            }
            let residual = (target - yb) / phiSum.loadVector(V.self, at: j)
            for t in 0 ..< frames {
                let xt = x.loadVector(V.self, at: t * plane + j)
                x.storeVector(xt.addingProduct(phi.loadVector(V.self, at: t * plane + j), residual), at: t * plane + j)
            }
        }
    }
}
