import ArgumentParser
import Foundation
import Formats
import Reconstruction

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a PyTorch RevSCI checkpoint (.pth) to .safetensors.",
        discussion: """
        Reads a state dict, a dict holding model_state_dict, or a whole pickled RevSCI-net module
        (zip or legacy format) without executing anything from it, checks that the tensors form
        a RevSCI network, and writes them as float32 safetensors in state-dict order.
        """
    )

    @Argument(help: "Input checkpoint (.pth or .safetensors).")
    var input: String

    @Argument(help: "Output .safetensors file.")
    var output: String

    func run() throws {
        let weights = try WeightsFile.load(URL(fileURLWithPath: input))
        let network = try RevSCINetwork(weights: weights)
        let names = network.parameterNames
        var metadata = ["format": "pt", "layout": network.layout.rawValue, "num_block": String(network.blocks.count),
                        "source": URL(fileURLWithPath: input).lastPathComponent]
        if network.layout == .multiGroup { metadata["num_group"] = String(network.groupCount) }
        let bytes = SafetensorsFile.encode(names.map { ($0, weights[$0]!) }, metadata: metadata)
        try Data(bytes).write(to: URL(fileURLWithPath: output))
        print("\(input): \(network.layout.rawValue) network, \(network.blocks.count) blocks, \(network.parameterCount) parameters -> \(output)")
    }
}
