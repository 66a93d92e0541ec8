import ArgumentParser
import Foundation
import Reconstruction

/// Options that choose and tune the reconstruction algorithm; shared by every command that
/// reconstructs.
struct AlgorithmOptions: ParsableArguments {
    @Option(help: "Reconstruction algorithm: gaptv or revsci.")
    var algorithm: String = "gaptv"

    @OptionGroup var model: ModelOptions

    @Option(help: "GAP-TV: outer iterations.")
    var iterations: Int = 40

    @Option(help: "GAP-TV: TV denoiser weight.")
    var tvWeight: Float = 0.3

    @Option(help: "GAP-TV: Chambolle iterations per frame and outer iteration.")
    var tvIterations: Int = 5

    func makeReconstructor() throws -> any Reconstructor {
        switch algorithm {
        case "gaptv", "gap-tv":
            guard iterations > 0, tvIterations > 0, tvWeight > 0 else {
                throw ValidationError("--iterations, --tv-iterations and --tv-weight must be positive")
            }
            return GAPTV(iterations: iterations, tvWeight: tvWeight, tvIterations: tvIterations)
        case "revsci":
            return try RevSCIReconstructor.load(config: try model.modelConfig(), weightsOverride: model.weightsURL)
        default:
            throw ValidationError("unknown --algorithm '\(algorithm)': choose gaptv or revsci")
        }
    }
}

/// Chooses a RevSCI model: a name from configs/models, or a config file, and optionally weights.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model name from configs/models (see `ls configs/models`).")
    var model: String = "revsci-paper"

    @Option(help: "Model config file (JSON), instead of --model.")
    var config: String?

    @Option(help: "Weights (.safetensors, or a PyTorch .pth checkpoint) instead of the config's own.")
    var weights: String?

    func modelConfig() throws -> ModelConfig {
        if let config { return try ModelConfig.load(URL(fileURLWithPath: config)) }
        return try ModelCatalog.config(named: model)
    }

    var weightsURL: URL? { weights.map { URL(fileURLWithPath: $0) } }
}
