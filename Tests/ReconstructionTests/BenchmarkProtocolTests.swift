import Foundation
import Formats
import Reconstruction
import SCICore
import XCTest

final class BenchmarkProtocolTests: XCTestCase {
    /// A scene file holding only `orig` is enough; the mask file's mask simulates the snapshots.
    func testSceneWithOnlyOrigIsScoredWithTheBenchmarkMask() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-protocol-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (h, w, t, f) = (32, 24, 4, 8)
        var rng = SystemRandomNumberGenerator()
        let mask = (0 ..< h * w * t).map { _ in UInt8.random(in: 0 ... 1, using: &rng) }
        var orig = [UInt8](repeating: 0, count: h * w * f)
        for r in 0 ..< h { for c in 0 ..< w { for k in 0 ..< f { orig[(r * w + c) * f + k] = UInt8((r * 4 + c * 2 + k * 3) % 256) } } }
        try Data(MATFile.encode([("mask", NumericArray(shape: [h, w, t], storage: .uint8(mask)))], compressed: true))
            .write(to: dir.appendingPathComponent("mask.mat"))
        try Data(MATFile.encode([("orig", NumericArray(shape: [h, w, f], storage: .uint8(orig)))], compressed: false))
            .write(to: dir.appendingPathComponent("ramp_cacti.mat"))
        let maskURL = dir.appendingPathComponent("mask.mat")
        let files = try BenchmarkProtocol.sceneFiles(in: dir, excluding: maskURL)
        XCTAssertEqual(files.map(\.lastPathComponent), ["ramp_cacti.mat"])
        // Another mask from elsewhere: the folder's own mask.mat is still no scene.
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("other-mask-\(UUID().uuidString).mat")
        XCTAssertEqual(try BenchmarkProtocol.sceneFiles(in: dir, excluding: other).map(\.lastPathComponent), ["ramp_cacti.mat"])
        let scene = try BenchmarkProtocol.loadScene(files[0])
        XCTAssertEqual(scene.name, "ramp")
        let result = try BenchmarkProtocol.run(scene, mask: BenchmarkProtocol.loadMask(maskURL), reconstructor: GAPTV(iterations: 20))
        XCTAssertEqual(result.snapshots, 2)
        XCTAssertEqual(result.frames, 8)
        XCTAssertEqual(result.psnr.count, 8)
        XCTAssertGreaterThan(result.meanPSNR, 20) // a smooth ramp is easy for TV
        XCTAssertTrue(result.ssim.allSatisfy { $0 > 0 && $0 <= 1 })
    }
}
