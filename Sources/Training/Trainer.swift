import Foundation
import Formats
import Reconstruction
import SCICore

/// The training loop: batches of clips, reversible or plain backprop, Adam, checkpoints that a
/// killed run resumes from, validation on the benchmark scenes, and a JSON-lines log.
public final class Trainer: @unchecked Sendable {
    public let config: TrainConfig
    public private(set) var parameters: [String: [Float]]
    public private(set) var optimizer: Adam
    public private(set) var step: Int
    /// The moving average of the weights (config `ema_decay`), or nil when the run keeps none.
    public private(set) var average: [String: [Float]]?
    let shapes: [(name: String, shape: [Int])]
    let data: TrainingData
    let runDirectory: URL
    var log: FileHandle?
    public var kernels: KernelSet = .active

    /// A checkpoint's files, in the run folder and in an `initial_checkpoint` folder alike.
    static let weightsName = "weights.safetensors", optimizerName = "optimizer.safetensors", averageName = "average.safetensors"
    static let logName = "log.jsonl"
    public var weightsURL: URL { runDirectory.appendingPathComponent(Self.weightsName) }
    var optimizerURL: URL { runDirectory.appendingPathComponent(Self.optimizerName) }
    public var averageURL: URL { runDirectory.appendingPathComponent(Self.averageName) }
    public var logURL: URL { runDirectory.appendingPathComponent(Self.logName) }

    /// Starts a run, or with `resume` continues from the run folder's last checkpoint.
    public init(config: TrainConfig, resume: Bool) throws {
        self.config = config
        runDirectory = URL(fileURLWithPath: config.output)
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        shapes = config.architecture.parameterShapes
        guard !config.architecture.color else { throw SCIError("training covers grayscale models; the clip loader has no color data") }
        var fixedMask: MaskStack?
        if let mask = config.mask {
            let file = try ArrayFile.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: mask))), defaultName: "mask")
            fixedMask = try SCIInput.mask(try ReconstructionInput.pick(file, ReconstructionInput.maskNames, what: "mask"), order: file.planeOrder)
        }
        data = try TrainingData(directory: URL(fileURLWithPath: config.data), frames: config.frames, crop: config.crop, fixedMask: fixedMask, fixedMaskFraction: config.maskFraction,
                                    randomMasks: config.randomMasks, maskFamily: config.maskFamily,
                                    exposure: config.exposure, motion: config.motion,
                                    zoom: config.zoom)
        // (self's URL properties are not usable before every stored property is set.)
        let (weightsFile, optimizerFile, averageFile) = (runDirectory.appendingPathComponent(Self.weightsName),
                                                         runDirectory.appendingPathComponent(Self.optimizerName),
                                                         runDirectory.appendingPathComponent(Self.averageName))
        if resume, !FileManager.default.fileExists(atPath: weightsFile.path), let initial = config.initialCheckpoint {
            // A fresh machine: start from the committed snapshot (its weight average too, when it has
            // one, and its log, so the run's log keeps the whole history rather than restarting there).
            let dir = URL(fileURLWithPath: initial)
            let logFile = runDirectory.appendingPathComponent(Self.logName)
            for (target, required) in [(weightsFile, true), (optimizerFile, true), (averageFile, false), (logFile, false)] {
                let source = dir.appendingPathComponent(target.lastPathComponent)
                if target == logFile, FileManager.default.fileExists(atPath: target.path) { continue }  // written before any checkpoint
                if required || FileManager.default.fileExists(atPath: source.path) { try FileManager.default.copyItem(at: source, to: target) }
            }
        }
        if resume, FileManager.default.fileExists(atPath: weightsFile.path) {
            parameters = try Self.loadParameters(weightsFile, shapes: shapes, what: "checkpoint")
            let o = try SafetensorsFile.decode([UInt8](try Data(contentsOf: optimizerFile)))
            guard let s = o.metadata["step"].flatMap(Int.init) else { throw SCIError("optimizer checkpoint lacks its step") }
            step = s
            var m: [String: [Float]] = [:], v: [String: [Float]] = [:]
            for (name, array) in o.tensors {
                if name.hasPrefix("m.") { m[String(name.dropFirst(2))] = array.floats() }
                if name.hasPrefix("v.") { v[String(name.dropFirst(2))] = array.floats() }
            }
            optimizer = Adam(learningRate: config.learningRate, step: s, m: m, v: v)
        } else if let initial = config.initialWeights {
            let loaded = try WeightsFile.load(URL(fileURLWithPath: initial)).mapValues { $0.floats() }
            let expected = config.architecture.parameterShapes
            var kept: [String: [Float]] = [:]
            for (name, shape) in expected {
                guard let values = loaded[name], values.count == shape.reduce(1, *) else {
                    throw SCIError("initial weights \(initial) do not fit this architecture (parameter \(name))")
                }
                kept[name] = values
            }
            parameters = kept
            optimizer = Adam(learningRate: config.learningRate)
            step = 0
        } else {
            parameters = config.architecture.randomWeights(seed: config.seed).mapValues { $0.floats() }
            optimizer = Adam(learningRate: config.learningRate)
            step = 0
        }
        if config.emaDecay != nil {
            // A run that kept no average yet (or predates it) starts the average at its weights.
            average = resume && FileManager.default.fileExists(atPath: averageFile.path)
                ? try Self.loadParameters(averageFile, shapes: shapes, what: "weight average") : parameters
        }
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        log = try FileHandle(forWritingTo: logURL)
        try log?.seekToEnd()
    }

    public var clipSummary: String { "\(data.clips.count) clips, \(data.windowCount) windows of \(config.frames) frames" }

    /// Parameters read from a safetensors file, each checked against the architecture's shapes.
    static func loadParameters(_ url: URL, shapes: [(name: String, shape: [Int])], what: String) throws -> [String: [Float]] {
        let file = try SafetensorsFile.decode([UInt8](try Data(contentsOf: url)))
        let loaded = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.array.floats()) })
        for (name, shape) in shapes where loaded[name]?.count != shape.reduce(1, *) {
            throw SCIError("\(what) \(url.path) does not fit this architecture (parameter \(name))")
        }
        return loaded
    }

    /// `source` (the weights or their average) as named arrays in the architecture's order.
    func tensors(_ source: [String: [Float]]) -> [(name: String, array: NumericArray)] {
        shapes.map { ($0.name, NumericArray(shape: $0.shape, float32: source[$0.name]!)) }
    }

    /// The weights (or, with `averaged`, their moving average) as named arrays.
    func weightArrays(averaged: Bool = false) -> [String: NumericArray] {
        Dictionary(uniqueKeysWithValues: tensors(averaged ? average ?? parameters : parameters))
    }

    public func network() throws -> RevSCINetwork { try RevSCINetwork(weights: weightArrays()) }

    /// Writes the weights (with `averaged`, their moving average when the run keeps one) as a
    /// model's .safetensors.
    public func exportWeights(to url: URL, averaged: Bool) throws {
        let file = SafetensorsFile.encode(tensors(averaged ? average ?? parameters : parameters),
                                          metadata: ["step": String(step), "run": config.name])
        try Data(file).write(to: url, options: .atomic)
    }

    /// average += (1 - decay) * (weights - average), for every parameter.
    func updateAverage(decay: Float) {
        guard average != nil else { return }
        for (name, p) in parameters {
            average![name]!.withUnsafeMutableBufferPointer { a in
                for i in a.indices { a[i] += (1 - decay) * (p[i] - a[i]) }
            }
        }
    }

    /// One optimizer step on one batch; returns the mean loss.
    public func trainStep() throws -> Double {
        let graph = TrainingGraph(network: try network(), kernels: kernels)
        var grads = graph.zeroGradients()
        var loss = 0.0
        for i in 0 ..< config.batch {
            let s = try data.sample(step: step, index: i, seed: config.seed) { y, mask in
                try RevSCIReconstructor.networkInput(y, mask: mask, color: false)
            }
            let (l, _) = try graph.accumulate(input: s.input, target: s.target, frames: config.frames, height: config.crop,
                                              width: config.crop, mode: config.mode, scale: 1 / Float(config.batch), into: &grads)
            loss += l
        }
        var flat: [String: [Float]] = [:]
        for (layer, g) in grads {
            flat[layer + ".weight"] = g.weight
            flat[layer + ".bias"] = g.bias
        }
        optimizer.update(&parameters, gradients: flat)
        if let decay = config.emaDecay { updateAverage(decay: Float(decay)) }
        step += 1
        return loss / Double(config.batch)
    }

    var modelConfig: ModelConfig {
        ModelConfig(name: config.name, description: "training run \(config.output)", architecture: config.architecture, frames: config.frames)
    }

    /// Writes weights, optimizer state and the weight average atomically (temporary file, then rename).
    public func saveCheckpoint() throws {
        let meta = ["step": String(step), "name": config.name, "layout": config.architecture.layout.rawValue,
                    "num_block": String(config.architecture.numBlocks), "num_group": String(config.architecture.numGroups)]
        let weights = SafetensorsFile.encode(tensors(parameters), metadata: meta)
        if let average, let decay = config.emaDecay {
            try Self.atomicWrite(SafetensorsFile.encode(tensors(average), metadata: meta.merging(["ema_decay": String(decay)]) { $1 }), to: averageURL)
        }
        var moments: [(name: String, array: NumericArray)] = []
        for (name, shape) in shapes {
            if let m = optimizer.m[name] { moments.append(("m." + name, NumericArray(shape: shape, float32: m))) }
            if let v = optimizer.v[name] { moments.append(("v." + name, NumericArray(shape: shape, float32: v))) }
        }
        let opt = SafetensorsFile.encode(moments, metadata: ["step": String(step), "learning_rate": String(optimizer.learningRate)])
        // Optimizer first: a crash between the two renames leaves a step count the weights match or exceed.
        try Self.atomicWrite(opt, to: optimizerURL)
        try Self.atomicWrite(weights, to: weightsURL)
    }

    static func atomicWrite(_ bytes: [UInt8], to url: URL) throws {
        let tmp = url.appendingPathExtension("tmp")
        try Data(bytes).write(to: tmp)
        let fd = open(tmp.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        // rename(2) replaces the old file atomically: a reader sees the old or the new one, never neither.
        guard rename(tmp.path, url.path) == 0 else {
            throw SCIError("cannot move \(tmp.path) into place: \(String(cString: strerror(errno)))")
        }
    }

    /// Benchmark-protocol PSNR/SSIM of the current weights (or their moving average) on the validation folder.
    public func validate(averaged: Bool = false) throws -> [BenchmarkProtocol.SceneResult] {
        guard let folder = config.validationData else { return [] }
        let dir = URL(fileURLWithPath: folder)
        let maskURL = config.validationMask.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("mask.mat")
        let mask = try BenchmarkProtocol.loadMask(maskURL)
        let reconstructor = try RevSCIReconstructor(config: modelConfig, weights: weightArrays(averaged: averaged))
        return try BenchmarkProtocol.sceneFiles(in: dir, excluding: maskURL).map {
            try BenchmarkProtocol.run(try BenchmarkProtocol.loadScene($0), mask: mask, reconstructor: reconstructor)
        }
    }

    public func appendLog(_ record: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        log?.write(data + Data("\n".utf8))
    }
}
