import Foundation

/// Image quality exactly as the reference toolbox scores it (REFERENCE.md section 6): frames on
/// the [0, 1] scale are multiplied by 255 in float64, no clipping; all arithmetic in float64.
public enum Metrics {
    /// PSNR in dB of one frame: 20 log10(255 / RMSE), 100 when the frames are identical.
    public static func psnr(reference: ArraySlice<Float>, estimate: ArraySlice<Float>) -> Double {
        precondition(reference.count == estimate.count && !reference.isEmpty)
        var sum = 0.0
        for (a, b) in zip(reference, estimate) {
            let d = Double(a) * 255 - Double(b) * 255
            sum += d * d
        }
        let mse = sum / Double(reference.count)
        if mse == 0 { return 100 }
        return 20 * log10(255 / mse.squareRoot())
    }

    /// The normalised 11-tap Gaussian (sigma 1.5) whose outer product is the SSIM window.
    public static let gaussianWindow: [Double] = {
        let g = (0 ..< 11).map { i -> Double in
            let x = Double(i - 5)
            return exp(-x * x / (2 * 1.5 * 1.5))
        }
        let s = g.reduce(0, +)
        return g.map { $0 / s }
    }()

    public static let c1 = (0.01 * 255.0) * (0.01 * 255.0)
    public static let c2 = (0.03 * 255.0) * (0.03 * 255.0)

    /// MATLAB-style SSIM of one H x W frame: Gaussian-weighted local statistics over the 'valid'
    /// region (5 pixels cropped per side), mean of the SSIM map. Frames smaller than 11x11 have
    /// no valid region; their SSIM is reported as NaN.
    public static func ssim(reference: ArraySlice<Float>, estimate: ArraySlice<Float>, height: Int, width: Int) -> Double {
        precondition(reference.count == height * width && estimate.count == height * width)
        let k = 11
        let vh = height - k + 1, vw = width - k + 1
        guard vh > 0, vw > 0 else { return .nan }
        let a = reference.map { Double($0) * 255 }
        let b = estimate.map { Double($0) * 255 }
        // The window is separable: correlate rows, then columns, keeping the valid part only.
        let w = gaussianWindow
        func filter(_ img: [Double]) -> [Double] {
            var rows = [Double](repeating: 0, count: height * vw)
            for r in 0 ..< height {
                let base = r * width
                for c in 0 ..< vw {
                    var s = 0.0
                    for j in 0 ..< k { s += w[j] * img[base + c + j] }
                    rows[r * vw + c] = s
                }
            }
            var out = [Double](repeating: 0, count: vh * vw)
            for r in 0 ..< vh {
                for c in 0 ..< vw {
                    var s = 0.0
                    for i in 0 ..< k { s += w[i] * rows[(r + i) * vw + c] }
                    out[r * vw + c] = s
                }
            }
            return out
        }
        let mu1 = filter(a), mu2 = filter(b)
        let s11 = filter(a.map { $0 * $0 }), s22 = filter(b.map { $0 * $0 })
        let s12 = filter(zip(a, b).map { $0 * $1 })
        var total = 0.0
        for i in 0 ..< vh * vw {
            let m1 = mu1[i], m2 = mu2[i]
            let v1 = s11[i] - m1 * m1, v2 = s22[i] - m2 * m2, cov = s12[i] - m1 * m2
            total += ((2 * m1 * m2 + c1) * (2 * cov + c2)) / ((m1 * m1 + m2 * m2 + c1) * (v1 + v2 + c2))
        }
        return total / Double(vh * vw)
    }

    /// Per-frame and mean PSNR/SSIM of a reconstruction against ground truth.
    public struct Scores: Sendable, Codable, Equatable {
        public var psnr: [Double]
        public var ssim: [Double]
        public var meanPSNR: Double { psnr.isEmpty ? .nan : psnr.reduce(0, +) / Double(psnr.count) }
        public var meanSSIM: Double { ssim.isEmpty ? .nan : ssim.reduce(0, +) / Double(ssim.count) }
        public init(psnr: [Double], ssim: [Double]) {
            self.psnr = psnr
            self.ssim = ssim
        }
    }

    /// Scores every frame of `estimate` against `reference` (same shape), frames in parallel.
    public static func score(reference: Video, estimate: Video) throws -> Scores {
        guard reference.frames == estimate.frames, reference.height == estimate.height, reference.width == estimate.width else {
            throw SCIError("ground truth is \(reference.frames)x\(reference.height)x\(reference.width) but the reconstruction is \(estimate.frames)x\(estimate.height)x\(estimate.width)")
        }
        let n = reference.frameSize
        var results = [(Double, Double)](repeating: (0, 0), count: reference.frames)
        results.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(reference.frames) { t in
                let r = reference.pixels[t * n ..< (t + 1) * n], e = estimate.pixels[t * n ..< (t + 1) * n]
                out[t] = (psnr(reference: r, estimate: e),
                          ssim(reference: r, estimate: e, height: reference.height, width: reference.width))
            }
        }
        return Scores(psnr: results.map(\.0), ssim: results.map(\.1))
    }
}
