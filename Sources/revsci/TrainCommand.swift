import ArgumentParser
import Dispatch
import Foundation
import Reconstruction
import SCICore
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a RevSCI model (reversible or plain backprop) from a training config.",
        discussion: """
        Reads configs/train/*.json (architecture, crop, batch, learning rate, steps, data folder,
        run folder). Prints a progress line per step, writes checkpoints (weights.safetensors,
        optimizer.safetensors and, with ema_decay, the weight average average.safetensors in the
        run folder) every checkpoint_every steps and on SIGINT/SIGTERM,
        scores the benchmark scenes every validate_every steps, and appends everything to
        log.jsonl. --resume continues from the last checkpoint after a kill.
        """
    )

    @Option(help: "Training config (JSON).")
    var config: String

    @Flag(help: "Continue from the run folder's last checkpoint.")
    var resume = false

    @Option(help: "Stop after this many steps in this invocation (the run's total is in the config).")
    var maxSteps: Int?

    func run() throws {
        ActivationStorage.enable(maxBytes: 2 << 30)
        let cfg = try TrainConfig.load(URL(fileURLWithPath: config))
        let trainer = try Trainer(config: cfg, resume: resume)
        say("training \(cfg.name): \(cfg.architecture.layout.rawValue), \(cfg.architecture.numBlocks) blocks, crop \(cfg.crop), batch \(cfg.batch), \(cfg.mode.rawValue) backprop; \(trainer.clipSummary); from step \(trainer.step) of \(cfg.steps); kernels \(trainer.kernels.rawValue)")
        let stop = StopFlag()
        let signals = stop.catchSignals()
        defer { signals.forEach { $0.cancel() } }

        let start = Date()
        let firstStep = trainer.step
        var recent: [Double] = []
        let endStep = min(cfg.steps, maxSteps.map { trainer.step + $0 } ?? cfg.steps)
        while trainer.step < endStep && !stop.isSet {
            let t0 = Date()
            let loss = try trainer.trainStep()
            let dt = Date().timeIntervalSince(t0)
            recent.append(loss)
            if recent.count > 50 { recent.removeFirst() }
            let done = trainer.step - firstStep
            let perStep = Date().timeIntervalSince(start) / Double(done)
            let eta = perStep * Double(cfg.steps - trainer.step)
            let avg = recent.reduce(0, +) / Double(recent.count)
            say(String(format: "step %d/%d  loss %.5f  avg50 %.5f  %.2f samples/s  %.1f s/step  ETA %@", trainer.step, cfg.steps, loss, avg,
                         Double(cfg.batch) / dt, dt, Self.duration(eta)))
            trainer.appendLog(["step": trainer.step, "loss": loss, "seconds": dt, "samples_per_second": Double(cfg.batch) / dt,
                               "learning_rate": Double(cfg.learningRate), "time": Date().timeIntervalSince1970])
            if trainer.step % cfg.checkpointEvery == 0 { try trainer.saveCheckpoint() }
            if trainer.step % cfg.validateEvery == 0 { try reportValidation(trainer) }
        }
        try trainer.saveCheckpoint()
        say("checkpoint at step \(trainer.step): \(trainer.weightsURL.path)")
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let m = Int(s / 60)
        return m >= 60 ? "\(m / 60)h\(String(format: "%02d", m % 60))m" : "\(m)m\(String(format: "%02d", Int(s) % 60))s"
    }
}

/// Scores the weights and, when the run keeps one, their moving average on the validation
/// scenes, prints them and logs them (ema_psnr_*, ema_ssim_* for the average); nothing when the
/// run has no validation data.
func reportValidation(_ trainer: Trainer) throws {
    var record: [String: Any] = ["step": trainer.step, "time": Date().timeIntervalSince1970]
    for (averaged, prefix) in [(false, ""), (true, "ema_")] where !averaged || trainer.average != nil {
        let results = try trainer.validate(averaged: averaged)
        guard !results.isEmpty else { return }
        let line = results.map { String(format: "%@ %.2f dB / %.4f", $0.scene, $0.meanPSNR, $0.meanSSIM) }.joined(separator: ", ")
        say("validation at step \(trainer.step)\(averaged ? " (weight average)" : ""): \(line)")
        for r in results { record["\(prefix)psnr_\(r.scene)"] = r.meanPSNR; record["\(prefix)ssim_\(r.scene)"] = r.meanSSIM }
    }
    trainer.appendLog(record)
}

/// Set from a signal handler, read by the training loop.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }

    /// Makes SIGINT and SIGTERM set this flag instead of ending the process (the loop then
    /// saves a checkpoint and stops); cancel the returned sources to stop listening.
    func catchSignals() -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in set() }
            source.resume()
            return source
        }
    }
}

struct TrainBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-bench",
        abstract: "Time one training step (both backprop modes) beside the forward pass, and report peak memory.",
        discussion: """
        Random weights and data at --size. The arithmetic floor of a step is about 3 forward passes
        in plain mode (forward, input gradients, weight gradients) and about 5 in reversible mode
        (forward, reverse, recompute, two backward convolutions per layer). Peak RSS is the whole
        process's high-water mark: run one mode per process to compare memory across depths.
        """
    )

    @Option(help: "Reversible blocks.") var blocks: Int = 18
    @Option(help: "Channel groups per block.") var groups: Int = 2
    @Option(help: "HxWxT.") var size: String = "128x128x8"
    @Option(help: "Modes to time: reversible, plain, or both.") var mode: String = "both"
    @Option(help: "Timed steps per mode (median reported).") var steps: Int = 2
    @Flag(help: "Skip the forward-pass timing.") var noForward = false

    func run() throws {
        ActivationStorage.enable(maxBytes: 2 << 30)
        let dims = size.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3 else { throw ValidationError("--size takes HxWxT") }
        let (h, w, t) = (dims[0], dims[1], dims[2])
        let modes: [BackpropMode] = mode == "both" ? [.plain, .reversible] : [try BackpropMode(rawValue: mode).orThrow(ValidationError("--mode: reversible, plain or both"))]
        let arch = ModelArchitecture(layout: .multiGroup, numBlocks: blocks, numGroups: groups)
        let net = try RevSCINetwork(weights: arch.randomWeights(seed: 3))
        var rng = SeededGenerator(seed: 4)
        let input = (0 ..< t * h * w).map { _ in Float.random(in: 0 ..< 1, using: &rng) }
        let target = (0 ..< t * h * w).map { _ in Float.random(in: 0 ..< 1, using: &rng) }
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        func time(_ body: () throws -> Void) rethrows -> Double {
            let s = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - s) / 1e9
        }
        print("train-bench: \(blocks) blocks x \(groups) groups, \(h)x\(w)x\(t), batch 1, kernels \(KernelSet.active.rawValue)")
        var forward: Double?
        if !noForward {
            _ = try net.forward(input, frames: t, height: h, width: w)
            forward = median(try (0 ..< max(steps, 1)).map { _ in try time { _ = try net.forward(input, frames: t, height: h, width: w) } })
            print(String(format: "forward: %.3f s (%.1f GFLOP)", forward!, net.flops(frames: t, height: h, width: w) / 1e9))
        }
        for m in modes {
            let graph = TrainingGraph(network: net)
            var grads = graph.zeroGradients()
            let times = try (0 ..< max(steps, 1)).map { _ in
                try time { try graph.accumulate(input: input, target: target, frames: t, height: h, width: w, mode: m, into: &grads) }
            }
            let s = median(times)
            let ratio = forward.map { String(format: " = %.2f forward passes (floor about %d)", s / $0, m == .plain ? 3 : 5) } ?? ""
            print(String(format: "%@ step: %.3f s%@", m.rawValue, s, ratio))
        }
        if let rss = ProcessMemory.peakResidentBytes { print(String(format: "peak RSS %.0f MB", Double(rss) / 1_048_576)) }
    }
}

extension Optional {
    func orThrow(_ error: @autoclosure () -> Error) throws -> Wrapped {
        guard let v = self else { throw error() }
        return v
    }
}

/// Writes a line to standard output at once (unbuffered), so progress reaches a log file as it happens.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
