import Foundation
import Reconstruction
import SCICore

/// A training run as configs/train/*.json describe it. Paths are relative to the working
/// directory (the repository root).
public struct TrainConfig: Codable, Sendable {
    public var name: String
    public var architecture: ModelArchitecture
    public var frames: Int = 8
    /// Square crop size in pixels (even).
    public var crop: Int = 64
    public var batch: Int = 8
    public var learningRate: Float = 3e-4
    /// Total optimizer steps.
    public var steps: Int = 100_000
    public var mode: BackpropMode = .plain
    /// Folder of uint8 (F, H, W) .npy clips (scripts/build_training_data.py).
    public var data: String = "training-data"
    /// A fixed mask (.mat `mask` H x W x T, or .npy T x H x W) to fine-tune for one camera; nil draws
    /// a fresh random binary mask per sample.
    public var mask: String?
    /// With `mask`: the share of samples that use it (the rest draw fresh random masks).
    public var maskFraction: Double = 1
    /// Exposure augmentation (`{"gain": [min, max], "invert": p}`), or nil for none.
    public var exposure: TrainingData.Exposure?
    /// Motion augmentation (`{"frame_stride": k, "still": p, "object": q, "object_speed": px}`), or nil for none.
    public var motion: TrainingData.Motion?
    /// Zoom augmentation (`{"probability": p, "max": z}`), or nil for none.
    public var zoom: TrainingData.Zoom?
    /// Fresh random masks (no fixed mask): independent per frame, shifting (CACTI), or both.
    public var randomMasks: TrainingData.RandomMasks = .independent
    /// Fresh random masks from the family of real coders (fill, gray levels, transmission,
    /// shifts along any axis or diagonal) instead of `random_masks`; nil keeps `random_masks`.
    public var maskFamily: TrainingData.MaskFamily?
    public var checkpointEvery: Int = 50
    public var validateEvery: Int = 500
    /// Run folder: checkpoints, log.jsonl.
    public var output: String
    public var seed: UInt64 = 0
    /// Benchmark folder scored during training (never training data), with its mask.mat.
    public var validationData: String? = "../shared/data/benchmarks"
    /// A folder holding weights.safetensors and optimizer.safetensors (e.g. a committed snapshot)
    /// that `--resume` starts from when the run folder has no checkpoint yet: lets training
    /// continue on a fresh machine.
    public var initialCheckpoint: String?
    /// Decay of an exponential moving average of the weights, updated after every step
    /// (average += (1 - decay) * (weights - average)), or nil for none. Adam's iterates wander
    /// around the minimum by the learning rate; their average sits closer to it, so the average
    /// is validated beside the weights and is what a run ships.
    public var emaDecay: Double?
    /// Model weights (.safetensors or .pth) a fresh run starts from instead of random ones, with
    /// a fresh optimizer: fine-tuning a trained model for one camera.
    public var initialWeights: String?
    /// The mask validation simulates the scenes with (default: the validation folder's mask.mat).
    public var validationMask: String?

    enum CodingKeys: String, CodingKey {
        case name, architecture, frames, crop, batch, mode, data, mask, output, seed, steps
        case learningRate = "learning_rate", checkpointEvery = "checkpoint_every", validateEvery = "validate_every"
        case validationData = "validation_data", initialCheckpoint = "initial_checkpoint", randomMasks = "random_masks"
        case maskFraction = "mask_fraction", exposure, motion, zoom, emaDecay = "ema_decay", maskFamily = "mask_family"
        case initialWeights = "initial_weights", validationMask = "validation_mask"
    }

    public init(name: String, architecture: ModelArchitecture, output: String) {
        self.name = name
        self.architecture = architecture
        self.output = output
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        architecture = try c.decode(ModelArchitecture.self, forKey: .architecture)
        output = try c.decode(String.self, forKey: .output)
        frames = try c.decodeIfPresent(Int.self, forKey: .frames) ?? frames
        crop = try c.decodeIfPresent(Int.self, forKey: .crop) ?? crop
        batch = try c.decodeIfPresent(Int.self, forKey: .batch) ?? batch
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? learningRate
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? steps
        mode = try c.decodeIfPresent(BackpropMode.self, forKey: .mode) ?? mode
        data = try c.decodeIfPresent(String.self, forKey: .data) ?? data
        mask = try c.decodeIfPresent(String.self, forKey: .mask)
        maskFraction = try c.decodeIfPresent(Double.self, forKey: .maskFraction) ?? maskFraction
        exposure = try c.decodeIfPresent(TrainingData.Exposure.self, forKey: .exposure)
        motion = try c.decodeIfPresent(TrainingData.Motion.self, forKey: .motion)
        zoom = try c.decodeIfPresent(TrainingData.Zoom.self, forKey: .zoom)
        randomMasks = try c.decodeIfPresent(TrainingData.RandomMasks.self, forKey: .randomMasks) ?? randomMasks
        maskFamily = try c.decodeIfPresent(TrainingData.MaskFamily.self, forKey: .maskFamily)
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? checkpointEvery
        validateEvery = try c.decodeIfPresent(Int.self, forKey: .validateEvery) ?? validateEvery
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        validationData = try c.decodeIfPresent(String.self, forKey: .validationData) ?? validationData
        initialCheckpoint = try c.decodeIfPresent(String.self, forKey: .initialCheckpoint)
        emaDecay = try c.decodeIfPresent(Double.self, forKey: .emaDecay)
        initialWeights = try c.decodeIfPresent(String.self, forKey: .initialWeights)
        validationMask = try c.decodeIfPresent(String.self, forKey: .validationMask)
    }

    public static func load(_ url: URL) throws -> TrainConfig {
        let config: TrainConfig
        do { config = try JSONDecoder().decode(TrainConfig.self, from: Data(contentsOf: url)) } catch {
            throw SCIError("training config \(url.path) is not valid: \(error)")
        }
        try config.check(url.lastPathComponent)
        return config
    }

    /// Throws for settings out of range (`name` says which config).
    public func check(_ name: String) throws {
        let config = self
        let url = URL(fileURLWithPath: name)
        guard config.crop >= 4, config.crop % 2 == 0, config.batch >= 1, config.frames >= 1, config.steps >= 1,
              config.learningRate > 0, config.checkpointEvery >= 1, config.validateEvery >= 1 else {
            throw SCIError("training config \(url.lastPathComponent): crop must be even (>= 4); batch, frames, steps, intervals and learning_rate positive")
        }
        if config.maskFraction != 1, config.mask == nil {
            throw SCIError("training config \(url.lastPathComponent): mask_fraction needs a fixed mask (\"mask\") to mix in")
        }
        if let d = config.emaDecay, !(d > 0 && d < 1) {
            throw SCIError("training config \(url.lastPathComponent): ema_decay must lie strictly between 0 and 1, got \(d)")
        }
    }
}
