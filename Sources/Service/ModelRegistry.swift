import Foundation
import Reconstruction
import SCICore

/// The algorithms and RevSCI models this server can run: GAP-TV always, plus every model
/// config in `models_dir`, whose weights come from the config or from `model_weights`. Loaded
/// networks are cached (one per model) and shared by the workers.
public final class ModelRegistry: @unchecked Sendable {
    public let directory: URL
    private let weightOverrides: [String: String]
    private let lock = NSLock()
    private var loaded: [String: RevSCIReconstructor] = [:]
    private var denoiser: FFDNet?

    public init(directory: String, weightOverrides: [String: String]) {
        self.directory = URL(fileURLWithPath: directory)
        self.weightOverrides = weightOverrides
    }

    /// Model names found in the models folder.
    public func names() -> [String] { ModelCatalog.names(in: directory) }

    /// The weights file a model would use (override first), or nil.
    public func weightsURL(for config: ModelConfig) -> URL? {
        if let override = weightOverrides[config.name] { return URL(fileURLWithPath: override) }
        return config.weightsURL
    }

    /// Whether a model's weights file exists and is readable.
    public func weightsAvailable(_ config: ModelConfig) -> Bool {
        guard let url = weightsURL(for: config) else { return false }
        return FileManager.default.isReadableFile(atPath: url.path)
    }

    /// The model's config; a 422 problem naming the available models when it does not exist.
    public func config(named name: String) throws -> ModelConfig {
        do {
            return try ModelCatalog.config(named: name, in: directory)
        } catch let error as SCIError {
            throw ProblemDocument(.unprocessableContent, kind: .modelUnavailable,
                                  detail: "options: \(error.message) (GET /v1/models lists them)")
        }
    }

    /// The loaded network for `name`, loading its weights on first use.
    /// - Throws: a 422 problem when the model is unknown, has no weights, or the weights do not fit.
    public func reconstructor(named name: String) throws -> RevSCIReconstructor {
        if let cached = lock.withLock({ loaded[name] }) { return cached }
        let config = try config(named: name)
        guard let url = weightsURL(for: config), weightsAvailable(config) else {
            throw ProblemDocument(.unprocessableContent, kind: .modelUnavailable,
                detail: "model '\(name)' has no weights on this server (configure model_weights.\(name) or the config's 'weights'); use algorithm \"gaptv\" or another model from GET /v1/models")
        }
        do {
            let network = try RevSCIReconstructor.load(config: config, weightsOverride: url)
            lock.withLock { loaded[name] = network }
            return network
        } catch {
            throw ProblemDocument(.unprocessableContent, kind: .modelUnavailable,
                                  detail: "model '\(name)' cannot be loaded from \(url.lastPathComponent): \(error)")
        }
    }

    /// Where PnP-FFDNet's weights come from: `model_weights.ffdnet`, else the places
    /// `FFDNetWeights` searches; nil when none is readable.
    public func ffdnetWeightsURL() -> URL? {
        if let override = weightOverrides["ffdnet"] { return URL(fileURLWithPath: override) }
        return try? FFDNetWeights.locate()
    }

    /// The FFDNet denoiser, loaded on first use and shared by the workers.
    /// - Throws: a 422 problem when no weights are configured or they do not load.
    public func ffdnet() throws -> FFDNet {
        if let cached = lock.withLock({ denoiser }) { return cached }
        guard let url = ffdnetWeightsURL(), FileManager.default.isReadableFile(atPath: url.path) else {
            throw ProblemDocument(.unprocessableContent, kind: .modelUnavailable,
                detail: "algorithm \"pnp-ffdnet\" needs FFDNet weights and this server has none: configure model_weights.ffdnet (the public net_gray.pth) or use algorithm \"gaptv\"")
        }
        do {
            let network = try FFDNet(contentsOf: url)
            guard network.colors == 1 else {
                throw SCIError("\(url.lastPathComponent) holds the RGB network; grayscale jobs need net_gray.pth")
            }
            lock.withLock { denoiser = network }
            return network
        } catch {
            throw ProblemDocument(.unprocessableContent, kind: .modelUnavailable,
                                  detail: "the FFDNet weights \(url.lastPathComponent) cannot be loaded: \(error)")
        }
    }

    /// The GET /v1/models document.
    public func listing(config: ServiceConfig) -> JSONValue {
        var models: [JSONValue] = [
            .object([
                ("name", "gaptv"), ("algorithm", "gaptv"),
                ("description", "GAP-TV: generalized alternating projection with a per-frame total-variation denoiser; needs no training and takes any number of frames per snapshot."),
                ("frames", .null), ("architecture", .null), ("weights_available", true),
                ("parameters", .object([("iterations", .int(config.gaptv.iterations)),
                                        ("tv_weight", .double(config.gaptv.tvWeight)),
                                        ("tv_iterations", .int(config.gaptv.tvIterations))])),
            ]),
        ]
        models.append(.object([
            ("name", "pnp-ffdnet"), ("algorithm", "pnp-ffdnet"),
            ("description", "PnP-FFDNet: the GAP loop with the pretrained FFDNet image denoiser instead of TV; needs no SCI training, takes any mask and any number of frames (even height and width). Schedule 'warm' (default): GAP-TV first, then FFDNet at 25/12/6; 'published': FFDNet at 50/25/12/6 from the start."),
            ("frames", .null), ("architecture", .null),
            ("weights_available", .bool(ffdnetWeightsURL().map { FileManager.default.isReadableFile(atPath: $0.path) } ?? false)),
            ("parameters", .object([("schedule", .string(PnPFFDNet.Schedule.warm.rawValue)),
                                    ("sigmas", .array(PnPFFDNet.Schedule.warm.sigmas.map { .number($0) })),
                                    ("sigma_iterations", .int(PnPFFDNet.Schedule.iterationsPerSigma)),
                                    ("warm_iterations", .int(PnPFFDNet.Schedule.warm.warmIterations))])),
        ]))
        for name in names() {
            guard let model = try? ModelCatalog.config(named: name, in: directory) else { continue }
            let arch = model.architecture
            models.append(.object([
                ("name", .string(model.name)), ("algorithm", "revsci"), ("description", .string(model.description)),
                ("frames", .int(model.frames)),
                ("architecture", .object([("layout", .string(arch.layout.rawValue)), ("num_block", .int(arch.numBlocks)),
                                          ("num_group", .int(arch.numGroups)), ("color", .bool(arch.color))])),
                ("weights_available", .bool(weightsAvailable(model))),
                ("parameters", .null),
            ]))
        }
        return .object([
            ("default_algorithm", .string(config.defaultAlgorithm)),
            ("default_model", .string(config.defaultModel)),
            ("models", .array(models)),
        ])
    }
}
