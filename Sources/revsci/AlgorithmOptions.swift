import ArgumentParser
import Foundation
import Reconstruction

/// Options that choose and tune the reconstruction algorithm; shared by every command that
/// reconstructs.
struct AlgorithmOptions: ParsableArguments {
    @Option(help: "Reconstruction algorithm: gaptv, revsci or pnp-ffdnet.")
    var algorithm: String = "gaptv"

    @OptionGroup var model: ModelOptions

    @Option(help: "GAP-TV: outer iterations.")
    var iterations: Int = 40

    @Option(help: "GAP-TV: TV denoiser weight.")
    var tvWeight: Float = 0.3

    @Option(help: "GAP-TV: Chambolle iterations per frame and outer iteration.")
    var tvIterations: Int = 5

    @Option(help: "PnP-FFDNet: schedule, warm (GAP-TV first, then FFDNet at 25/12/6) or published (FFDNet at 50/25/12/6 from the start).")
    var schedule: String = "warm"

    @Option(help: "PnP-FFDNet: noise levels on the 0-255 scale, comma-separated, overriding the schedule's (e.g. 25,12,6).")
    var sigmas: String?

    @Option(help: "PnP-FFDNet: GAP iterations per noise level.")
    var sigmaIterations: Int = 10

    @Option(help: "PnP-FFDNet: GAP-TV iterations before the first FFDNet one (default: 40 for warm, 0 for published).")
    var warmIterations: Int?

    func makeReconstructor() throws -> any Reconstructor {
        switch algorithm {
        case "gaptv", "gap-tv":
            guard iterations > 0, tvIterations > 0, tvWeight > 0 else {
                throw ValidationError("--iterations, --tv-iterations and --tv-weight must be positive")
            }
            return GAPTV(iterations: iterations, tvWeight: tvWeight, tvIterations: tvIterations)
        case "revsci":
            return try RevSCIReconstructor.load(config: try model.modelConfig(), weightsOverride: model.weightsURL)
        case "pnp-ffdnet", "pnp":
            guard let named = PnPFFDNet.Schedule(rawValue: schedule) else {
                throw ValidationError("unknown --schedule '\(schedule)': choose warm or published")
            }
            var levels: [Double]?
            if let sigmas {
                let parsed = sigmas.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil && $0! > 0 && $0! <= 255 }) else {
                    throw ValidationError("--sigmas must be comma-separated noise levels in (0, 255], e.g. 25,12,6")
                }
                levels = parsed.compactMap { $0 }
            }
            guard sigmaIterations > 0, (warmIterations ?? 0) >= 0, tvIterations > 0, tvWeight > 0 else {
                throw ValidationError("--sigma-iterations, --tv-iterations and --tv-weight must be positive, --warm-iterations not negative")
            }
            let url = try model.weightsURL ?? FFDNetWeights.locate()
            let network = try FFDNet(contentsOf: url)
            return PnPFFDNet(network: network, schedule: named, sigmas: levels, iterationsPerSigma: sigmaIterations,
                             warmIterations: warmIterations, tvWeight: Double(tvWeight), tvIterations: tvIterations)
        default:
            throw ValidationError("unknown --algorithm '\(algorithm)': choose gaptv, revsci or pnp-ffdnet")
        }
    }
}

/// Chooses a RevSCI model: a name from configs/models, or a config file, and optionally weights.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model name from configs/models (see `ls configs/models`); default: the shipped revsci-default (bench: revsci-paper).")
    var model: String?

    @Option(help: "Model config file (JSON), instead of --model.")
    var config: String?

    @Option(help: "Weights (.safetensors, or a PyTorch .pth checkpoint) instead of the config's own.")
    var weights: String?

    /// The chosen model's config; `defaultModel` when neither --model nor --config is given.
    func modelConfig(defaultModel: String = "revsci-default") throws -> ModelConfig {
        if let config { return try ModelConfig.load(URL(fileURLWithPath: config)) }
        return try ModelCatalog.config(named: model ?? defaultModel)
    }

    var weightsURL: URL? { weights.map { URL(fileURLWithPath: $0) } }
}
