import ArgumentParser
import Dispatch
import Foundation
import Formats
import Reconstruction
import SCICore
import Training

/// `revsci finetune`: adapts a trained RevSCI model to one camera's mask, then writes a model
/// config usable with `--config DIR/model.json` in `reconstruct` and `eval`.
struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Adapt a RevSCI model to one camera's mask (its T, random windows of it).",
        discussion: """
        Starts from --from's weights (a model name from configs/models, or a model config file)
        with a fresh optimizer and trains on the clip media (--data, scripts/build_training_data.py)
        simulated with windows of --mask, for --minutes or --steps, keeping a moving average of
        the weights. Writes DIR/run/ (checkpoints and log.jsonl; --resume continues there),
        DIR/weights.safetensors (the average) and DIR/model.json. With --validation-data
        (a folder of scenes with 'orig'), prints their scores under the camera's mask as it goes.
        """
    )

    @Option(help: "The camera's mask (.mat 'mask' H x W x T, .npy T x H x W, ...).")
    var mask: String

    @Option(name: .customLong("from"), help: "Model to start from: a name from configs/models, or a model config file.")
    var base: String = "revsci-default"

    @Option(help: "Wall-clock minutes of training (default 15 unless --steps is given).")
    var minutes: Double?

    @Option(help: "Optimizer steps (instead of, or as well as, --minutes).")
    var steps: Int?

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Folder of training clips (uint8 (F, H, W) .npy files).")
    var data: String = "training-data"

    @Option(help: "Square crop in pixels (even; at most the mask's size).")
    var crop: Int = 64

    @Option(help: "Samples per step.")
    var batch: Int = 4

    @Option(help: "Adam learning rate.")
    var learningRate: Float = 5e-5

    @Option(help: "Scenes (.mat with 'orig') to score under the mask every --validate-every steps.")
    var validationData: String?

    @Option(help: "Steps between validations.")
    var validateEvery: Int = 100

    @Flag(help: "Continue the run in DIR/run.")
    var resume = false

    func run() throws {
        guard minutes.map({ $0 > 0 }) ?? true, steps.map({ $0 > 0 }) ?? true else {
            throw ValidationError("--minutes and --steps must be positive")
        }
        let budget = minutes ?? (steps == nil ? 15 : nil)
        ActivationStorage.enable(maxBytes: 1 << 30)
        let baseConfig = base.hasSuffix(".json") ? try ModelConfig.load(URL(fileURLWithPath: base)) : try ModelCatalog.config(named: base)
        guard let weights = baseConfig.weightsURL, FileManager.default.isReadableFile(atPath: weights.path) else {
            throw ValidationError("model '\(baseConfig.name)' has no weights to start from")
        }
        let maskFile = try ArrayFile.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: mask))), defaultName: "mask")
        let maskStack = try SCIInput.mask(try ReconstructionInput.pick(maskFile, ReconstructionInput.maskNames, what: "mask"),
                                          order: maskFile.planeOrder)
        let side = min(crop, maskStack.height, maskStack.width) / 2 * 2
        guard side >= 16 else { throw ValidationError("the mask is \(maskStack.height)x\(maskStack.width); fine-tuning needs at least 16x16") }
        let folder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let maskPath = URL(fileURLWithPath: mask).standardizedFileURL.path

        var cfg = TrainConfig(name: folder.lastPathComponent, architecture: baseConfig.architecture,
                              output: folder.appendingPathComponent("run").path)
        cfg.frames = maskStack.frames
        cfg.crop = side
        cfg.batch = batch
        cfg.learningRate = learningRate
        cfg.steps = steps ?? 1_000_000
        cfg.data = data
        cfg.mask = maskPath
        cfg.maskFraction = 1
        // The augmentations the shipped default model was trained with (configs/train/default.json).
        cfg.exposure = .init(gain: [0.7, 1.5], invert: 0.2)
        cfg.motion = .init(frameStride: 3, still: 0.25, object: 0.5, objectSpeed: 8)
        cfg.zoom = .init(probability: 0.5, max: 3)
        cfg.emaDecay = 0.99
        cfg.checkpointEvery = 25
        cfg.validateEvery = validateEvery
        cfg.validationData = validationData
        cfg.validationMask = maskPath
        cfg.initialWeights = weights.path
        try cfg.check("finetune")

        let trainer = try Trainer(config: cfg, resume: resume)
        say("finetune \(baseConfig.name) -> \(folder.path): mask \(maskStack.frames)x\(maskStack.height)x\(maskStack.width), crop \(side), batch \(batch), lr \(learningRate); \(trainer.clipSummary); from step \(trainer.step)"
            + (budget.map { String(format: "; %.1f min", $0) } ?? "") + (steps.map { "; \($0) steps" } ?? ""))
        let stop = StopFlag()
        let signals = stop.catchSignals()
        defer { signals.forEach { $0.cancel() } }
        let start = Date()
        let endStep = steps.map { trainer.step + $0 } ?? Int.max
        var recent: [Double] = []
        while trainer.step < endStep, !stop.isSet, budget.map({ Date().timeIntervalSince(start) < $0 * 60 }) ?? true {
            let t0 = Date()
            let loss = try trainer.trainStep()
            let dt = Date().timeIntervalSince(t0)
            recent.append(loss)
            if recent.count > 50 { recent.removeFirst() }
            say(String(format: "step %d  loss %.5f  avg50 %.5f  %.2f samples/s  %.0f s elapsed", trainer.step, loss,
                       recent.reduce(0, +) / Double(recent.count), Double(batch) / dt, Date().timeIntervalSince(start)))
            trainer.appendLog(["step": trainer.step, "loss": loss, "seconds": dt, "learning_rate": Double(learningRate),
                               "time": Date().timeIntervalSince1970])
            if trainer.step % cfg.checkpointEvery == 0 { try trainer.saveCheckpoint() }
            if validationData != nil, trainer.step % validateEvery == 0 { try reportValidation(trainer) }
        }
        try trainer.saveCheckpoint()
        if validationData != nil { try reportValidation(trainer) }
        let weightsOut = folder.appendingPathComponent("weights.safetensors")
        // The average (decay 0.99) remembers about the last 100 steps: before 300 steps it still
        // leans on the base model's weights, so short runs ship the weights themselves.
        let averaged = trainer.step >= 300
        try trainer.exportWeights(to: weightsOut, averaged: averaged)
        let model = ModelConfig(name: folder.lastPathComponent,
                                description: "\(baseConfig.name) fine-tuned for the mask \(URL(fileURLWithPath: mask).lastPathComponent) (\(maskStack.frames)x\(maskStack.height)x\(maskStack.width)) by revsci finetune: \(trainer.step) steps, crop \(side), batch \(batch), learning rate \(learningRate); \(averaged ? "the weights are their moving average" : "the weights as trained (too few steps for the average)").",
                                architecture: baseConfig.architecture, frames: maskStack.frames,
                                weights: "weights.safetensors", mask: maskPath)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(model).write(to: folder.appendingPathComponent("model.json"), options: .atomic)
        say("wrote \(folder.appendingPathComponent("model.json").path) (use --config with reconstruct or eval)")
    }
}
