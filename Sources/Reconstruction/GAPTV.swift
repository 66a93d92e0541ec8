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
        var loop = GAPLoop(snapshot: snapshot, mask: mask, accelerate: accelerate, kernels: kernels)
        for iteration in 0 ..< iterations {
            try context.cancellation.check()
            loop.project()
            loop.denoiseTV(weight: tvWeight, iterations: tvIterations, tolerance: tvTolerance)
            context.progress(Double(iteration + 1) / Double(iterations))
        }
        return try loop.video()
    }
}

/// The accelerated GAP iteration (REFERENCE.md sections 8 and 9) on padded frame buffers, with
/// the denoising step left to the caller: GAP-TV calls `denoiseTV`, PnP-FFDNet replaces the
/// frames through `withFrames`. The state (x and the accelerated y1) carries across calls, so
/// a loop can change denoiser midway (PnP's warm start continues from GAP-TV's iterations).
public struct GAPLoop {
    public let frames: Int, height: Int, width: Int
    let layout: TVFrameLayout
    let accelerate: Bool
    let kernels: KernelSet
    var phi: [Float], x: [Float], y: [Float], y1: [Float], phiSum: [Float]
    var denoised: [Float], scratch: [Float], validMask: [Float]

    /// Where the loop starts: `normalized` x0 = Phi^T (y ./ Phi_s) (REFERENCE.md section 8), or
    /// `adjoint` x0 = Phi^T y, as the public PnP-SCI code starts (its scores are reproduced so).
    public enum Start: Sendable { case normalized, adjoint }

    public init(snapshot: Snapshot, mask: MaskStack, accelerate: Bool = true, start: Start = .normalized,
                kernels: KernelSet = .active) {
        let t = mask.frames, h = mask.height, w = mask.width
        frames = t
        height = h
        width = w
        self.accelerate = accelerate
        self.kernels = kernels
        layout = TVFrameLayout(height: h, width: w, vectorWidth: kernels.vectorWidth)
        let plane = layout.bufferCount
        // Padded copies: Phi and x as T planes; y, y1, Phi_s and the column mask as one plane.
        phi = [Float](repeating: 0, count: t * plane)
        x = [Float](repeating: 0, count: t * plane)
        y = [Float](repeating: 0, count: plane)
        phiSum = [Float](repeating: 1, count: plane)
        validMask = [Float](repeating: 0, count: layout.stride)
        for c in 0 ..< w { validMask[c + 1] = 1 }
        for r in 0 ..< h {
            for c in 0 ..< w {
                let p = layout.index(r, c), i = r * w + c
                y[p] = snapshot.pixels[i]
                phiSum[p] = mask.phiSum[i]
                for f in 0 ..< t {
                    let m = mask.values[f * h * w + i]
                    phi[f * plane + p] = m
                    x[f * plane + p] = start == .normalized ? m * snapshot.pixels[i] / mask.phiSum[i] : m * snapshot.pixels[i]
                }
            }
        }
        y1 = accelerate ? [Float](repeating: 0, count: plane) : y
        denoised = [Float](repeating: 0, count: t * plane)
        // Per-frame Chambolle scratch (p0, p1), one pair per frame so frames run in parallel.
        scratch = []
    }

    /// x += Phi^T ((y1 - Phi x) / Phi_s), with y1 += y - Phi x first when accelerated.
    public mutating func project() {
        let layout = self.layout, t = frames, h = height, kernels = self.kernels, accelerate = self.accelerate
        let rowChunks = min(Parallel.coreCount, h)
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
    }

    /// x = TV-denoised x, frame by frame (Chambolle), frames in parallel.
    public mutating func denoiseTV(weight: Float, iterations: Int, tolerance: Float) {
        let layout = self.layout, plane = layout.bufferCount, kernels = self.kernels
        if scratch.isEmpty { scratch = [Float](repeating: 0, count: 2 * frames * plane) }
        x.withUnsafeBufferPointer { xP in
            denoised.withUnsafeMutableBufferPointer { dP in
                scratch.withUnsafeMutableBufferPointer { sP in
                    validMask.withUnsafeBufferPointer { mP in
                        Parallel.forEach(frames) { f in
                            _ = kernels.tvChambolleFrame(
                                layout: layout, image: xP.baseAddress! + f * plane, out: dP.baseAddress! + f * plane,
                                p0: sP.baseAddress! + 2 * f * plane, p1: sP.baseAddress! + (2 * f + 1) * plane,
                                validMask: mP.baseAddress!, weight: weight, maxIterations: iterations, eps: tolerance)
                        }
                    }
                }
            }
        }
        swap(&x, &denoised)
    }

    /// x as T contiguous H x W frames.
    public func currentFrames() -> [Float] {
        let t = frames, h = height, w = width, plane = layout.bufferCount
        var out = [Float](repeating: 0, count: t * h * w)
        for f in 0 ..< t {
            for r in 0 ..< h {
                for c in 0 ..< w { out[(f * h + r) * w + c] = x[f * plane + layout.index(r, c)] }
            }
        }
        return out
    }

    /// Replaces x with T contiguous H x W frames.
    public mutating func setFrames(_ values: [Float]) throws {
        let t = frames, h = height, w = width, plane = layout.bufferCount
        guard values.count == t * h * w else { throw SCIError("GAP loop: \(values.count) values for \(t)x\(h)x\(w) frames") }
        for f in 0 ..< t {
            for r in 0 ..< h {
                for c in 0 ..< w { x[f * plane + layout.index(r, c)] = values[(f * h + r) * w + c] }
            }
        }
    }

    /// The current estimate as a video.
    public func video() throws -> Video {
        try Video(frames: frames, height: height, width: width, pixels: currentFrames())
    }
}
