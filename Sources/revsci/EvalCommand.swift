import ArgumentParser
import Foundation
import Reconstruction
import SCICore

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score an algorithm on benchmark scenes by the paper's protocol.",
        discussion: """
        For every scene file (.mat with 'orig', H x W x F) in --data: orig/255 is cut into blocks
        of T frames, each snapshot is simulated with the benchmark mask (--mask, default
        DATA/mask.mat; the scene's own meas/mask are ignored), reconstructed and scored. Prints
        per-scene PSNR/SSIM, the average and seconds per snapshot, like the paper's table.
        """
    )

    @Option(help: "Folder of scene files.")
    var data: String

    @Option(help: "Benchmark mask file (default: DATA/mask.mat).")
    var mask: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var algorithmOptions: AlgorithmOptions

    struct Report: Codable {
        var algorithm: String
        var kernels: String
        var scenes: [BenchmarkProtocol.SceneResult]
        var averagePSNR: Double
        var averageSSIM: Double
        var secondsPerSnapshot: Double
    }

    func run() throws {
        let dir = URL(fileURLWithPath: data)
        let maskURL = mask.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("mask.mat")
        let maskStack = try BenchmarkProtocol.loadMask(maskURL)
        let files = try BenchmarkProtocol.sceneFiles(in: dir, excluding: maskURL)
        guard !files.isEmpty else { throw ValidationError("no scene files (.mat) in \(dir.path)") }
        let reconstructor = try algorithmOptions.makeReconstructor()
        var results: [BenchmarkProtocol.SceneResult] = []
        for file in files {
            let scene = try BenchmarkProtocol.loadScene(file)
            results.append(try BenchmarkProtocol.run(scene, mask: maskStack, reconstructor: reconstructor))
        }
        let n = Double(results.count)
        let report = Report(
            algorithm: reconstructor.name, kernels: KernelSet.active.rawValue, scenes: results,
            averagePSNR: results.map(\.meanPSNR).reduce(0, +) / n, averageSSIM: results.map(\.meanSSIM).reduce(0, +) / n,
            secondsPerSnapshot: results.map(\.seconds).reduce(0, +) / Double(results.map(\.snapshots).reduce(0, +)))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.table(report))
        }
    }

    /// A Markdown table shaped like the paper's: one row per method, scenes as columns,
    /// "PSNR / SSIM" in each cell, then the average and seconds per snapshot.
    static func table(_ r: Report) -> String {
        let header = ["method"] + r.scenes.map(\.scene) + ["average", "s / snapshot"]
        let cells = [r.algorithm] + r.scenes.map { String(format: "%.2f / %.4f", $0.meanPSNR, $0.meanSSIM) }
            + [String(format: "%.2f / %.4f", r.averagePSNR, r.averageSSIM), String(format: "%.3f", r.secondsPerSnapshot)]
        let widths = zip(header, cells).map { max($0.count, $1.count) }
        func row(_ items: [String]) -> String {
            "| " + zip(items, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return [row(header), rule, row(cells), "", "PSNR dB / SSIM per scene (mean over its frames); kernels: \(r.kernels)"].joined(separator: "\n")
    }
}
