import Formats
import SCICore
import TestSupport
import XCTest

/// How files become snapshots, masks and ground truth: array orders, names, value scales and
/// the consistency checks between them.
final class ReconstructionInputTests: XCTestCase {
    func testBenchmarkFileAsAWholeJobNeedsItsFirstSnapshotOnly() throws {
        let file = try ArrayFile.decode(SharedData.bytes("data/benchmarks/drop8_cacti.mat"))
        XCTAssertEqual(file.kind, .mat)
        XCTAssertThrowsError(try ReconstructionInput(measurement: file, mask: nil, groundTruth: nil)) { error in
            XCTAssertTrue("\(error)".contains("5 snapshot(s)") && "\(error)".contains("first 1"), "\(error)")
        }
        let input = try ReconstructionInput(measurement: file, mask: nil, groundTruth: nil, snapshotLimit: 1)
        XCTAssertEqual(input.snapshots.count, 1)
        XCTAssertEqual(input.mask.frames, 8)
        XCTAssertEqual(input.whiteLevel, 255)
        let truth = try XCTUnwrap(input.groundTruth)
        XCTAssertEqual(truth.frames, 8)
        XCTAssertLessThanOrEqual(truth.pixels.max()!, 1)
        // The file's meas equals sum_t mask .* orig (on the 0-255 scale): so y / 255 = A(orig / 255).
        let y = try SensingModel(mask: input.mask).measure(truth)
        let err = zip(y.pixels, input.snapshots[0].pixels).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(err, 1e-4)
    }

    func testNpyStacksAreFramesFirstAndMatIsFramesLast() throws {
        // 2 frames of 2x3: frame k has value 10k + index.
        let frames: [Float] = (0 ..< 2).flatMap { k in (0 ..< 6).map { Float(10 * k + $0) } }
        let npy = try ArrayFile.decode(NPY.encode(NumericArray(shape: [2, 2, 3], float32: frames)))
        XCTAssertEqual(try SCIInput.video(npy.arrays[0].array, order: npy.planeOrder, whiteLevel: 1).pixels, frames)
        // The same stack as MATLAB stores it: (H, W, F).
        var hwf = [Float](repeating: 0, count: 12)
        for k in 0 ..< 2 { for i in 0 ..< 6 { hwf[i * 2 + k] = frames[k * 6 + i] } }
        let mat = try ArrayFile.decode(MATFile.encode([("orig", NumericArray(shape: [2, 3, 2], float32: hwf))], compressed: true))
        XCTAssertEqual(try SCIInput.video(mat.arrays[0].array, order: mat.planeOrder, whiteLevel: 1).pixels, frames)
    }

    func testWhiteLevelInference() throws {
        let mask = try MaskStack(frames: 2, height: 1, width: 2, values: [1, 0, 1, 1])
        func level(_ a: NumericArray) -> Float { SCIInput.inferWhiteLevel(measurement: a, mask: mask) }
        XCTAssertEqual(level(NumericArray(shape: [1, 2], float32: [1.5, 0.3])), 1)      // a [0,1] video can give this
        XCTAssertEqual(level(NumericArray(shape: [1, 2], float32: [300, 12])), 255)     // above T: 8-bit frames
        XCTAssertEqual(level(NumericArray(shape: [1, 2], storage: .uint16([3, 1]))), 255)
        XCTAssertEqual(level(NumericArray(shape: [1, 2], float32: [90000, 12])), 65535)
    }

    func testMismatchesAndBadValuesAreRefusedWithReasons() throws {
        let mask = try ArrayFile.decode(NPY.encode(NumericArray(shape: [2, 4, 4], float32: [Float](repeating: 1, count: 32))))
        let wrongSize = try ArrayFile.decode(NPY.encode(NumericArray(shape: [4, 6], float32: [Float](repeating: 1, count: 24))))
        XCTAssertThrowsError(try ReconstructionInput(measurement: wrongSize, mask: mask, groundTruth: nil)) {
            XCTAssertTrue("\($0)".contains("4x6") && "\($0)".contains("4x4"), "\($0)")
        }
        var values = [Float](repeating: 1, count: 16)
        values[5] = .nan
        let nan = try ArrayFile.decode(NPY.encode(NumericArray(shape: [4, 4], float32: values)))
        XCTAssertThrowsError(try ReconstructionInput(measurement: nan, mask: mask, groundTruth: nil)) { XCTAssertTrue("\($0)".contains("non-finite"), "\($0)") }
        let zeroMask = try ArrayFile.decode(NPY.encode(NumericArray(shape: [2, 4, 4], float32: [Float](repeating: 0, count: 32))))
        let ok = try ArrayFile.decode(NPY.encode(NumericArray(shape: [4, 4], float32: [Float](repeating: 1, count: 16))))
        XCTAssertThrowsError(try ReconstructionInput(measurement: ok, mask: zeroMask, groundTruth: nil)) { XCTAssertTrue("\($0)".contains("zero everywhere"), "\($0)") }
        XCTAssertThrowsError(try ReconstructionInput(measurement: ok, mask: nil, groundTruth: nil)) { XCTAssertTrue("\($0)".contains("no mask"), "\($0)") }
        XCTAssertThrowsError(try ReconstructionInput(measurement: ok, mask: mask, groundTruth: nil, whiteLevel: -3))
        let gt3 = try ArrayFile.decode(NPY.encode(NumericArray(shape: [3, 4, 4], float32: [Float](repeating: 0.5, count: 48))))
        XCTAssertThrowsError(try ReconstructionInput(measurement: ok, mask: mask, groundTruth: gt3)) { XCTAssertTrue("\($0)".contains("3 frames"), "\($0)") }
        XCTAssertThrowsError(try ArrayFile.decode(Array("hello, world".utf8))) { XCTAssertTrue("\($0)".contains("not a recognised file"), "\($0)") }
    }

    func testPngMaskOf0And255IsScaledTo01() throws {
        let png = PNG.encodeGray8(width: 3, height: 2, pixels: [0, 255, 255, 0, 255, 0])
        let mask = try SCIInput.mask(ArrayFile.decode(png).arrays[0].array, order: .framesFirst)
        XCTAssertEqual(mask.values, [0, 1, 1, 0, 1, 0])
    }
}
