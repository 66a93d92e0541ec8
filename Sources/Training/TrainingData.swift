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

    /// Motion augmentation: the clip media move slowly and everywhere at once (stills pan at
    /// 0.3-3 px/frame, the videos' cameras mostly pan), while benchmark and lab scenes often hold
    /// a still background with one fast object (Drop), or limbs moving many pixels per frame
    /// (Runner). `frameStride`: a window takes every k-th frame, k uniform in 1...frameStride
    /// (faster motion, never across a cut since files are cut-free). `still`: probability that
    /// the window's first frame is held for all T frames. `object`: probability that a rigid
    /// elliptical patch of another clip crosses the crop at up to `objectSpeed` px/frame.
    public struct Motion: Codable, Sendable, Equatable {
        public var frameStride: Int
        public var still: Double
        public var object: Double
        public var objectSpeed: Double

        public init(frameStride: Int, still: Double, object: Double, objectSpeed: Double) {
            self.frameStride = frameStride
            self.still = still
            self.object = object
            self.objectSpeed = objectSpeed
        }

        enum CodingKeys: String, CodingKey {
            case still, object
            case frameStride = "frame_stride", objectSpeed = "object_speed"
        }

        var isValid: Bool { frameStride >= 1 && (0 ... 1).contains(still) && (0 ... 1).contains(object) && objectSpeed >= 0 && objectSpeed <= 64 }
    }

    /// Zoom augmentation: the clip media are detailed (median gradient about 4/255 per pixel,
    /// a quarter of pixels flat) while close-up lab scenes are smooth (Drop: median 1/255, over
    /// half flat), where an under-trained network paints the mask's texture into flat areas.
    /// With probability `probability` a sample reads a window crop/z pixels wide and enlarges it
    /// bilinearly to the crop, z uniform in [1, `max`]: the same scene seen closer (smoother, and
    /// moving z times faster in pixels).
    public struct Zoom: Codable, Sendable, Equatable {
        public var probability: Double
        public var max: Double

        public init(probability: Double, max: Double) {
            self.probability = probability
            self.max = max
        }

        var isValid: Bool { (0 ... 1).contains(probability) && max >= 1 && max <= 16 }
    }

    /// The masks of real coded-aperture cameras, for a network that works on a lab's own camera:
    /// per sample a fill factor drawn from `fill`; binary, or (with probability `gray`) gray
    /// values quantised to a level count drawn from `levels`; times (with probability
    /// `transmission`) a smooth per-pixel transmission between 0.6 and 1 shared by every frame
    /// (the optics); independent per frame, or (with probability `shifting`) one pattern moving
    /// one pixel per frame along a row, a column or a diagonal, either way.
    public struct MaskFamily: Codable, Sendable, Equatable {
        public var fill: [Double]
        public var gray: Double
        public var levels: [Int]
        public var transmission: Double
        public var shifting: Double

        public init(fill: [Double], gray: Double, levels: [Int], transmission: Double, shifting: Double) {
            self.fill = fill
            self.gray = gray
            self.levels = levels
            self.transmission = transmission
            self.shifting = shifting
        }

        var isValid: Bool {
            fill.count == 2 && fill[0] > 0 && fill[0] <= fill[1] && fill[1] < 1
                && [gray, transmission, shifting].allSatisfy { (0 ... 1).contains($0) }
                && !levels.isEmpty && levels.allSatisfy { (2 ... 256).contains($0) }
        }
    }

    /// One mask drawn from a `MaskFamily`, with what was drawn (tests and logs read it).
    public struct FamilyMask {
        public var values: [Float]
        public var fill: Double
        /// Gray levels (nil: binary).
        public var levels: Int?
        /// Pixels per frame the pattern moves (rows, columns); nil: independent frames.
        public var shift: (rows: Int, columns: Int)?
        public var transmission: Bool
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
    /// When set, fresh random masks come from this family instead of `randomMasks`.
    public let maskFamily: MaskFamily?
    /// Share of samples that use the fixed mask (the rest draw fresh random masks): below 1, a
    /// model learns one camera's mask without forgetting masks in general.
    public let fixedMaskFraction: Double
    /// Exposure augmentation, or nil for the clips' own intensities.
    public let exposure: Exposure?
    /// Motion augmentation, or nil for the clips' own motion.
    public let motion: Motion?
    /// Zoom augmentation, or nil for the clips' own scale.
    public let zoom: Zoom?
    /// Cumulative counts of valid T-frame windows, for sampling files in proportion to them.
    let cumulativeWindows: [Int]

    public init(directory: URL, frames: Int, crop: Int, fixedMask: MaskStack? = nil, fixedMaskFraction: Double = 1,
                randomMasks: RandomMasks = .independent, maskFamily: MaskFamily? = nil,
                exposure: Exposure? = nil, motion: Motion? = nil, zoom: Zoom? = nil) throws {
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
        if let maskFamily, !maskFamily.isValid {
            throw SCIError("mask_family needs fill [min, max] with 0 < min <= max < 1, gray, transmission and shifting in [0, 1], and levels in 2...256, got \(maskFamily)")
        }
        self.maskFamily = maskFamily
        self.fixedMaskFraction = fixedMaskFraction
        if let exposure, !exposure.isValid {
            throw SCIError("exposure augmentation needs gain [min, max] with 0 < min <= max and invert in [0, 1], got gain \(exposure.gain), invert \(exposure.invert)")
        }
        self.exposure = exposure
        if let motion, !motion.isValid {
            throw SCIError("motion augmentation needs frame_stride >= 1, still and object in [0, 1] and object_speed in [0, 64], got \(motion)")
        }
        self.motion = motion
        if let zoom, !zoom.isValid {
            throw SCIError("zoom augmentation needs probability in [0, 1] and max in [1, 16], got \(zoom)")
        }
        self.zoom = zoom
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
        var start = pick - (c == 0 ? 0 : cumulativeWindows[c - 1])
        // Drawn only with zoom augmentation, so runs without it keep their sample streams.
        var scale = 1.0
        if let zoom, Double.random(in: 0 ..< 1, using: &rng) < zoom.probability {
            scale = Double.random(in: 1 ... zoom.max, using: &rng)
        }
        // The source window: crop/scale pixels, at least 2 so that bilinear reads have neighbours.
        let window = max(2, Int((Double(crop) / scale).rounded(.up)))
        let y0 = Int.random(in: 0 ... clip.height - window, using: &rng), x0 = Int.random(in: 0 ... clip.width - window, using: &rng)
        let flipH = Bool.random(using: &rng), flipV = Bool.random(using: &rng), reverseTime = Bool.random(using: &rng)
        // Drawn only with motion augmentation, so runs without it keep their sample streams.
        var stride = 1, still = false
        if let motion {
            stride = max(1, min(Int.random(in: 1 ... motion.frameStride, using: &rng), (clip.frames - 1) / max(frames - 1, 1)))
            start = min(start, clip.frames - 1 - (frames - 1) * stride)
            still = Double.random(in: 0 ..< 1, using: &rng) < motion.still
        }
        var video = [Float](repeating: 0, count: frames * crop * crop)
        // Pixel centres of the enlarged crop mapped back into the window, clamped to it (at scale 1
        // the weights are 0 and 1: the clip's own pixels, exactly).
        let taps = (0 ..< crop).map { i -> (Int, Int, Float) in
            let u = min(max((Double(i) + 0.5) / scale - 0.5, 0), Double(window - 1))
            let lo = min(Int(u), window - 2)
            return (lo, lo + 1, Float(u - Double(lo)))
        }
        for t in 0 ..< frames {
            let ft = still ? start : start + (reverseTime ? frames - 1 - t : t) * stride
            let plane = ft * clip.height * clip.width
            for r in 0 ..< crop {
                let (r0, r1, fr) = taps[flipV ? crop - 1 - r : r]
                let row0 = plane + (y0 + r0) * clip.width + x0, row1 = plane + (y0 + r1) * clip.width + x0
                for x in 0 ..< crop {
                    let (c0, c1, fc) = taps[flipH ? crop - 1 - x : x]
                    let top = Float(clip.pixels[row0 + c0]) * (1 - fc) + Float(clip.pixels[row0 + c1]) * fc
                    let bottom = Float(clip.pixels[row1 + c0]) * (1 - fc) + Float(clip.pixels[row1 + c1]) * fc
                    video[(t * crop + r) * crop + x] = (top * (1 - fr) + bottom * fr) / 255
                }
            }
        }
        if let motion, Double.random(in: 0 ..< 1, using: &rng) < motion.object {
            addMovingObject(to: &video, speed: motion.objectSpeed, using: &rng)
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
        } else if let maskFamily {
            mask = try MaskStack(frames: frames, height: crop, width: crop,
                                 values: Self.familyMask(frames: frames, size: crop, family: maskFamily, using: &rng).values)
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

    /// Pastes a rigid ellipse cut from a random frame of a random clip over every frame of
    /// `video`, translated by v (t - (T-1)/2) pixels in frame t: a foreground object crossing
    /// the crop at a constant velocity |v| <= speed, in front of whatever the window shows.
    func addMovingObject(to video: inout [Float], speed: Double, using rng: inout SeededGenerator) {
        let source = clips[Int.random(in: 0 ..< clips.count, using: &rng)]
        let frame = Int.random(in: 0 ..< source.frames, using: &rng)
        let sy = Int.random(in: 0 ... source.height - crop, using: &rng), sx = Int.random(in: 0 ... source.width - crop, using: &rng)
        // Semi-axes between a twelfth and a third of the crop, centred anywhere in it.
        let side = Double(crop)
        let a = Double.random(in: side / 12 ... side / 3, using: &rng), b = Double.random(in: side / 12 ... side / 3, using: &rng)
        let angle = Double.random(in: 0 ..< .pi, using: &rng)
        let cy = Double.random(in: 0 ..< side, using: &rng), cx = Double.random(in: 0 ..< side, using: &rng)
        let v = Double.random(in: 0 ... speed, using: &rng), direction = Double.random(in: 0 ..< 2 * .pi, using: &rng)
        let (cosA, sinA) = (cos(angle), sin(angle))
        for t in 0 ..< frames {
            let shift = Double(t) - Double(frames - 1) / 2
            let dy = Int((v * sin(direction) * shift).rounded()), dx = Int((v * cos(direction) * shift).rounded())
            for r in 0 ..< crop {
                for x in 0 ..< crop {
                    // The object's own coordinates: where this pixel was at the window's centre time.
                    let oy = r - dy, ox = x - dx
                    let ey = Double(oy) - cy, ex = Double(ox) - cx
                    let u = (ex * cosA + ey * sinA) / a, w = (ey * cosA - ex * sinA) / b
                    guard u * u + w * w <= 1 else { continue }
                    let py = min(max(sy + oy, 0), source.height - 1), px = min(max(sx + ox, 0), source.width - 1)
                    video[(t * crop + r) * crop + x] = Float(source.pixels[(frame * source.height + py) * source.width + px]) / 255
                }
            }
        }
    }

    /// (T, size, size) values of one mask of `family` (see `MaskFamily`).
    public static func familyMask(frames: Int, size: Int, family: MaskFamily, using rng: inout SeededGenerator) -> FamilyMask {
        let fill = Double.random(in: family.fill[0] ... family.fill[1], using: &rng)
        let levels: Int? = Double.random(in: 0 ..< 1, using: &rng) < family.gray
            ? family.levels[Int.random(in: 0 ..< family.levels.count, using: &rng)] : nil
        // A pixel's value: binary with P(1) = fill, or a quantised gray value with mean near fill
        // (uniform on [0, 2 fill], or on [2 fill - 1, 1] above one half).
        func pixel(_ rng: inout SeededGenerator) -> Float {
            guard let levels else { return Double.random(in: 0 ..< 1, using: &rng) < fill ? 1 : 0 }
            let low = max(0, 2 * fill - 1), high = min(1, 2 * fill)
            let v = Double.random(in: low ... high, using: &rng)
            return Float((v * Double(levels - 1)).rounded() / Double(levels - 1))
        }
        var shift: (rows: Int, columns: Int)?
        var values = [Float](repeating: 0, count: frames * size * size)
        if Double.random(in: 0 ..< 1, using: &rng) < family.shifting {
            let directions = [(0, 1), (1, 0), (1, 1), (1, -1)]
            let (dy, dx) = directions[Int.random(in: 0 ..< directions.count, using: &rng)]
            let sign = Bool.random(using: &rng) ? 1 : -1
            let (sy, sx) = (dy * sign, dx * sign)
            shift = (sy, sx)
            // Frame t reads the base pattern at offset(t) in each direction, which moves by the
            // step each frame and stays inside the pattern whichever way it goes.
            func offset(_ step: Int, _ t: Int) -> Int { step > 0 ? t : (step < 0 ? frames - 1 - t : 0) }
            let span = size + frames - 1
            let base = (0 ..< span * span).map { _ in pixel(&rng) }
            for t in 0 ..< frames {
                let oy = offset(sy, t), ox = offset(sx, t)
                for r in 0 ..< size {
                    for x in 0 ..< size { values[(t * size + r) * size + x] = base[(r + oy) * span + x + ox] }
                }
            }
        } else {
            for i in values.indices { values[i] = pixel(&rng) }
        }
        let transmission = Double.random(in: 0 ..< 1, using: &rng) < family.transmission
        if transmission {
            // 0.8 +- 0.2 with 0.5-3 cycles across the crop in each direction.
            let fy = Double.random(in: 0.5 ... 3, using: &rng) * 2 * .pi / Double(size)
            let fx = Double.random(in: 0.5 ... 3, using: &rng) * 2 * .pi / Double(size)
            let py = Double.random(in: 0 ..< 2 * .pi, using: &rng), px = Double.random(in: 0 ..< 2 * .pi, using: &rng)
            for r in 0 ..< size {
                for x in 0 ..< size {
                    let factor = Float(0.8 + 0.2 * sin(fy * Double(r) + py) * cos(fx * Double(x) + px))
                    for t in 0 ..< frames { values[(t * size + r) * size + x] *= factor }
                }
            }
        }
        return FamilyMask(values: values, fill: fill, levels: levels, shift: shift, transmission: transmission)
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
