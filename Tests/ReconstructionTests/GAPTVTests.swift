import KernelCore
@testable import Reconstruction
import SCICore
import XCTest

final class GAPTVTests: XCTestCase {
    /// scikit-image's denoise_tv_chambolle (2-D, one channel), written plainly from its
    /// definition: the vectorised, padded kernel must give the same frame.
    func referenceTV(_ image: [Double], h: Int, w: Int, weight: Double, maxIter: Int, eps: Double) -> [Double] {
        var p0 = [Double](repeating: 0, count: h * w), p1 = p0
        var out = image
        var eInit = 0.0, ePrev = 0.0
        for i in 0 ..< maxIter {
            var d = [Double](repeating: 0, count: h * w)
            if i > 0 {
                for r in 0 ..< h {
                    for c in 0 ..< w {
                        var v = -(p0[r * w + c] + p1[r * w + c])
                        if r > 0 { v += p0[(r - 1) * w + c] }
                        if c > 0 { v += p1[r * w + c - 1] }
                        d[r * w + c] = v
                    }
                }
                out = zip(image, d).map { $0 + $1 }
            } else {
                out = image
            }
            var e = d.reduce(0) { $0 + $1 * $1 }
            for r in 0 ..< h {
                for c in 0 ..< w {
                    let k = r * w + c
                    let g0 = r < h - 1 ? out[k + w] - out[k] : 0
                    let g1 = c < w - 1 ? out[k + 1] - out[k] : 0
                    let norm = (g0 * g0 + g1 * g1).squareRoot()
                    e += weight * norm
                    let scaled = 1 + norm * 0.25 / weight
                    p0[k] = (p0[k] - 0.25 * g0) / scaled
                    p1[k] = (p1[k] - 0.25 * g1) / scaled
                }
            }
            e /= Double(h * w)
            if i == 0 {
                eInit = e
                ePrev = e
            } else if abs(ePrev - e) < eps * eInit {
                break
            } else {
                ePrev = e
            }
        }
        return out
    }

    func runKernel(_ kernels: KernelSet, image: [Float], h: Int, w: Int, weight: Float, maxIter: Int, eps: Float) -> [Float] {
        let layout = TVFrameLayout(height: h, width: w, vectorWidth: kernels.vectorWidth)
        var img = [Float](repeating: 0, count: layout.bufferCount)
        for r in 0 ..< h { for c in 0 ..< w { img[layout.index(r, c)] = image[r * w + c] } }
        var out = [Float](repeating: 0, count: layout.bufferCount)
        var p0 = out, p1 = out
        var mask = [Float](repeating: 0, count: layout.stride)
        for c in 0 ..< w { mask[c + 1] = 1 }
        _ = kernels.tvChambolleFrame(layout: layout, image: img, out: &out, p0: &p0, p1: &p1, validMask: mask,
                                     weight: weight, maxIterations: maxIter, eps: eps)
        var result = [Float](repeating: 0, count: h * w)
        for r in 0 ..< h { for c in 0 ..< w { result[r * w + c] = out[layout.index(r, c)] } }
        return result
    }

    func testTVKernelMatchesReferenceOnEverySupportedISA() {
        var rng = SplitMix(seed: 7)
        for (h, w) in [(1, 1), (5, 3), (7, 17), (16, 16), (9, 33), (12, 250)] {
            let image = (0 ..< h * w).map { _ in Float(rng.unit()) }
            for maxIter in [1, 2, 5, 12] {
                let want = referenceTV(image.map(Double.init), h: h, w: w, weight: 0.3, maxIter: maxIter, eps: 2e-4)
                for kernels in KernelSet.supported {
                    let got = runKernel(kernels, image: image, h: h, w: w, weight: 0.3, maxIter: maxIter, eps: 2e-4)
                    let err = zip(got, want).map { abs(Double($0) - $1) }.max() ?? 0
                    XCTAssertLessThan(err, 2e-5, "\(kernels) \(h)x\(w) iterations \(maxIter)")
                }
            }
        }
    }

    func syntheticScene(t: Int, h: Int, w: Int) throws -> (Video, MaskStack) {
        var rng = SplitMix(seed: 3)
        var pixels = [Float](repeating: 0, count: t * h * w)
        for f in 0 ..< t {
            for r in 0 ..< h {
                for c in 0 ..< w {
                    // A bright square moving right over a smooth gradient: piecewise smooth, TV-friendly.
                    let inSquare = r >= 8 && r < 20 && c >= 4 + 2 * f && c < 16 + 2 * f
                    pixels[(f * h + r) * w + c] = inSquare ? 0.9 : 0.2 + 0.3 * Float(r) / Float(h)
                }
            }
        }
        let mask = try MaskStack(frames: t, height: h, width: w, values: (0 ..< t * h * w).map { _ in rng.unit() > 0.5 ? 1 : 0 })
        return (try Video(frames: t, height: h, width: w, pixels: pixels), mask)
    }

    func testGAPTVRecoversASyntheticSceneAndISAsAgree() throws {
        let (truth, mask) = try syntheticScene(t: 8, h: 32, w: 40)
        let model = SensingModel(mask: mask)
        let y = try model.measure(truth)
        let naive = try model.adjoint(model.normalized(y))
        let naivePSNR = try Metrics.score(reference: truth, estimate: naive).meanPSNR
        var results: [Video] = []
        for kernels in KernelSet.supported {
            let video = try GAPTV(iterations: 40, kernels: kernels).reconstruct(y, mask: mask, context: ReconstructionContext())
            let psnr = try Metrics.score(reference: truth, estimate: video).meanPSNR
            XCTAssertGreaterThan(psnr, naivePSNR + 8, "\(kernels): GAP-TV \(psnr) dB vs naive \(naivePSNR) dB")
            results.append(video)
        }
        for v in results.dropFirst() {
            let diff = zip(v.pixels, results[0].pixels).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(diff, 1e-3)
        }
    }

    func testProgressAndCancellation() throws {
        let (truth, mask) = try syntheticScene(t: 8, h: 32, w: 40)
        let y = try SensingModel(mask: mask).measure(truth)
        let seen = Locked<[Double]>([])
        let token = CancellationToken()
        let context = ReconstructionContext(progress: { p in
            seen.update { $0.append(p) }
            if p >= 0.25 { token.cancel() }
        }, cancellation: token)
        XCTAssertThrowsError(try GAPTV(iterations: 40).reconstruct(y, mask: mask, context: context)) { error in
            XCTAssertTrue(error is ReconstructionCancelled)
        }
        let progress = seen.value
        XCTAssertEqual(progress.count, 10) // stopped right after 10 of 40 iterations
        XCTAssertEqual(progress, progress.sorted())
    }

    func testSizeMismatchIsRefused() throws {
        let mask = try MaskStack(frames: 2, height: 4, width: 4, values: [Float](repeating: 1, count: 32))
        let y = try Snapshot(height: 4, width: 6, pixels: [Float](repeating: 0, count: 24))
        XCTAssertThrowsError(try GAPTV().reconstruct(y, mask: mask, context: ReconstructionContext()))
    }
}

/// Deterministic random numbers for tests.
typealias SplitMix = SeededGenerator

extension SeededGenerator {
    mutating func unit() -> Float { unitFloat() }
}

final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
