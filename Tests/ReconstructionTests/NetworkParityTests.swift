import Formats
@testable import Reconstruction
import SCICore
import TestSupport
import XCTest

/// The Swift engine against the PyTorch fixtures (shared/fixtures/README.md): every
/// intermediate, the output and block reverse, on every instruction set this CPU supports.
final class NetworkParityTests: XCTestCase {
    struct Fixture {
        let folder: String
        let weightsFile: String
        let hasBlockOuts: Bool
        let reversedBlocks: [Int]
    }

    static let fixtures = [
        Fixture(folder: "revsci_cacti_nb2", weightsFile: "revsci_nb2.safetensors", hasBlockOuts: true, reversedBlocks: [1]),
        Fixture(folder: "revsci_paper_g2_nb2", weightsFile: "weights.safetensors", hasBlockOuts: true, reversedBlocks: [0, 1]),
        Fixture(folder: "revsci_paper_g4_nb2", weightsFile: "weights.safetensors", hasBlockOuts: true, reversedBlocks: [0, 1]),
        Fixture(folder: "revsci_color_nb2", weightsFile: "weights.safetensors", hasBlockOuts: false, reversedBlocks: []),
    ]

    func npy(_ path: String) throws -> NumericArray { try NPY.decode(SharedData.bytes(path)) }

    func loadNetwork(_ f: Fixture) throws -> RevSCINetwork {
        let st = try SafetensorsFile.decode(SharedData.bytes("fixtures/\(f.folder)/\(f.weightsFile)"))
        return try RevSCINetwork(weights: Dictionary(uniqueKeysWithValues: st.tensors.map { ($0.name, $0.array) }))
    }

    /// Fixture tolerance: atol 1e-6, or max diff <= 2e-5 * max |reference| when that is larger.
    func assertClose(_ got: [Float], _ want: NumericArray, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let ref = want.doubles()
        XCTAssertEqual(got.count, ref.count, what, file: file, line: line)
        guard got.count == ref.count else { return }
        let maxRef = ref.map(abs).max() ?? 0
        let err = zip(got, ref).map { abs(Double($0) - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(err, max(1e-6, 2e-5 * maxRef), "\(what): max abs diff \(err) (max |ref| \(maxRef))", file: file, line: line)
    }

    func testEveryFixtureOnEverySupportedISA() throws {
        for f in Self.fixtures {
            let net = try loadNetwork(f)
            let x = try npy("fixtures/\(f.folder)/input_x.npy")
            let (t, h, w) = (x.shape[2], x.shape[3], x.shape[4])
            for kernels in KernelSet.supported {
                var seen: [String: [Float]] = [:]
                let out = try net.forward(x.floats(), frames: t, height: h, width: w, kernels: kernels) { name, value in
                    seen[name] = value
                }
                let tag = "\(f.folder) [\(kernels)]"
                assertClose(out, try npy("fixtures/\(f.folder)/output.npy"), "\(tag) output")
                assertClose(out, try npy("fixtures/\(f.folder)/output_float64.npy"), "\(tag) output vs float64")
                if f.hasBlockOuts {
                    assertClose(seen["conv1_out"]!, try npy("fixtures/\(f.folder)/conv1_out.npy"), "\(tag) conv1_out")
                    for k in 0 ..< 2 {
                        assertClose(seen["block\(k)_out"]!, try npy("fixtures/\(f.folder)/block\(k)_out.npy"), "\(tag) block\(k)_out")
                    }
                }
                for k in f.reversedBlocks {
                    let y = try npy("fixtures/\(f.folder)/block\(k)_out.npy")
                    let back = net.reverseBlock(k, output: y.floats(), frames: t, height: h / 2, width: w / 2, kernels: kernels)
                    assertClose(back, try npy("fixtures/\(f.folder)/block\(k)_reverse_of_block\(k)_out.npy"), "\(tag) reverse block \(k)")
                }
            }
        }
    }

    /// reverse(forward(x)) = x per block, on random input: the in-place slot bookkeeping is exact.
    func testBlockRoundTrip() throws {
        for f in Self.fixtures.prefix(3) {
            let net = try loadNetwork(f)
            var rng = SplitMix(seed: 11)
            let (t, h, w) = (4, 6, 10)
            let x = (0 ..< 64 * t * h * w).map { _ in rng.unit() * 4 - 2 }
            for block in net.blocks {
                let state = Activation(frames: t, height: h, width: w, channels: 64, pad: 1)
                let hidden = Activation(frames: t, height: h, width: w, channels: block.groupChannels, pad: 1)
                x.withUnsafeBufferPointer { state.load(channelMajor: $0.baseAddress!, channels: 64) }
                var slots = Array(0 ..< block.groupCount)
                block.forward(state, slots: &slots, hidden: hidden)
                let moved = net.logicalState(state, slots: slots)
                XCTAssertGreaterThan(zip(moved, x).map { abs($0 - $1) }.max()!, 1e-3) // the block did something
                block.reverse(state, slots: &slots, hidden: hidden)
                let back = net.logicalState(state, slots: slots)
                let err = zip(back, x).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(err, 2e-6, "\(f.folder): round trip error \(err)")
            }
        }
    }

    /// Each PyTorch checkpoint loads (without running any pickled code) to a network that
    /// reproduces its fixture's output.
    func testCheckpointsReproduceTheirFixtures() throws {
        let pairs = [("cacti_nb2_state_dict.pth", "revsci_cacti_nb2"), ("cacti_nb2_wrapped.pth", "revsci_cacti_nb2"),
                     ("cacti_nb2_legacy.pth", "revsci_cacti_nb2"), ("paper_g2_nb2_module.pth", "revsci_paper_g2_nb2")]
        for (file, folder) in pairs {
            let net = try RevSCINetwork(weights: WeightsFile.decode(SharedData.bytes("fixtures/checkpoints/\(file)")))
            let x = try npy("fixtures/\(folder)/input_x.npy")
            let out = try net.forward(x.floats(), frames: x.shape[2], height: x.shape[3], width: x.shape[4])
            assertClose(out, try npy("fixtures/\(folder)/output.npy"), file)
        }
    }

    func testParameterCountsMatchFixtures() throws {
        let expected = ["revsci_cacti_nb2": 340_833, "revsci_paper_g2_nb2": 340_833, "revsci_paper_g4_nb2": 230_241, "revsci_color_nb2": 285_299]
        for f in Self.fixtures {
            XCTAssertEqual(try loadNetwork(f).parameterCount, expected[f.folder], f.folder)
        }
    }

    func testMissingAndForeignWeightsAreNamed() throws {
        let st = try SafetensorsFile.decode(SharedData.bytes("fixtures/revsci_cacti_nb2/revsci_nb2.safetensors"))
        var weights = Dictionary(uniqueKeysWithValues: st.tensors.map { ($0.name, $0.array) })
        weights["conv2.6.bias"] = nil
        XCTAssertThrowsError(try RevSCINetwork(weights: weights)) { XCTAssertTrue("\($0)".contains("conv2.6.bias"), "\($0)") }
        weights = Dictionary(uniqueKeysWithValues: st.tensors.map { ($0.name, $0.array) })
        weights["layers.7.something"] = NumericArray(shape: [1], float32: [0])
        XCTAssertThrowsError(try RevSCINetwork(weights: weights)) { XCTAssertTrue("\($0)".contains("layers.7.something"), "\($0)") }
    }
}
