import Foundation
import Formats
import SCICore
import TestSupport
import XCTest

/// PSNR/SSIM against the reference values in shared/fixtures/metrics/expected.json.
final class MetricsTests: XCTestCase {
    func loadVideo(_ name: String) throws -> Video {
        let a = try NPY.decode(SharedData.bytes("fixtures/metrics/\(name)"))
        XCTAssertEqual(a.shape, [8, 256, 256])
        return try Video(frames: 8, height: 256, width: 256, pixels: a.floats())
    }

    func testMatchesReferenceValues() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: SharedData.url("fixtures/metrics/expected.json"))) as! [String: Any]
        let psnr = expected["psnr"] as! [String: [String: Any]]
        let ssim = expected["ssim"] as! [String: [String: Any]]
        let gt = try loadVideo("gt.npy")
        for name in ["noise", "naive"] {
            let rec = try loadVideo("recon_\(name).npy")
            let scores = try Metrics.score(reference: gt, estimate: rec)
            let wantPSNR = psnr[name]!["per_frame"] as! [Double]
            let wantSSIM = ssim[name]!["per_frame"] as! [Double]
            for t in 0 ..< 8 {
                XCTAssertEqual(scores.psnr[t], wantPSNR[t], accuracy: 1e-6, "\(name) PSNR frame \(t)")
                XCTAssertEqual(scores.ssim[t], wantSSIM[t], accuracy: 1e-7, "\(name) SSIM frame \(t)")
            }
            XCTAssertEqual(scores.meanPSNR, psnr[name]!["mean"] as! Double, accuracy: 1e-6)
            XCTAssertEqual(scores.meanSSIM, ssim[name]!["mean"] as! Double, accuracy: 1e-7)
        }
    }

    func testWindowMatchesReference() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: SharedData.url("fixtures/metrics/expected.json"))) as! [String: Any]
        let window = (expected["definition"] as! [String: Any])["window_1d"] as! [Double]
        for (a, b) in zip(Metrics.gaussianWindow, window) { XCTAssertEqual(a, b, accuracy: 1e-15) }
    }

    func testIdenticalFramesScorePerfect() throws {
        let pixels = (0 ..< 2 * 16 * 16).map { Float($0 % 37) / 36 }
        let v = try Video(frames: 2, height: 16, width: 16, pixels: pixels)
        let s = try Metrics.score(reference: v, estimate: v)
        XCTAssertEqual(s.psnr, [100, 100])
        for x in s.ssim { XCTAssertEqual(x, 1, accuracy: 1e-12) }
    }

    func testShapeMismatchIsAnError() throws {
        let a = Video(zeros: 2, height: 16, width: 16), b = Video(zeros: 3, height: 16, width: 16)
        XCTAssertThrowsError(try Metrics.score(reference: a, estimate: b))
    }
}
