import ArgumentParser
import Reconstruction

/// Options that choose and tune the reconstruction algorithm; shared by every command that
/// reconstructs.
struct AlgorithmOptions: ParsableArguments {
    @Option(help: "Reconstruction algorithm: gaptv.")
    var algorithm: String = "gaptv"

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
        default:
            throw ValidationError("unknown --algorithm '\(algorithm)': choose gaptv")
        }
    }
}
