import ArgumentParser

@main
struct RevSCICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revsci",
        abstract: "Video snapshot compressive imaging: reconstruct coded snapshots into video.",
        discussion: """
        A CACTI camera records T frames in one coded exposure; these commands recover them with
        GAP-TV (classical, no training) or the RevSCI network.
        """,
        subcommands: [ServeCommand.self, ReconstructCommand.self, EvalCommand.self, BenchCommand.self, ConvertCommand.self, TrainCommand.self, FinetuneCommand.self,
                      TrainBenchCommand.self]
    )
}
