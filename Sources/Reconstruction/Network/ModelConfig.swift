import Foundation
import Formats
import SCICore

/// The shape of a RevSCI model: enough to name and size every parameter.
public struct ModelArchitecture: Sendable, Codable, Equatable {
    public var layout: ReversibleBlock.Layout
    public var numBlocks: Int
    /// Channel groups per multi-group block (ignored by the two-branch layout, which has 2).
    public var numGroups: Int
    /// Color (Bayer) model: 2 input channels (Phi, y_bar), 3 outputs (RGB).
    public var color: Bool

    public init(layout: ReversibleBlock.Layout, numBlocks: Int, numGroups: Int = 2, color: Bool = false) {
        self.layout = layout
        self.numBlocks = numBlocks
        self.numGroups = numGroups
        self.color = color
    }

    enum CodingKeys: String, CodingKey {
        case layout, numBlocks = "num_block", numGroups = "num_group", color
    }

    /// Every parameter's state-dict name and shape, in PyTorch order (REFERENCE.md sections 3-5).
    public var parameterShapes: [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        func conv(_ name: String, _ o: Int, _ i: Int, _ k: [Int]) { out += [(name + ".weight", [o, i] + k), (name + ".bias", [o])] }
        let k3 = [3, 3, 3], k1 = [1, 1, 1], k5 = [5, 5, 5]
        if color {
            conv("conv1.0", 16, 2, k5); conv("conv1.2", 16, 16, k3); conv("conv1.4", 32, 16, k1); conv("conv1.6", 64, 32, [1, 3, 3])
        } else {
            conv("conv1.0", 16, 1, k5); conv("conv1.2", 32, 16, k3); conv("conv1.4", 32, 32, k1); conv("conv1.6", 64, 32, k3)
        }
        for i in 0 ..< numBlocks {
            switch layout {
            case .twoBranch:
                for f in ["f1", "g1"] { conv("layers.\(i).\(f).0", 32, 32, k3); conv("layers.\(i).\(f).2", 32, 32, k3) }
            case .multiGroup:
                let c = 64 / numGroups
                for g in 0 ..< numGroups {
                    conv("layers.\(i).f.\(g).nn_layer.0", c, c, k3); conv("layers.\(i).f.\(g).nn_layer.2", c, c, k3)
                }
            }
        }
        out += [("conv2.0.weight", [64, 32, 1, 3, 3]), ("conv2.0.bias", [32])]
        if color {
            conv("conv2.2", 16, 32, k3); conv("conv2.4", 16, 16, k1); conv("conv2.6", 3, 16, k3)
        } else {
            conv("conv2.2", 32, 32, k3); conv("conv2.4", 16, 32, k1); conv("conv2.6", 1, 16, k3)
        }
        return out
    }

    /// Weights drawn as PyTorch initialises Conv3d (uniform in +-1/sqrt(fan_in) for weight and
    /// bias), from a seeded generator: for benchmarks and as the start of training.
    public func randomWeights(seed: UInt64 = 0) -> [String: NumericArray] {
        var rng = SeededGenerator(seed: seed)
        var weights: [String: NumericArray] = [:]
        var fanIn = 1
        for (name, shape) in parameterShapes {
            if name.hasSuffix(".weight") {
                // ConvTranspose3d's fan-in is computed by PyTorch from dim 1 of its [in, out, ...] weight.
                fanIn = shape[1] * shape[2...].reduce(1, *)
            }
            let bound = 1 / Float(fanIn).squareRoot()
            let count = shape.reduce(1, *)
            weights[name] = NumericArray(shape: shape, float32: (0 ..< count).map { _ in Float.random(in: -bound ..< bound, using: &rng) })
        }
        return weights
    }
}

/// A model as configs/models/*.json describe it: architecture, compression ratio, and where its
/// weights (and, if it was trained for one camera, its mask) are.
public struct ModelConfig: Sendable, Codable {
    public var name: String
    public var description: String
    public var architecture: ModelArchitecture
    /// Frames per snapshot (compression ratio T) the model was trained for.
    public var frames: Int
    /// Weights file (.safetensors or .pth), relative to the config file; nil when none is shipped.
    public var weights: String?
    /// The mask the model was trained with (relative path), if it is tied to one camera.
    public var mask: String?
    /// Folder of the config file, for resolving relative paths (not stored).
    public var baseDirectory: URL?

    enum CodingKeys: String, CodingKey { case name, description, architecture, frames, weights, mask }

    public init(name: String, description: String, architecture: ModelArchitecture, frames: Int, weights: String? = nil, mask: String? = nil) {
        self.name = name
        self.description = description
        self.architecture = architecture
        self.frames = frames
        self.weights = weights
        self.mask = mask
    }

    public static func load(_ url: URL) throws -> ModelConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw SCIError("cannot read model config \(url.path): \(error.localizedDescription)") }
        var config: ModelConfig
        do { config = try JSONDecoder().decode(ModelConfig.self, from: data) } catch {
            throw SCIError("model config \(url.lastPathComponent) is not valid: \(error)")
        }
        config.baseDirectory = url.deletingLastPathComponent()
        guard config.frames > 0, config.architecture.numBlocks >= 0 else { throw SCIError("model config \(url.lastPathComponent): frames must be positive") }
        if config.architecture.layout == .multiGroup, config.architecture.numGroups < 1 || 64 % config.architecture.numGroups != 0 {
            throw SCIError("model config \(url.lastPathComponent): num_group must divide 64")
        }
        return config
    }

    public var weightsURL: URL? { weights.map { URL(fileURLWithPath: $0, relativeTo: baseDirectory).standardizedFileURL } }
    public var maskURL: URL? { mask.map { URL(fileURLWithPath: $0, relativeTo: baseDirectory).standardizedFileURL } }
}

/// Reads model weights from .safetensors (or, through `PyTorchCheckpoint`, a .pth).
public enum WeightsFile {
    public static func load(_ url: URL) throws -> [String: NumericArray] {
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: url)) } catch { throw SCIError("cannot read weights \(url.path): \(error.localizedDescription)") }
        return try decode(bytes)
    }

    public static func decode(_ bytes: [UInt8]) throws -> [String: NumericArray] {
        let tensors: [(name: String, array: NumericArray)]
        if bytes.starts(with: [0x50, 0x4B]) || bytes.starts(with: [0x80]) {
            tensors = try PyTorchCheckpoint.loadStateDict(bytes)
        } else {
            tensors = try SafetensorsFile.decode(bytes).tensors
        }
        var out: [String: NumericArray] = [:]
        for (name, array) in tensors {
            // Checkpoints saved from nn.DataParallel prefix every name with "module.".
            let key = name.hasPrefix("module.") ? String(name.dropFirst(7)) : name
            out[key] = NumericArray(shape: array.shape, float32: array.floats())
        }
        return out
    }
}
