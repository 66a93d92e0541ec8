import Foundation
import Formats
import Reconstruction
import SCICore
@testable import Training
import XCTest

final class TrainerTests: XCTestCase {
    /// A folder of two small synthetic clips (moving gradients), as the data script writes them.
    func makeData() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-train-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (k, (f, h, w)) in [(10, 20, 24), (12, 18, 18)].enumerated() {
            var px = [UInt8](repeating: 0, count: f * h * w)
            for t in 0 ..< f { for r in 0 ..< h { for c in 0 ..< w { px[(t * h + r) * w + c] = UInt8((r * 9 + c * 5 + t * 7 + k * 40) % 256) } } }
            try Data(NPY.encode(NumericArray(shape: [f, h, w], storage: .uint8(px)))).write(to: dir.appendingPathComponent("clip\(k).npy"))
        }
        return dir
    }

    func config(_ data: URL, output: URL) -> TrainConfig {
        var c = TrainConfig(name: "tiny", architecture: .init(layout: .multiGroup, numBlocks: 2, numGroups: 2), output: output.path)
        c.data = data.path
        c.crop = 16
        c.batch = 2
        c.learningRate = 1e-3
        c.steps = 100
        c.validationData = nil
        return c
    }

    func testSamplesAreDeterministicCroppedAndOnTheUnitScale() throws {
        let data = try TrainingData(directory: makeData(), frames: 8, crop: 16)
        XCTAssertEqual(data.clips.count, 2)
        XCTAssertEqual(data.windowCount, (10 - 7) + (12 - 7))
        let prepare: (Snapshot, MaskStack) throws -> [Float] = { y, m in try RevSCIReconstructor.networkInput(y, mask: m, color: false) }
        let a = try data.sample(step: 3, index: 1, seed: 7, prepare: prepare)
        let b = try data.sample(step: 3, index: 1, seed: 7, prepare: prepare)
        let c = try data.sample(step: 4, index: 1, seed: 7, prepare: prepare)
        XCTAssertEqual(a.target, b.target)
        XCTAssertEqual(a.input, b.input)
        XCTAssertNotEqual(a.target, c.target)
        XCTAssertEqual(a.target.count, 8 * 16 * 16)
        XCTAssertTrue(a.target.allSatisfy { $0 >= 0 && $0 <= 1 })
        XCTAssertTrue(Set(a.mask.values).isSubset(of: [0, 1]))
    }

    /// Shifting masks (as CACTI cameras translate one aperture) are one pattern moved by exactly
    /// one pixel per frame along one axis; "both" draws shifting and independent masks.
    func testShiftingRandomMasksTranslateOnePatternByOnePixelPerFrame() throws {
        let prepare: (Snapshot, MaskStack) throws -> [Float] = { y, m in try RevSCIReconstructor.networkInput(y, mask: m, color: false) }
        func isShifting(_ m: MaskStack) -> Bool {
            let n = 16
            func v(_ t: Int, _ r: Int, _ x: Int) -> Float { m.values[(t * n + r) * n + x] }
            for (dr, dx) in [(0, 1), (0, -1), (1, 0), (-1, 0)] {
                var ok = true
                for t in 1 ..< 8 where ok {
                    for r in 0 ..< n where ok {
                        for x in 0 ..< n where ok {
                            let (r0, x0) = (r + dr, x + dx) // frame t at (r, x) is frame t-1 at (r + dr, x + dx)
                            if r0 >= 0, r0 < n, x0 >= 0, x0 < n, v(t, r, x) != v(t - 1, r0, x0) { ok = false }
                        }
                    }
                }
                if ok { return true }
            }
            return false
        }
        let shifting = try TrainingData(directory: makeData(), frames: 8, crop: 16, randomMasks: .shifting)
        let independent = try TrainingData(directory: makeData(), frames: 8, crop: 16, randomMasks: .independent)
        let both = try TrainingData(directory: makeData(), frames: 8, crop: 16, randomMasks: .both)
        var kinds: [Bool] = []
        for step in 0 ..< 12 {
            XCTAssertTrue(isShifting(try shifting.sample(step: step, index: 0, seed: 1, prepare: prepare).mask))
            XCTAssertFalse(isShifting(try independent.sample(step: step, index: 0, seed: 1, prepare: prepare).mask))
            kinds.append(isShifting(try both.sample(step: step, index: 0, seed: 1, prepare: prepare).mask))
        }
        XCTAssertTrue(kinds.contains(true) && kinds.contains(false), "both kinds drawn: \(kinds)")
    }

    /// The camera mask family: fills across the range, gray masks with at most their level
    /// count of values, exact one-pixel shifts along rows, columns and diagonals, transmission
    /// only where drawn; and a TrainingData drawing from it.
    func testMaskFamilyCoversRealCoders() throws {
        let prepare: (Snapshot, MaskStack) throws -> [Float] = { y, _ in y.pixels }
        let family = TrainingData.MaskFamily(fill: [0.2, 0.8], gray: 0.5, levels: [4, 8], transmission: 0, shifting: 0.5)
        var rng = SeededGenerator(seed: 7)
        var fills: [Double] = [], directions = Set<String>(), grays = 0, binaries = 0
        let (t, n) = (8, 24)
        for _ in 0 ..< 200 {
            let m = TrainingData.familyMask(frames: t, size: n, family: family, using: &rng)
            XCTAssertTrue(m.values.allSatisfy { $0 >= 0 && $0 <= 1 })
            let mean = Double(m.values.reduce(0, +)) / Double(m.values.count)
            XCTAssertEqual(mean, m.fill, accuracy: 0.12, "the mask's mean follows its fill factor")
            fills.append(mean)
            let distinct = Set(m.values)
            if let levels = m.levels {
                grays += 1
                XCTAssertLessThanOrEqual(distinct.count, levels)
            } else {
                binaries += 1
                XCTAssertTrue(distinct.isSubset(of: [0, 1]))
            }
            if let shift = m.shift {
                directions.insert("\(shift.rows),\(shift.columns)")
                func v(_ f: Int, _ r: Int, _ x: Int) -> Float { m.values[(f * n + r) * n + x] }
                for f in 1 ..< t {
                    for r in 0 ..< n {
                        for x in 0 ..< n {
                            let (r0, x0) = (r + shift.rows, x + shift.columns)
                            if r0 >= 0, r0 < n, x0 >= 0, x0 < n { XCTAssertEqual(v(f, r, x), v(f - 1, r0, x0)) }
                        }
                    }
                }
            }
        }
        XCTAssertLessThan(fills.min() ?? 1, 0.3)
        XCTAssertGreaterThan(fills.max() ?? 0, 0.7)
        XCTAssertGreaterThan(grays, 50)
        XCTAssertGreaterThan(binaries, 50)
        XCTAssertEqual(directions.count, 8, "rows, columns and both diagonals, both ways: \(directions.sorted())")
        // Transmission scales the pattern smoothly into [0.6, 1].
        let lit = TrainingData.MaskFamily(fill: [0.5, 0.5], gray: 0, levels: [2], transmission: 1, shifting: 0)
        let m = TrainingData.familyMask(frames: 2, size: 32, family: lit, using: &rng)
        XCTAssertTrue(m.transmission)
        let open = m.values.filter { $0 > 0 }
        XCTAssertGreaterThanOrEqual(open.min() ?? 0, 0.6 - 1e-6)
        XCTAssertLessThan(open.min() ?? 1, 0.99)
        // A TrainingData draws its masks from the family; a bad family is refused.
        let data = try TrainingData(directory: makeData(), frames: 8, crop: 16, maskFamily: family)
        let sample = try data.sample(step: 0, index: 0, seed: 3, prepare: prepare)
        XCTAssertEqual(sample.mask.frames, 8)
        XCTAssertThrowsError(try TrainingData(directory: makeData(), frames: 8, crop: 16,
                                              maskFamily: .init(fill: [0, 1], gray: 0, levels: [1], transmission: 0, shifting: 0)))
    }

    /// Fine-tuning's pieces: a fresh run starts from given model weights (fresh optimizer),
    /// validates with another mask than the folder's mask.mat, and exports weights a model
    /// config loads.
    func testFineTuningStartsFromModelWeightsAndExportsAModel() throws {
        let data = try makeData()
        let arch = ModelArchitecture(layout: .multiGroup, numBlocks: 2, numGroups: 2)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-base-\(UUID().uuidString).safetensors")
        let baseWeights = arch.randomWeights(seed: 42)
        try Data(SafetensorsFile.encode(baseWeights.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })).write(to: base)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-ft-\(UUID().uuidString)")
        var cfg = config(data, output: out)
        cfg.initialWeights = base.path
        cfg.frames = 4
        let trainer = try Trainer(config: cfg, resume: false)
        XCTAssertEqual(trainer.step, 0)
        for (name, array) in baseWeights { XCTAssertEqual(trainer.parameters[name], array.floats(), name) }
        XCTAssertNotEqual(trainer.parameters, arch.randomWeights(seed: cfg.seed).mapValues { $0.floats() })
        XCTAssertTrue(try trainer.trainStep().isFinite)

        // Validation under a mask given apart from the scenes' folder.
        let scenes = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-val-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scenes, withIntermediateDirectories: true)
        var orig = [UInt8](repeating: 0, count: 16 * 16 * 4)
        for i in orig.indices { orig[i] = UInt8((i * 7) % 200 + 20) }
        try Data(MATFile.encode([("orig", NumericArray(shape: [16, 16, 4], storage: .uint8(orig)))], compressed: false))
            .write(to: scenes.appendingPathComponent("ramp_cacti.mat"))
        let maskURL = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-cam-\(UUID().uuidString).mat")
        var rng = SeededGenerator(seed: 5)
        let camera = (0 ..< 16 * 16 * 4).map { _ in UInt8(rng.next() & 1) }
        try Data(MATFile.encode([("mask", NumericArray(shape: [16, 16, 4], storage: .uint8(camera)))], compressed: false)).write(to: maskURL)
        var validating = cfg
        validating.validationData = scenes.path
        validating.validationMask = maskURL.path
        let scored = try Trainer(config: validating, resume: true)
        let results = try scored.validate()
        XCTAssertEqual(results.map(\.scene), ["ramp"])
        XCTAssertTrue(results[0].meanPSNR.isFinite)

        let exported = out.appendingPathComponent("weights.safetensors")
        try trainer.exportWeights(to: exported, averaged: false)
        let model = ModelConfig(name: "ft", description: "", architecture: arch, frames: 4, weights: exported.path)
        XCTAssertNoThrow(try RevSCIReconstructor.load(config: model, weightsOverride: exported))
        var wrong = cfg
        wrong.architecture = ModelArchitecture(layout: .multiGroup, numBlocks: 3, numGroups: 2)
        wrong.output = out.appendingPathComponent("other").path
        XCTAssertThrowsError(try Trainer(config: wrong, resume: false)) { XCTAssertTrue("\($0)".contains("do not fit"), "\($0)") }
    }

    func testTrainingReducesLossAndResumesFromCheckpoint() throws {
        let data = try makeData()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-run-\(UUID().uuidString)")
        let trainer = try Trainer(config: config(data, output: out), resume: false)
        var losses: [Double] = []
        for _ in 0 ..< 12 { losses.append(try trainer.trainStep()) }
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
        XCTAssertLessThan(losses.suffix(3).reduce(0, +), losses.prefix(3).reduce(0, +), "loss should fall: \(losses)")
        try trainer.saveCheckpoint()
        let next = try trainer.trainStep()

        // A new process resuming from the checkpoint takes the same next step.
        let resumed = try Trainer(config: config(data, output: out), resume: true)
        XCTAssertEqual(resumed.step, 12)
        XCTAssertEqual(resumed.optimizer.step, 12)
        let again = try resumed.trainStep()
        XCTAssertEqual(again, next, accuracy: 1e-9 * max(1, next))

        // A fresh machine: an empty run folder seeded from a snapshot folder (initial_checkpoint),
        // whose log it continues rather than restarting.
        let history = Data("{\"step\":12}\n".utf8)
        try history.write(to: out.appendingPathComponent("log.jsonl"))
        var fresh = config(data, output: out.appendingPathComponent("elsewhere"))
        fresh.initialCheckpoint = out.path
        let seeded = try Trainer(config: fresh, resume: true)
        XCTAssertEqual(seeded.step, 12)
        XCTAssertEqual(try seeded.trainStep(), next, accuracy: 1e-9 * max(1, next))
        seeded.appendLog(["step": 13])
        let seededLog = try String(contentsOf: seeded.logURL, encoding: .utf8)
        XCTAssertEqual(seededLog, "{\"step\":12}\n{\"step\":13}\n")
    }

    /// Motion augmentation: windows at frame strides up to frame_stride (never past the file's
    /// end), held still frames, and a rigid object pasted over them that moves only at speed > 0.
    func testMotionAugmentationStridesHoldsAndAddsMovingObjects() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-motion-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Clip 0: every pixel of frame f is 3 f (strides show in the values); clip 1: all 255.
        let (f, h, w) = (30, 20, 20)
        let ramp = (0 ..< f * h * w).map { UInt8(3 * ($0 / (h * w))) }
        try Data(NPY.encode(NumericArray(shape: [f, h, w], storage: .uint8(ramp)))).write(to: dir.appendingPathComponent("a.npy"))
        try Data(NPY.encode(NumericArray(shape: [f, h, w], storage: .uint8([UInt8](repeating: 255, count: f * h * w))))).write(to: dir.appendingPathComponent("b.npy"))
        let prepare: (Snapshot, MaskStack) throws -> [Float] = { y, _ in y.pixels }
        let plane = 16 * 16
        func frames(_ v: [Float]) -> [[Float]] { (0 ..< 8).map { Array(v[$0 * plane ..< ($0 + 1) * plane]) } }

        var strides = Set<Int>()
        let strided = try TrainingData(directory: dir, frames: 8, crop: 16, motion: .init(frameStride: 3, still: 0, object: 0, objectSpeed: 0))
        for i in 0 ..< 60 {
            let v = frames(try strided.sample(step: i, index: 0, seed: 1, prepare: prepare).target)
            guard v[0][0] != 1, v[1][0] != 1 else { continue }  // clip b
            let step = Int((abs(v[1][0] - v[0][0]) * 255 / 3).rounded())
            for t in 1 ..< 8 { XCTAssertEqual(abs(v[t][0] - v[t - 1][0]) * 255 / 3, Float(step), accuracy: 1e-3) }
            strides.insert(step)
        }
        XCTAssertEqual(strides, [1, 2, 3])

        let held = try TrainingData(directory: dir, frames: 8, crop: 16, motion: .init(frameStride: 1, still: 1, object: 0, objectSpeed: 0))
        for i in 0 ..< 10 {
            let v = frames(try held.sample(step: i, index: 0, seed: 2, prepare: prepare).target)
            XCTAssertTrue(v.allSatisfy { $0 == v[0] })
        }

        // Held frames of clip a under objects (of clip b: 1s): two values in all, moving only when speed > 0.
        for speed in [0.0, 4.0] {
            let objects = try TrainingData(directory: dir, frames: 8, crop: 16, motion: .init(frameStride: 1, still: 1, object: 1, objectSpeed: speed))
            var seen = 0, moved = 0
            for i in 0 ..< 40 {
                let v = frames(try objects.sample(step: i, index: 0, seed: 3, prepare: prepare).target)
                let background = v[0].filter { $0 < 1 }
                guard !background.isEmpty else { continue }
                XCTAssertLessThanOrEqual(Set(v.joined()).count, 2, "only the held frame and the object (one frame of one clip)")
                if v.contains(where: { $0.contains(1) }) { seen += 1 }
                if v.contains(where: { $0 != v[0] }) { moved += 1 }
            }
            XCTAssertGreaterThan(seen, 0)
            if speed == 0 { XCTAssertEqual(moved, 0) } else { XCTAssertGreaterThan(moved, 0) }
        }
        XCTAssertThrowsError(try TrainingData(directory: dir, frames: 8, crop: 16, motion: .init(frameStride: 0, still: 0, object: 0, objectSpeed: 0))) {
            XCTAssertTrue("\($0)".contains("frame_stride"), "\($0)")
        }
    }

    /// Zoom augmentation: a window crop/z wide enlarged bilinearly to the crop. On a clip that
    /// ramps 4/255 per column, a zoomed sample ramps 4/z per pixel (z in [1, max]; bilinear
    /// reads of a ramp are exact away from the clamped edges); without zoom every step is 4.
    func testZoomAugmentationEnlargesAWindowSmoothly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-zoom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let (f, h, w) = (10, 40, 40)
        let ramp = (0 ..< f * h * w).map { UInt8(4 * ($0 % w)) }
        try Data(NPY.encode(NumericArray(shape: [f, h, w], storage: .uint8(ramp)))).write(to: dir.appendingPathComponent("a.npy"))
        let prepare: (Snapshot, MaskStack) throws -> [Float] = { y, _ in y.pixels }
        let crop = 32
        func slopes(_ data: TrainingData, step: Int) throws -> [Float] {
            let v = try data.sample(step: step, index: 0, seed: 5, prepare: prepare).target
            var out: [Float] = []
            for r in [0, crop / 2, crop - 1] {
                for x in 3 ..< crop - 3 { out.append(abs(v[r * crop + x] - v[r * crop + x - 1]) * 255) }
                // Rows of a column ramp are identical: zoom must not mix rows of different columns.
                for x in 0 ..< crop { XCTAssertEqual(v[r * crop + x], v[x], accuracy: 1e-6) }
            }
            return out
        }
        let plain = try TrainingData(directory: dir, frames: 8, crop: crop)
        let clipValues = Set((0 ..< w).map { Float(4 * $0) / 255 })
        for i in 0 ..< 5 {
            for s in try slopes(plain, step: i) { XCTAssertEqual(s, 4, accuracy: 1e-4) }
            // Unzoomed samples are the clip's own pixels, exactly.
            let v = try plain.sample(step: i, index: 0, seed: 5, prepare: prepare).target
            XCTAssertTrue(v.allSatisfy { clipValues.contains($0) })
        }

        let zoomed = try TrainingData(directory: dir, frames: 8, crop: crop, zoom: .init(probability: 1, max: 4))
        var factors: [Float] = []
        for i in 0 ..< 40 {
            let s = try slopes(zoomed, step: i)
            for value in s { XCTAssertEqual(value, s[0], accuracy: 1e-3, "one zoom factor per sample") }
            XCTAssertGreaterThanOrEqual(s[0], 1 - 1e-3)
            XCTAssertLessThanOrEqual(s[0], 4 + 1e-3)
            factors.append(4 / s[0])
        }
        XCTAssertGreaterThan(factors.max()!, 2.5)
        XCTAssertLessThan(factors.min()!, 1.5)

        let sometimes = try TrainingData(directory: dir, frames: 8, crop: crop, zoom: .init(probability: 0.5, max: 4))
        let unzoomed = try (0 ..< 40).filter { abs(try slopes(sometimes, step: $0)[0] - 4) < 1e-4 }.count
        XCTAssertTrue((8 ... 32).contains(unzoomed), "about half the samples keep the clip's scale: \(unzoomed) of 40")
        XCTAssertThrowsError(try TrainingData(directory: dir, frames: 8, crop: crop, zoom: .init(probability: 0.5, max: 0.5))) {
            XCTAssertTrue("\($0)".contains("zoom"), "\($0)")
        }
    }

    /// With ema_decay the run keeps average += (1 - decay) (weights - average) from its starting
    /// weights, checkpoints it and resumes it; without, it keeps and writes none.
    func testWeightAverageFollowsTheWeightsAndResumes() throws {
        let data = try makeData()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-ema-\(UUID().uuidString)")
        var cfg = config(data, output: out)
        cfg.emaDecay = 0.75
        let trainer = try Trainer(config: cfg, resume: false)
        var expected = trainer.parameters
        XCTAssertEqual(trainer.average, expected)
        for _ in 0 ..< 4 {
            _ = try trainer.trainStep()
            for (name, p) in trainer.parameters { expected[name] = zip(expected[name]!, p).map { a, w in a + 0.25 * (w - a) } }
        }
        let average = try XCTUnwrap(trainer.average)
        var lag: Float = 0
        for (name, e) in expected {
            for (a, b) in zip(average[name]!, e) { XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(b))) }
            lag = max(lag, zip(average[name]!, trainer.parameters[name]!).map { abs($0 - $1) }.max()!)
        }
        XCTAssertGreaterThan(lag, 0, "the average lags the weights")
        try trainer.saveCheckpoint()
        let resumed = try Trainer(config: cfg, resume: true)
        XCTAssertEqual(resumed.average, average)
        XCTAssertNotEqual(resumed.weightArrays(averaged: true)["conv1.0.weight"]?.floats(), resumed.weightArrays()["conv1.0.weight"]?.floats())

        // A fresh machine seeded from the snapshot folder takes the average along.
        var fresh = cfg
        fresh.output = out.appendingPathComponent("elsewhere").path
        fresh.initialCheckpoint = out.path
        XCTAssertEqual(try Trainer(config: fresh, resume: true).average, average)

        let plainOut = out.appendingPathComponent("plain")
        let plain = try Trainer(config: config(data, output: plainOut), resume: false)
        _ = try plain.trainStep()
        try plain.saveCheckpoint()
        XCTAssertNil(plain.average)
        XCTAssertFalse(FileManager.default.fileExists(atPath: plain.averageURL.path))

        let bad = out.appendingPathComponent("c.json")
        try Data(#"{"name": "x", "architecture": {"layout": "multigroup", "num_block": 2, "num_group": 2, "color": false}, "output": "o", "ema_decay": 1}"#.utf8).write(to: bad)
        XCTAssertThrowsError(try TrainConfig.load(bad)) { XCTAssertTrue("\($0)".contains("ema_decay"), "\($0)") }
    }

    /// A fixed mask is cut at a random window; with mask_fraction below 1 the other samples draw
    /// fresh random masks, and a fraction outside [0, 1] is refused.
    func testFixedMaskFractionMixesTheCameraMaskWithRandomOnes() throws {
        let prepare: (Snapshot, MaskStack) throws -> [Float] = { y, m in try RevSCIReconstructor.networkInput(y, mask: m, color: false) }
        let (n, crop) = (24, 16)
        var rng = SeededGenerator(seed: 5)
        let camera = try MaskStack(frames: 8, height: n, width: n, values: (0 ..< 8 * n * n).map { _ in Bool.random(using: &rng) ? 1 : 0 })
        func isWindowOfCamera(_ m: MaskStack) -> Bool {
            for my in 0 ... n - crop { for mx in 0 ... n - crop {
                var same = true
                for t in 0 ..< 8 where same { for r in 0 ..< crop where same { for x in 0 ..< crop where same {
                    same = m.values[(t * crop + r) * crop + x] == camera.values[(t * n + my + r) * n + mx + x]
                } } }
                if same { return true }
            } }
            return false
        }
        let dir = try makeData()
        let always = try TrainingData(directory: dir, frames: 8, crop: crop, fixedMask: camera)
        let half = try TrainingData(directory: dir, frames: 8, crop: crop, fixedMask: camera, fixedMaskFraction: 0.5, randomMasks: .shifting)
        var fromCamera = 0
        for step in 0 ..< 40 {
            XCTAssertTrue(isWindowOfCamera(try always.sample(step: step, index: 0, seed: 3, prepare: prepare).mask))
            if isWindowOfCamera(try half.sample(step: step, index: 0, seed: 3, prepare: prepare).mask) { fromCamera += 1 }
        }
        XCTAssertTrue((8 ... 32).contains(fromCamera), "about half of 40 samples use the camera mask: \(fromCamera)")
        XCTAssertThrowsError(try TrainingData(directory: dir, frames: 8, crop: crop, fixedMask: camera, fixedMaskFraction: 1.5)) {
            XCTAssertTrue("\($0)".contains("fraction"), "\($0)")
        }
    }

    /// Exposure augmentation inverts and scales the sample's frames (clipped to 1) and simulates
    /// the snapshot from the changed frames; the crop and mask stay those of the plain sample.
    func testExposureAugmentationScalesInvertsAndClipsTheFrames() throws {
        let prepare: (Snapshot, MaskStack) throws -> [Float] = { y, m in try RevSCIReconstructor.networkInput(y, mask: m, color: false) }
        let dir = try makeData()
        let plain = try TrainingData(directory: dir, frames: 8, crop: 16).sample(step: 2, index: 0, seed: 9, prepare: prepare)
        let doubled = try TrainingData(directory: dir, frames: 8, crop: 16, exposure: .init(gain: [2, 2], invert: 0))
            .sample(step: 2, index: 0, seed: 9, prepare: prepare)
        let inverted = try TrainingData(directory: dir, frames: 8, crop: 16, exposure: .init(gain: [1, 1], invert: 1))
            .sample(step: 2, index: 0, seed: 9, prepare: prepare)
        XCTAssertEqual(doubled.mask.values, plain.mask.values)
        XCTAssertEqual(doubled.target, plain.target.map { min(1, $0 * 2) })
        XCTAssertTrue(doubled.target.contains(1) && plain.target.contains { $0 > 0.5 && $0 < 1 }, "some pixels saturate")
        XCTAssertEqual(inverted.target, plain.target.map { 1 - $0 })
        XCTAssertNotEqual(doubled.input, plain.input, "the snapshot is simulated from the augmented frames")
        for bad in [TrainingData.Exposure(gain: [1.5, 0.5], invert: 0), .init(gain: [1], invert: 0), .init(gain: [0.5, 1], invert: 2)] {
            XCTAssertThrowsError(try TrainingData(directory: dir, frames: 8, crop: 16, exposure: bad)) {
                XCTAssertTrue("\($0)".contains("exposure"), "\($0)")
            }
        }
    }

    func testBadConfigsAndDataAreExplained() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try TrainingData(directory: empty, frames: 8, crop: 16)) { XCTAssertTrue("\($0)".contains("build_training_data"), "\($0)") }
        let bad = empty.appendingPathComponent("c.json")
        try Data(#"{"name": "x", "architecture": {"layout": "multigroup", "num_block": 2, "num_group": 2, "color": false}, "output": "o", "crop": 15}"#.utf8).write(to: bad)
        XCTAssertThrowsError(try TrainConfig.load(bad)) { XCTAssertTrue("\($0)".contains("even"), "\($0)") }
        try Data(#"{"name": "x", "architecture": {"layout": "multigroup", "num_block": 2, "num_group": 2, "color": false}, "output": "o", "mask_fraction": 0.5}"#.utf8).write(to: bad)
        XCTAssertThrowsError(try TrainConfig.load(bad)) { XCTAssertTrue("\($0)".contains("mask_fraction needs a fixed mask"), "\($0)") }
    }
}
