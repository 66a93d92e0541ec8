import KernelCore
import SCICore

/// Accelerated GAP with a per-frame TV denoiser (REFERENCE.md section 8), the classical baseline
/// that needs no training. Defaults follow the public numpy GAP-TV the protocol was measured
/// with: 40 iterations, TV weight 0.3, 5 Chambolle iterations per frame, tolerance 2e-4.
public struct GAPTV: Reconstructor {
    public var iterations: Int
    public var tvWeight: Float
    public var tvIterations: Int
    public var tvTolerance: Float
    public var accelerate: Bool
    public var kernels: KernelSet

    public init(iterations: Int = 40, tvWeight: Float = 0.3, tvIterations: Int = 5, tvTolerance: Float = 2e-4,
                accelerate: Bool = true, kernels: KernelSet = .active) {
        self.iterations = iterations
        self.tvWeight = tvWeight
        self.tvIterations = tvIterations
        self.tvTolerance = tvTolerance
        self.accelerate = accelerate
        self.kernels = kernels
    }

    public var name: String { "gaptv" }
    public var requiredFrames: Int? { nil }

    public func reconstruct(_ snapshot: Snapshot, mask: MaskStack, context: ReconstructionContext) throws -> Video {
        guard snapshot.height == mask.height, snapshot.width == mask.width else {
            throw SCIError("measurement is \(snapshot.height)x\(snapshot.width) but the mask is \(mask.height)x\(mask.width)")
        }
        guard iterations > 0, tvIterations > 0, tvWeight > 0 else {
            throw SCIError("GAP-TV needs iterations > 0, tv_iterations > 0 and tv_weight > 0")
        }
        let t = mask.frames, h = mask.height, w = mask.width
        let layout = TVFrameLayout(height: h, width: w, vectorWidth: kernels.vectorWidth)
        let plane = layout.bufferCount

        // Padded copies: Phi and x as T planes; y, y1, Phi_s and the column mask as one plane.
        var phi = [Float](repeating: 0, count: t * plane)
        var x = [Float](repeating: 0, count: t * plane)
        var y = [Float](repeating: 0, count: plane)
        var phiSum = [Float](repeating: 1, count: plane)
        var validMask = [Float](repeating: 0, count: layout.stride)
        for c in 0 ..< w { validMask[c + 1] = 1 }
        for r in 0 ..< h {
            for c in 0 ..< w {
                let p = layout.index(r, c), i = r * w + c
                y[p] = snapshot.pixels[i]
                phiSum[p] = mask.phiSum[i]
                for f in 0 ..< t {
                    let m = mask.values[f * h * w + i]
                    phi[f * plane + p] = m
                    x[f * plane + p] = m * snapshot.pixels[i] / mask.phiSum[i] // x0 = Phi^T (y / Phi_s)
                }
            }
        }
        var y1 = accelerate ? [Float](repeating: 0, count: plane) : y
        var denoised = [Float](repeating: 0, count: t * plane)
        // Per-frame Chambolle scratch (p0, p1), one pair per frame so frames run in parallel.
        var scratch = [Float](repeating: 0, count: 2 * t * plane)

        let kernels = self.kernels, accelerate = self.accelerate
        let weight = tvWeight, tvIters = tvIterations, eps = tvTolerance
        let rowChunks = min(Parallel.coreCount, h)
        for iteration in 0 ..< iterations {
            try context.cancellation.check()
            y.withUnsafeBufferPointer { yP in
                y1.withUnsafeMutableBufferPointer { y1P in
                    phiSum.withUnsafeBufferPointer { sP in
                        phi.withUnsafeBufferPointer { phiP in
                            x.withUnsafeMutableBufferPointer { xP in
                                Parallel.forEach(rowChunks) { chunk in
                                    let rows = (chunk * h / rowChunks) ..< ((chunk + 1) * h / rowChunks)
                                    kernels.gapProjectionRows(layout: layout, frames: t, rows: rows, y: yP.baseAddress!,
                                                              y1: y1P.baseAddress!, phiSum: sP.baseAddress!,
                                                              phi: phiP.baseAddress!, x: xP.baseAddress!, accelerate: accelerate)
                                }
                            }
                        }
                    }
                }
            }
            x.withUnsafeBufferPointer { xP in
                denoised.withUnsafeMutableBufferPointer { dP in
                    scratch.withUnsafeMutableBufferPointer { sP in
                        validMask.withUnsafeBufferPointer { mP in
                            Parallel.forEach(t) { f in
                                _ = kernels.tvChambolleFrame(
                                    layout: layout, image: xP.baseAddress! + f * plane, out: dP.baseAddress! + f * plane,
                                    p0: sP.baseAddress! + 2 * f * plane, p1: sP.baseAddress! + (2 * f + 1) * plane,
                                    validMask: mP.baseAddress!, weight: weight, maxIterations: tvIters, eps: eps)
                            }
                        }
                    }
                }
            }
            swap(&x, &denoised)
            context.progress(Double(iteration + 1) / Double(iterations))
        }

        var video = Video(zeros: t, height: h, width: w)
        for f in 0 ..< t {
            for r in 0 ..< h {
                for c in 0 ..< w { video.pixels[(f * h + r) * w + c] = x[f * plane + layout.index(r, c)] }
            }
        }
        return video
    }
}
