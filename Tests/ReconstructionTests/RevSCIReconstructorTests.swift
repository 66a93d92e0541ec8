import Formats
@testable import Reconstruction
import SCICore
import TestSupport
import XCTest

final class RevSCIReconstructorTests: XCTestCase {
    func fixtureReconstructor() throws -> RevSCIReconstructor {
        let st = try SafetensorsFile.decode(SharedData.bytes("fixtures/revsci_paper_g2_nb2/weights.safetensors"))
        let weights = Dictionary(uniqueKeysWithValues: st.tensors.map { ($0.name, $0.array) })
        let config = ModelConfig(name: "fixture-g2", description: "", architecture: .init(layout: .multiGroup, numBlocks: 2, numGroups: 2), frames: 8)
        return try RevSCIReconstructor(config: config, weights: weights)
    }

    /// Snapshot + mask in, frames out: the reconstructor prepares the input exactly as the
    /// fixture did (REFERENCE.md section 2) and returns the fixture's output.
    func testReconstructsTheFixtureFromMeasurementAndMask() throws {
        let r = try fixtureReconstructor()
        let meas = try NPY.decode(SharedData.bytes("fixtures/revsci_paper_g2_nb2/meas.npy"))
        let maskArray = try NPY.decode(SharedData.bytes("fixtures/revsci_paper_g2_nb2/mask.npy"))
        let mask = try MaskStack(frames: 8, height: 24, width: 40, values: maskArray.floats())
        let video = try r.reconstruct(Snapshot(height: 24, width: 40, pixels: meas.floats()), mask: mask, context: ReconstructionContext())
        let want = try NPY.decode(SharedData.bytes("fixtures/revsci_paper_g2_nb2/output.npy")).floats()
        let err = zip(video.pixels, want).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(err, 1e-6)
    }

    func testWrongFramesOddSizesAndMissingWeightsAreExplained() throws {
        let r = try fixtureReconstructor()
        let mask4 = try MaskStack(frames: 4, height: 24, width: 40, values: [Float](repeating: 1, count: 4 * 24 * 40))
        XCTAssertThrowsError(try r.reconstruct(Snapshot(height: 24, width: 40, pixels: [Float](repeating: 0, count: 960)),
                                               mask: mask4, context: ReconstructionContext())) {
            XCTAssertTrue("\($0)".contains("expects") || "\($0)".contains("reconstructs 8"), "\($0)")
        }
        let odd = try MaskStack(frames: 8, height: 23, width: 40, values: [Float](repeating: 1, count: 8 * 23 * 40))
        XCTAssertThrowsError(try r.reconstruct(Snapshot(height: 23, width: 40, pixels: [Float](repeating: 0, count: 920)),
                                               mask: odd, context: ReconstructionContext())) { XCTAssertTrue("\($0)".contains("even"), "\($0)") }
        let config = ModelConfig(name: "bare", description: "", architecture: .init(layout: .multiGroup, numBlocks: 18), frames: 8)
        XCTAssertThrowsError(try RevSCIReconstructor.load(config: config)) { XCTAssertTrue("\($0)".contains("--weights"), "\($0)") }
        // Weights of another architecture than the config says.
        let st = try SafetensorsFile.decode(SharedData.bytes("fixtures/revsci_cacti_nb2/revsci_nb2.safetensors"))
        XCTAssertThrowsError(try RevSCIReconstructor(config: config, weights: Dictionary(uniqueKeysWithValues: st.tensors.map { ($0.name, $0.array) })))
    }

    func testRandomWeightsHaveTheArchitecturesShapes() throws {
        for arch in [ModelArchitecture(layout: .multiGroup, numBlocks: 3, numGroups: 4), .init(layout: .twoBranch, numBlocks: 2),
                     .init(layout: .twoBranch, numBlocks: 2, color: true)] {
            let net = try RevSCINetwork(weights: arch.randomWeights(seed: 5))
            XCTAssertEqual(net.blocks.count, arch.numBlocks)
            XCTAssertEqual(net.inputChannels, arch.color ? 2 : 1)
            XCTAssertEqual(net.outputChannels, arch.color ? 3 : 1)
            XCTAssertEqual(net.parameterNames, arch.parameterShapes.map(\.name))
        }
        // The published sizes (REFERENCE.md section 4).
        let paper = try RevSCINetwork(weights: ModelArchitecture(layout: .multiGroup, numBlocks: 18, numGroups: 2).randomWeights())
        XCTAssertEqual(paper.parameterCount, 2_112_353)
        XCTAssertEqual(paper.flops(frames: 8, height: 256, width: 256) / 1e9, 588.8, accuracy: 0.05)
        let cacti = try RevSCINetwork(weights: ModelArchitecture(layout: .twoBranch, numBlocks: 50).randomWeights())
        XCTAssertEqual(cacti.parameterCount, 5_655_393)
        XCTAssertEqual(cacti.flops(frames: 8, height: 256, width: 256) / 1e9, 1516.5, accuracy: 0.05)
    }

    func testTilePlanCoversTheImageWithEvenWindows() {
        let plan = TilePlan(height: 100, width: 62, core: 32, halo: 8)
        var covered = [Int](repeating: 0, count: 100 * 62)
        for t in plan.tiles {
            XCTAssertTrue(t.y0 % 2 == 0 && t.x0 % 2 == 0 && (t.y1 - t.y0) % 2 == 0 && (t.x1 - t.x0) % 2 == 0, "\(t)")
            for y in t.y0 ..< t.y1 { for x in t.x0 ..< t.x1 { covered[y * 62 + x] += 1 } }
        }
        XCTAssertFalse(covered.contains(0))
        // With an image, and a halo, in multiples of 8, every window is one too (Winograd F(4x4)
        // at the blocks' half resolution).
        for t in TilePlan(height: 512, width: 520, core: 100, halo: 32).tiles {
            XCTAssertTrue([t.y0, t.y1, t.x0, t.x1].allSatisfy { $0 % 8 == 0 }, "\(t)")
        }
        // Blend weights of overlapping tiles sum to about one.
        for y in stride(from: 0, to: 100, by: 7) {
            let s = plan.tiles.filter { $0.x0 == 0 && y >= $0.y0 && y < $0.y1 }.map { plan.rampWeight(y, $0.y0, $0.y1, 100) }.reduce(0, +)
            XCTAssertEqual(s, 1, accuracy: 1e-3, "row \(y)")
        }
    }

    /// Tiles with a halo reproduce the untiled output closely (the seams blend).
    func testTiledForwardIsCloseToUntiled() throws {
        let r = try fixtureReconstructor()
        var rng = SplitMix(seed: 9)
        let (t, h, w) = (8, 48, 64)
        let input = (0 ..< t * h * w).map { _ in rng.unit() }
        let whole = try r.network.forward(input, frames: t, height: h, width: w)
        let plan = TilePlan(height: h, width: w, core: 24, halo: 16)
        XCTAssertGreaterThan(plan.tiles.count, 4)
        let tiled = try r.network.forwardTiled(input, frames: t, plan: plan)
        let scale = whole.map(abs).max()!
        let err = zip(whole, tiled).map { abs($0 - $1) }
        XCTAssertLessThan(err.max()!, 0.05 * scale)
        XCTAssertLessThan(err.reduce(0, +) / Float(err.count), 2e-3 * scale)
    }

    /// Recycled activation storage comes back zeroed (padding included), is kept only up to the
    /// cap, and is released when recycling is turned off.
    func testRecycledActivationStorageIsZeroedAndCapped() {
        ActivationStorage.enable(maxBytes: 1 << 20)
        defer { ActivationStorage.enable(maxBytes: 0) }
        var first: Activation? = Activation(frames: 2, height: 4, width: 6, channels: 8, pad: 1)
        let address = first!.storage
        for i in 0 ..< first!.count { first!.storage[i] = Float(i + 1) }
        first = nil
        XCTAssertEqual(ActivationStorage.cachedBytes, (2 + 2) * (4 + 2) * (6 + 2) * 8 * 4)
        let second = Activation(frames: 2, height: 4, width: 6, channels: 8, pad: 1)
        XCTAssertEqual(second.storage, address, "same-size storage is reused")
        XCTAssertTrue((0 ..< second.count).allSatisfy { second.storage[$0] == 0 })
        XCTAssertEqual(ActivationStorage.cachedBytes, 0)
        var big: Activation? = Activation(frames: 8, height: 64, width: 64, channels: 32, pad: 1) // over the 1 MB cap
        big = nil
        XCTAssertNil(big)
        XCTAssertEqual(ActivationStorage.cachedBytes, 0)
        ActivationStorage.enable(maxBytes: 0)
        XCTAssertEqual(ActivationStorage.cachedBytes, 0)
    }
}
