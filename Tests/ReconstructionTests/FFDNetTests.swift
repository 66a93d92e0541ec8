import Foundation
import Formats
@testable import Reconstruction
import SCICore
import TestSupport
import XCTest

/// FFDNet against the public implementation's outputs (../shared/fixtures/ffdnet), and the
/// PnP loop's plumbing on a small scene.
final class FFDNetTests: XCTestCase {
    func network(_ file: String) throws -> FFDNet {
        let url: URL
        do { url = try SharedData.url("data/weights/ffdnet/\(file)") } catch { throw XCTSkip("\(error)") }
        return try FFDNet(contentsOf: url)
    }

    func fixture(_ name: String) throws -> NumericArray {
        try NPY.decode(try SharedData.bytes("fixtures/ffdnet/\(name).npy"))
    }

    /// Every fixture case: max |ours - PyTorch| <= 1e-4 (the fixtures' stated tolerance).
    func testOutputsMatchTheFixtures() throws {
        let cases = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(SharedData.bytes("fixtures/ffdnet/cases.json"))) as? [String: Any])
        let list = try XCTUnwrap(cases["cases"] as? [String: [String: Any]])
        XCTAssertEqual(list.count, 4)
        var networks: [String: FFDNet] = [:]
        for (name, info) in list.sorted(by: { $0.key < $1.key }) {
            let weights = try XCTUnwrap(info["weights"] as? String)
            let sigma = Float(try XCTUnwrap(info["sigma"] as? Double))
            let net = try networks[weights] ?? network(weights)
            networks[weights] = net
            let input = try fixture(name + "_input"), expected = try fixture(name + "_output")
            let (c, h, w) = (input.shape[0], input.shape[1], input.shape[2])
            XCTAssertEqual(c, net.colors)
            let values = input.floats()
            let out = try values.withUnsafeBufferPointer { try net.denoise($0, height: h, width: w, sigma: sigma) }
            let reference = expected.floats()
            var worst: Float = 0
            for i in out.indices { worst = max(worst, abs(out[i] - reference[i])) }
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(name): max |ours - fixture| = \(worst)")
            // The output is not the input: the network really removed something.
            var moved: Float = 0
            for i in out.indices { moved = max(moved, abs(out[i] - values[i])) }
            XCTAssertGreaterThan(moved, 0.01, name)
        }
    }

    func testBatchNormIsFoldedAndShapesAreChecked() throws {
        let gray = try network("net_gray.pth")
        XCTAssertEqual(gray.colors, 1)
        XCTAssertEqual(gray.features, 64)
        XCTAssertEqual(gray.layers.count, 15)
        let rgb = try network("net_rgb.pth")
        XCTAssertEqual(rgb.colors, 3)
        XCTAssertEqual(rgb.features, 96)
        XCTAssertEqual(rgb.layers.count, 12)
        XCTAssertThrowsError(try FFDNet(stateDict: ["w": NumericArray(shape: [1], float32: [0])])) {
            XCTAssertTrue("\($0)".contains("not an FFDNet"), "\($0)")
        }
        let odd = [Float](repeating: 0.5, count: 9)
        XCTAssertThrowsError(try odd.withUnsafeBufferPointer { try gray.denoise($0, height: 3, width: 3, sigma: 0.1) })
    }

    /// On a small scene the PnP loop beats GAP-TV's start and keeps every value finite; both
    /// schedules run and report progress to 1.
    func testPnPImprovesOnItsGAPTVStart() throws {
        let net = try network("net_gray.pth")
        let (t, h, w) = (4, 32, 48)
        var rng = SeededGenerator(seed: 3)
        let mask = try MaskStack(frames: t, height: h, width: w, values: (0 ..< t * h * w).map { _ in Float(rng.next() & 1) })
        var truth = [Float](repeating: 0, count: t * h * w)
        for f in 0 ..< t {
            for r in 0 ..< h {
                for c in 0 ..< w {
                    let edge: Float = c + f * 2 > 20 ? 0.8 : 0.2
                    truth[(f * h + r) * w + c] = edge + 0.05 * sin(Float(r) * 0.3)
                }
            }
        }
        let video = try Video(frames: t, height: h, width: w, pixels: truth)
        let snapshot = try SensingModel(mask: mask).measure(video)
        let gaptv = try GAPTV(iterations: 40).reconstruct(snapshot, mask: mask, context: ReconstructionContext())
        final class Last: @unchecked Sendable { var value = 0.0 }
        let last = Last()
        let warm = PnPFFDNet(network: net, stages: PnPFFDNet.stages(.warm, iterationsPerSigma: 3))
        let out = try warm.reconstruct(snapshot, mask: mask, context: ReconstructionContext(progress: { last.value = $0 }))
        XCTAssertEqual(last.value, 1)
        XCTAssertTrue(out.pixels.allSatisfy(\.isFinite))
        let before = try Metrics.score(reference: video, estimate: gaptv).meanPSNR
        let after = try Metrics.score(reference: video, estimate: out).meanPSNR
        XCTAssertGreaterThan(after, before, "PnP-FFDNet \(after) dB vs GAP-TV \(before) dB")
        XCTAssertEqual(PnPFFDNet.stages(.published).map(\.iterations), [10, 10, 10, 10])
        XCTAssertEqual(PnPFFDNet.stages(.warm).first, .init(.tv(weight: 0.3, iterations: 5), iterations: 40))
    }
}
