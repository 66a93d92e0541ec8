import Foundation
import Formats
import Reconstruction
import SCICore

/// Training clips from a folder of uint8 (F, H, W) .npy files (scripts/build_training_data.py
/// writes them: cut-free video segments and moving crops of stills). A sample is T consecutive
/// frames of one file, a random crop, random flips, on [0, 1]; with either a fresh random binary
/// mask (so the model works with any camera's random mask) or a fixed mask (to fine-tune for one
/// camera). Deterministic for a given seed and step, so a resumed run draws the same samples.
public final class TrainingData: @unchecked Sendable {
    /// How fresh random masks are drawn. Real CACTI cameras translate one coded aperture during
    /// the exposure, so frame t's mask is frame 0's shifted by t pixels (the benchmark's
    /// mask.mat is exactly that: a horizontal 1-pixel shift per frame); other coded cameras
    /// (DMD, LCoS) show an independent pattern per frame.
    public enum RandomMasks: String, Codable, Sendable {
        /// Independent Bernoulli(1/2) pixels in every frame.
        case independent
        /// One Bernoulli(1/2) pattern shifted by one pixel per frame, along a random axis and direction.
        case shifting
        /// Either kind, half of the samples each.
        case both
    }

    /// Exposure augmentation: cameras record the same scenes brighter or darker, with saturated
    /// highlights, while the clip media are mostly mid-toned. Each sample is inverted (1 - x) with
    /// probability `invert`, then scaled by a gain drawn uniformly from `gain` and clipped to 1.
    public struct Exposure: Codable, Sendable, Equatable {
        public var gain: [Double]
        public var invert: Double

        public init(gain: [Double], invert: Double) {
            self.gain = gain
            self.invert = invert
        }

        var isValid: Bool { gain.count == 2 && gain[0] > 0 && gain[0] <= gain[1] && (0 ... 1).contains(invert) }
    }

    public struct Clip {
        public let name: String
        public let frames: Int
        public let height: Int
        public let width: Int
        let pixels: [UInt8]
    }

    public let clips: [Clip]
    public let frames: Int
    public let crop: Int
    /// A fixed mask (T, H, W) on [0, 1], or nil for a fresh random one per sample.
    public let fixedMask: MaskStack?
    /// The kind of fresh random masks (when there is no fixed mask, or a sample does not use it).
    public let randomMasks: RandomMasks
    /// Share of samples that use the fixed mask (the rest draw fresh random masks): below 1, a
    /// model learns one camera's mask without forgetting masks in general.
    public let fixedMaskFraction: Double
    /// Exposure augmentation, or nil for the clips' own intensities.
    public let exposure: Exposure?
    /// Cumulative counts of valid T-frame windows, for sampling files in proportion to them.
    let cumulativeWindows: [Int]

    public init(directory: URL, frames: Int, crop: Int, fixedMask: MaskStack? = nil, fixedMaskFraction: Double = 1,
                randomMasks: RandomMasks = .independent, exposure: Exposure? = nil) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".npy") }.sorted()
        var clips: [Clip] = []
        for name in names {
            let a = try NPY.decode([UInt8](try Data(contentsOf: directory.appendingPathComponent(name))))
            guard a.shape.count == 3, case .uint8(let px) = a.storage else {
                throw SCIError("training file \(name) is not a uint8 (F, H, W) array (shape \(a.shape), \(a.elementTypeName))")
            }
            guard a.shape[0] >= frames, a.shape[1] >= crop, a.shape[2] >= crop else { continue }
            clips.append(Clip(name: name, frames: a.shape[0], height: a.shape[1], width: a.shape[2], pixels: px))
        }
        guard !clips.isEmpty else {
            throw SCIError("no usable training clips (uint8 (F, H, W) .npy with F >= \(frames) and H, W >= \(crop)) in \(directory.path): run scripts/build_training_data.py")
        }
        if let fixedMask, fixedMask.frames != frames || fixedMask.height < crop || fixedMask.width < crop {
            throw SCIError("the fixed training mask must have \(frames) frames and be at least \(crop)x\(crop)")
        }
        self.clips = clips
        self.frames = frames
        self.crop = crop
        self.fixedMask = fixedMask
        guard (0 ... 1).contains(fixedMaskFraction) else { throw SCIError("the fixed-mask fraction must lie in [0, 1], got \(fixedMaskFraction)") }
        self.randomMasks = randomMasks
        self.fixedMaskFraction = fixedMaskFraction
        if let exposure, !exposure.isValid {
            throw SCIError("exposure augmentation needs gain [min, max] with 0 < min <= max and invert in [0, 1], got gain \(exposure.gain), invert \(exposure.invert)")
        }
        self.exposure = exposure
        var total = 0
        cumulativeWindows = clips.map { total += $0.frames - frames + 1; return total }
    }

    public var windowCount: Int { cumulativeWindows.last ?? 0 }

    /// Sample `index` of step `step`: (network input channels, target video), both channel-major.
    public func sample(step: Int, index: Int, seed: UInt64, prepare: (Snapshot, MaskStack) throws -> [Float]) throws -> (input: [Float], target: [Float], mask: MaskStack) {
        var rng = SeededGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(step) &* 1_000_003 &+ UInt64(index))
        let pick = Int.random(in: 0 ..< windowCount, using: &rng)
        let c = cumulativeWindows.firstIndex { $0 > pick }!
        let clip = clips[c]
        let start = pick - (c == 0 ? 0 : cumulativeWindows[c - 1])
        let y0 = Int.random(in: 0 ... clip.height - crop, using: &rng), x0 = Int.random(in: 0 ... clip.width - crop, using: &rng)
        let flipH = Bool.random(using: &rng), flipV = Bool.random(using: &rng), reverseTime = Bool.random(using: &rng)
        var video = [Float](repeating: 0, count: frames * crop * crop)
        for t in 0 ..< frames {
            let ft = start + (reverseTime ? frames - 1 - t : t)
            for r in 0 ..< crop {
                let sr = y0 + (flipV ? crop - 1 - r : r)
                let src = (ft * clip.height + sr) * clip.width + x0
                for x in 0 ..< crop {
                    let sx = flipH ? crop - 1 - x : x
                    video[(t * crop + r) * crop + x] = Float(clip.pixels[src + sx]) / 255
                }
            }
        }
        let mask: MaskStack
        // Drawn only when it decides something, so runs without a fixed mask or a fraction keep their sample streams.
        if let fixedMask, fixedMaskFraction >= 1 || Double.random(in: 0 ..< 1, using: &rng) < fixedMaskFraction {
            let my = Int.random(in: 0 ... fixedMask.height - crop, using: &rng), mx = Int.random(in: 0 ... fixedMask.width - crop, using: &rng)
            var values = [Float](repeating: 0, count: frames * crop * crop)
            for t in 0 ..< frames { for r in 0 ..< crop { for x in 0 ..< crop {
                values[(t * crop + r) * crop + x] = fixedMask.values[(t * fixedMask.height + my + r) * fixedMask.width + mx + x]
            } } }
            mask = try MaskStack(frames: frames, height: crop, width: crop, values: values)
        } else {
            let shifting = randomMasks == .shifting || (randomMasks == .both && Bool.random(using: &rng))
            mask = try MaskStack(frames: frames, height: crop, width: crop,
                                 values: shifting ? Self.shiftingMask(frames: frames, size: crop, using: &rng)
                                     : (0 ..< frames * crop * crop).map { _ in Bool.random(using: &rng) ? 1 : 0 })
        }
        if let exposure {
            let invert = Double.random(in: 0 ..< 1, using: &rng) < exposure.invert
            let gain = Float(Double.random(in: exposure.gain[0] ... exposure.gain[1], using: &rng))
            for i in video.indices { video[i] = min(1, (invert ? 1 - video[i] : video[i]) * gain) }
        }
        let truth = try Video(frames: frames, height: crop, width: crop, pixels: video)
        let y = try SensingModel(mask: mask).measure(truth)
        return (try prepare(y, mask), video, mask)
    }

    /// (T, size, size) values of one random binary pattern, frame t shifted by t pixels along a
    /// random axis in a random direction: mask_t(r, x) = base(r, x + d t) (or along rows).
    static func shiftingMask(frames: Int, size: Int, using rng: inout SeededGenerator) -> [Float] {
        let span = size + frames - 1
        let base = (0 ..< span * span).map { _ in Bool.random(using: &rng) ? Float(1) : 0 }
        let alongRows = Bool.random(using: &rng), forward = Bool.random(using: &rng)
        var values = [Float](repeating: 0, count: frames * size * size)
        for t in 0 ..< frames {
            let offset = forward ? t : frames - 1 - t
            for r in 0 ..< size {
                for x in 0 ..< size {
                    values[(t * size + r) * size + x] = alongRows ? base[(r + offset) * span + x] : base[r * span + x + offset]
                }
            }
        }
        return values
    }
}
