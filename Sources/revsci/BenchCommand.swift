import ArgumentParser
import Foundation
import Reconstruction
import SCICore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the RevSCI network: per layer and in total, with GFLOP/s and peak memory.",
        discussion: """
        Runs --warmup passes, then --runs timed passes of one snapshot at --size (H x W x T) and
        reports the median. Without --weights the model runs on seeded random weights (speed
        does not depend on the values). Peak RSS is the whole process's high-water mark.
        """
    )

    @OptionGroup var model: ModelOptions

    @Option(help: "Snapshot size as HxWxT (T must match the model).")
    var size: String = "256x256x8"

    @Option(help: "Timed runs (the median is reported).")
    var runs: Int = 3

    @Option(help: "Untimed warm-up runs.")
    var warmup: Int = 1

    @Option(help: "Kernels to use: \(KernelSet.supported.map(\.rawValue).joined(separator: ", ")) (default: best supported).")
    var kernels: String?

    @Option(help: "Working-memory budget in MB; larger snapshots run as overlapping tiles.")
    var memoryBudget: Int = 1024

    @Option(help: "Force tiles with this core size (even pixels).")
    var tile: Int?

    @Option(help: "Context pixels each tile sees beyond its core (even).")
    var halo: Int = 32

    @Flag(help: "Also run untiled and report how far the tiled output is from it (seam error).")
    var seamCheck = false

    @Flag(help: "Print JSON.")
    var json = false

    struct Report: Codable {
        struct Layer: Codable {
            var kind: String
            var calls: Int
            var seconds: Double
            var gflops: Double
            var gflopPerSecond: Double
        }
        var model: String
        var size: [Int]
        var kernels: String
        var cores: Int
        var tiles: Int
        var seamMaxAbsError: Double?
        var seamMeanAbsError: Double?
        var runs: [Double]
        var medianSeconds: Double
        var gflop: Double
        var gflopPerSecond: Double
        var peakRSSMB: Double?
        var workspaceMB: Double
        var layers: [Layer]
    }

    func run() throws {
        let dims = size.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else { throw ValidationError("--size takes HxWxT, e.g. 256x256x8") }
        let (h, w, t) = (dims[0], dims[1], dims[2])
        guard runs > 0, warmup >= 0 else { throw ValidationError("--runs must be positive") }
        let kernelSet: KernelSet
        if let kernels {
            guard let k = KernelSet(rawValue: kernels), KernelSet.supported.contains(k) else {
                throw ValidationError("--kernels \(kernels) is not supported here; choose from \(KernelSet.supported.map(\.rawValue))")
            }
            kernelSet = k
        } else {
            kernelSet = .active
        }
        let config = try model.modelConfig(defaultModel: "revsci-paper")
        guard t == config.frames else { throw ValidationError("model '\(config.name)' reconstructs \(config.frames) frames per snapshot, not \(t)") }
        let weights = try model.weightsURL.map { try WeightsFile.load($0) } ?? config.architecture.randomWeights(seed: 1)
        let network = try RevSCINetwork(weights: weights)
        var rng = SeededGenerator(seed: 2)
        let input = (0 ..< network.inputChannels * t * h * w).map { _ in Float.random(in: 0 ..< 1, using: &rng) }
        guard halo >= 0, halo % 2 == 0, tile.map({ $0 >= 2 && $0 % 2 == 0 }) ?? true else {
            throw ValidationError("--tile and --halo must be even")
        }
        let plan = TilePlan.choose(for: network, frames: t, height: h, width: w, budget: memoryBudget << 20, halo: halo, forcedCore: tile)
        let workspace = plan == nil ? network.makeWorkspace(frames: t, height: h, width: w) : nil
        let workspaceBytes = plan.map { p in p.tiles.map { network.workspaceBytes(frames: t, height: $0.y1 - $0.y0, width: $0.x1 - $0.x0) }.max() ?? 0 }
            ?? network.workspaceBytes(frames: t, height: h, width: w)
        let profiler = LayerProfiler()
        var lastOutput: [Float] = []
        var times: [Double] = []
        var perRun: [[LayerProfiler.Entry]] = []
        for i in 0 ..< warmup + runs {
            profiler.reset()
            let start = DispatchTime.now().uptimeNanoseconds
            let prof = i >= warmup ? profiler : nil
            if let plan {
                lastOutput = try network.forwardTiled(input, frames: t, plan: plan, kernels: kernelSet, profiler: prof)
            } else {
                lastOutput = try network.forward(input, frames: t, height: h, width: w, kernels: kernelSet, workspace: workspace, profiler: prof)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if i >= warmup {
                times.append(seconds)
                perRun.append(profiler.entries)
            }
        }
        let order = times.indices.sorted { times[$0] < times[$1] }
        let median = order[order.count / 2]
        let flops = network.flops(frames: t, height: h, width: w)
        // Per layer kind, from the median run.
        var kinds: [String: (calls: Int, seconds: Double, flops: Double)] = [:]
        var kindOrder: [String] = []
        for e in perRun[median] {
            let group = e.name.hasPrefix("layers.")
                ? "blocks: \(e.kind) \(e.name.hasSuffix(".0") ? "(first, LReLU)" : "(second, add)")"
                : "\(e.name.split(separator: "[").first ?? ""): \(e.kind)"
            if kinds[group] == nil { kindOrder.append(group) }
            kinds[group, default: (0, 0, 0)].calls += 1
            kinds[group, default: (0, 0, 0)].seconds += e.seconds
            kinds[group, default: (0, 0, 0)].flops += e.flops
        }
        let layers = kindOrder.map { k -> Report.Layer in
            let v = kinds[k]!
            return .init(kind: k, calls: v.calls, seconds: v.seconds, gflops: v.flops / 1e9, gflopPerSecond: v.flops / v.seconds / 1e9)
        }
        var seamMax: Double?, seamMean: Double?
        if seamCheck, plan != nil {
            let whole = try network.forward(input, frames: t, height: h, width: w, kernels: kernelSet)
            let diffs = zip(whole, lastOutput).map { Double(abs($0 - $1)) }
            seamMax = diffs.max()
            seamMean = diffs.reduce(0, +) / Double(diffs.count)
        }
        let report = Report(model: config.name, size: [h, w, t], kernels: kernelSet.rawValue, cores: Parallel.coreCount,
                            tiles: plan?.tiles.count ?? 1, seamMaxAbsError: seamMax, seamMeanAbsError: seamMean, runs: times,
                            medianSeconds: times[median], gflop: flops / 1e9, gflopPerSecond: flops / times[median] / 1e9,
                            peakRSSMB: ProcessMemory.peakResidentBytes.map { Double($0) / 1_048_576 },
                            workspaceMB: Double(workspaceBytes) / 1_048_576, layers: layers)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            return
        }
        print("model \(config.name), \(h)x\(w)x\(t), kernels \(kernelSet.rawValue), \(Parallel.coreCount) cores"
            + (plan.map { ", \($0.tiles.count) tiles (halo \($0.halo))" } ?? ", untiled"))
        print("layer".padding(toLength: 44, withPad: " ", startingAt: 0) + "  calls   seconds   GFLOP   GFLOP/s")
        for l in layers {
            print(l.kind.padding(toLength: 44, withPad: " ", startingAt: 0)
                + String(format: "  %5d  %8.4f  %6.2f  %8.1f", l.calls, l.seconds, l.gflops, l.gflopPerSecond))
        }
        print(String(format: "total: median %.3f s of %d runs (%@), %.1f GFLOP, %.1f GFLOP/s", times[median], runs,
                     times.map { String(format: "%.3f", $0) }.joined(separator: ", "), flops / 1e9, flops / times[median] / 1e9))
        if let rss = report.peakRSSMB { print(String(format: "peak RSS %.0f MB (workspace %.0f MB)", rss, report.workspaceMB)) }
        if let seamMax, let seamMean {
            print(String(format: "seam check: tiled vs untiled output max |diff| %.3g, mean |diff| %.3g (untiled run included in peak RSS)", seamMax, seamMean))
        }
    }
}
