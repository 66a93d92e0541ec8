import Foundation
import Formats
import SCICore

/// The RevSCI network as a `Reconstructor`: prepares the network input from a snapshot and its
/// masks (REFERENCE.md sections 2 and 5), runs the network, returns the frames.
public struct RevSCIReconstructor: Reconstructor {
    public let network: RevSCINetwork
    public let config: ModelConfig
    public var kernels: KernelSet
    /// Working-memory budget for one snapshot; larger snapshots run as overlapping tiles.
    public var memoryBudget: Int = 1 << 30
    /// Context (pixels, even) each tile sees beyond its core.
    public var tileHalo: Int = 32
    /// Forces a tile core size (pixels, even), e.g. to measure seams; nil chooses from the budget.
    public var tileCore: Int?

    public init(config: ModelConfig, weights: [String: NumericArray], kernels: KernelSet = .active) throws {
        let network = try RevSCINetwork(weights: weights)
        let arch = config.architecture
        let found = ModelArchitecture(layout: network.layout, numBlocks: network.blocks.count,
                                      numGroups: network.layout == .twoBranch ? arch.numGroups : network.groupCount,
                                      color: network.inputChannels == 2)
        guard found == arch || (arch.layout == .twoBranch && found.layout == .twoBranch && found.numBlocks == arch.numBlocks && found.color == arch.color) else {
            throw SCIError("weights are a \(found.layout.rawValue) network with \(found.numBlocks) blocks\(found.layout == .multiGroup ? " of \(found.numGroups) groups" : "")\(found.color ? " (color)" : ""), but model '\(config.name)' is \(arch.layout.rawValue) with \(arch.numBlocks) blocks")
        }
        self.network = network
        self.config = config
        self.kernels = kernels
    }

    /// Loads the config's own weights file, or `weightsOverride` when given.
    public static func load(config: ModelConfig, weightsOverride: URL? = nil, kernels: KernelSet = .active) throws -> RevSCIReconstructor {
        guard let url = weightsOverride ?? config.weightsURL else {
            throw SCIError("model '\(config.name)' ships no trained weights: pass a checkpoint (.pth or .safetensors) with --weights")
        }
        return try RevSCIReconstructor(config: config, weights: try WeightsFile.load(url), kernels: kernels)
    }

    public var name: String { "revsci:\(config.name)" }
    public var requiredFrames: Int? { config.frames }
    public var isColor: Bool { config.architecture.color }

    func check(_ snapshot: Snapshot, _ mask: MaskStack) throws {
        guard mask.frames == config.frames else {
            throw SCIError("mask has \(mask.frames) frames but model '\(config.name)' reconstructs \(config.frames) per snapshot")
        }
        guard snapshot.height == mask.height, snapshot.width == mask.width else {
            throw SCIError("measurement is \(snapshot.height)x\(snapshot.width) but the mask is \(mask.height)x\(mask.width)")
        }
        guard mask.height % 2 == 0, mask.width % 2 == 0 else {
            throw SCIError("RevSCI needs even height and width; this snapshot is \(mask.height)x\(mask.width) (crop one row or column)")
        }
    }

    /// The network's input channels for one snapshot: gray (y_bar + Phi y_bar), or color (Phi, y_bar).
    public func networkInput(_ snapshot: Snapshot, mask: MaskStack) throws -> [Float] {
        try Self.networkInput(snapshot, mask: mask, color: isColor)
    }

    public static func networkInput(_ snapshot: Snapshot, mask: MaskStack, color: Bool) throws -> [Float] {
        let model = SensingModel(mask: mask)
        if !color { return try model.networkInput(snapshot).pixels }
        let yBar = try model.normalized(snapshot).pixels
        return mask.values + (0 ..< mask.frames).flatMap { _ in yBar }
    }

    /// Runs the network; returns (C_out, T, H, W) channel-major.
    public func run(_ snapshot: Snapshot, mask: MaskStack, context: ReconstructionContext) throws -> [Float] {
        try check(snapshot, mask)
        let input = try networkInput(snapshot, mask: mask)
        if let plan = tilePlan(height: mask.height, width: mask.width) {
            return try network.forwardTiled(input, frames: mask.frames, plan: plan, kernels: kernels, context: context)
        }
        return try network.forward(input, frames: mask.frames, height: mask.height, width: mask.width, kernels: kernels,
                                   context: context)
    }

    /// The tiles a snapshot of H x W runs as, or nil when it runs whole.
    public func tilePlan(height: Int, width: Int) -> TilePlan? {
        TilePlan.choose(for: network, frames: config.frames, height: height, width: width, budget: memoryBudget,
                        halo: tileHalo, forcedCore: tileCore)
    }

    /// Grayscale models: the T frames. Color models: the re-mosaicked (RGGB) frames, which is what
    /// the reference toolbox scores; `reconstructRGB` gives the color video.
    public func reconstruct(_ snapshot: Snapshot, mask: MaskStack, context: ReconstructionContext) throws -> Video {
        let out = try run(snapshot, mask: mask, context: context)
        if !isColor { return try Video(frames: mask.frames, height: mask.height, width: mask.width, pixels: out) }
        return try Bayer.mosaic(rgb: out, frames: mask.frames, height: mask.height, width: mask.width)
    }

    /// Color models: (3, T, H, W) RGB, channel-major.
    public func reconstructRGB(_ snapshot: Snapshot, mask: MaskStack, context: ReconstructionContext) throws -> [Float] {
        guard isColor else { throw SCIError("model '\(config.name)' is grayscale") }
        return try run(snapshot, mask: mask, context: context)
    }
}

/// Finds model configs: configs/models/<name>.json under the working directory (or the folder
/// named by REVSCI_MODELS).
public enum ModelCatalog {
    public static var directory: URL {
        if let env = ProcessInfo.processInfo.environment["REVSCI_MODELS"], !env.isEmpty { return URL(fileURLWithPath: env) }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("configs/models")
    }

    public static func names(in dir: URL = directory) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".json") }
            .map { String($0.dropLast(5)) }.sorted()
    }

    public static func config(named name: String, in dir: URL = directory) throws -> ModelConfig {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !name.hasPrefix(".") else {
            throw SCIError("model names use letters, digits, '-', '_' and '.' only")
        }
        let url = dir.appendingPathComponent(name + ".json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SCIError("no model '\(name)' in \(dir.path); available: \(names(in: dir).joined(separator: ", "))")
        }
        return try ModelConfig.load(url)
    }
}
