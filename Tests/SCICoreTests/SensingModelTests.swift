import SCICore
import XCTest

final class SensingModelTests: XCTestCase {
    /// A 2-frame 2x3 example worked by hand.
    func testForwardAdjointAndInput() throws {
        let mask = try MaskStack(frames: 2, height: 2, width: 3, values: [1, 0, 1, 0, 1, 0,
                                                                           1, 1, 0, 0, 0, 0])
        XCTAssertEqual(mask.phiSum, [2, 1, 1, 1, 1, 1]) // pixel (1,0) and (1,2) sum to 0 -> 1
        let model = SensingModel(mask: mask)
        let x = try Video(frames: 2, height: 2, width: 3, pixels: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
                                                                    0.7, 0.8, 0.9, 1.0, 0.0, 0.5])
        let y = try model.measure(x)
        XCTAssertEqual(y.pixels, [0.1 + 0.7, 0.8, 0.3, 0, 0.5, 0], accuracy: 1e-7)
        let back = try model.adjoint(y)
        XCTAssertEqual(back.pixels, [0.8, 0, 0.3, 0, 0.5, 0, 0.8, 0.8, 0, 0, 0, 0], accuracy: 1e-7)
        let input = try model.networkInput(y)
        // data_t = y_bar + Phi_t y_bar, y_bar = y / Phi_s
        let yBar: [Float] = [0.4, 0.8, 0.3, 0, 0.5, 0]
        let want = (0 ..< 2).flatMap { t in (0 ..< 6).map { i in yBar[i] + mask.values[t * 6 + i] * yBar[i] } }
        XCTAssertEqual(input.pixels, want, accuracy: 1e-7)
    }

    /// <A x, y> = <x, A^T y> on random data: the adjoint is really the adjoint.
    func testAdjointIdentity() throws {
        var rng = SystemRandomNumberGenerator()
        let (t, h, w) = (4, 5, 6)
        let mask = try MaskStack(frames: t, height: h, width: w, values: (0 ..< t * h * w).map { _ in Float.random(in: 0 ... 1, using: &rng) })
        let model = SensingModel(mask: mask)
        let x = try Video(frames: t, height: h, width: w, pixels: (0 ..< t * h * w).map { _ in Float.random(in: -1 ... 1, using: &rng) })
        let y = try Snapshot(height: h, width: w, pixels: (0 ..< h * w).map { _ in Float.random(in: -1 ... 1, using: &rng) })
        let lhs = zip(try model.measure(x).pixels, y.pixels).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        let rhs = zip(x.pixels, try model.adjoint(y).pixels).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        XCTAssertEqual(lhs, rhs, accuracy: 1e-4)
    }

    func testBadShapesAndValuesAreRefused() throws {
        XCTAssertThrowsError(try MaskStack(frames: 2, height: 2, width: 2, values: [Float](repeating: 0, count: 8))) { e in
            XCTAssertTrue("\(e)".contains("zero everywhere"))
        }
        XCTAssertThrowsError(try MaskStack(frames: 2, height: 2, width: 2, values: [1, 1, 1, .nan, 1, 1, 1, 1]))
        XCTAssertThrowsError(try MaskStack(frames: 2, height: 2, width: 2, values: [1, 1, 1]))
        let model = SensingModel(mask: try MaskStack(frames: 1, height: 2, width: 2, values: [1, 1, 1, 1]))
        XCTAssertThrowsError(try model.measure(Video(zeros: 1, height: 3, width: 2)))
        XCTAssertThrowsError(try model.adjoint(Snapshot(height: 2, width: 3, pixels: [0, 0, 0, 0, 0, 0])))
    }

    func testBayerRGGB() throws {
        XCTAssertEqual(Bayer.channel(row: 0, col: 0), 0)
        XCTAssertEqual(Bayer.channel(row: 0, col: 1), 1)
        XCTAssertEqual(Bayer.channel(row: 1, col: 0), 1)
        XCTAssertEqual(Bayer.channel(row: 1, col: 1), 2)
        // 1 frame of 2x2: R=1s, G=2s, B=3s -> raw [1 2; 2 3]
        let rgb: [Float] = [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
        XCTAssertEqual(try Bayer.mosaic(rgb: rgb, frames: 1, height: 2, width: 2).pixels, [1, 2, 2, 3])
    }

    func testFromHWFReordersFrames() throws {
        // (H=1, W=2, F=3) in C order: pixel-major; frame-major result
        let v = try Video.fromHWF([1, 2, 3, 4, 5, 6], height: 1, width: 2, frames: 3)
        XCTAssertEqual(v.pixels, [1, 4, 2, 5, 3, 6])
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() where abs(x - y) > accuracy {
        XCTFail("element \(i): \(x) != \(y)", file: file, line: line)
        return
    }
}
