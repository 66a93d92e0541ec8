import Foundation
import Formats
import Reconstruction
import SCICore

/// Runs one job on a worker thread: marks it running, rebuilds its input from the stored files
/// (exactly as the submission was checked), reconstructs, stores the result and the metrics,
/// and records the final state. Every state change is written before the next step.
struct JobRunner: Sendable {
    let store: JobStore
    let masks: MaskStore
    let models: ModelRegistry
    let metrics: MetricsRegistry
    let prepared: PreparedInputs
    let log: ServiceLog
    /// Called after a job reached a final state (janitor, tests).
    let finished: @Sendable (Job) -> Void

    /// The result file in a job's folder: float32 frames x H x W on the [0, 1] scale.
    static let resultFile = "frames.npy"

    func run(_ id: String, control: WorkerPool.Control) {
        let now = Date()
        var startedJob: Job?
        do {
            startedJob = try store.update(id) { job in
                guard job.state == .queued else { return }
                job.state = .running
                job.started = now
                job.finished = nil
                job.progress = 0
                job.attempts += 1
            }
        } catch {
            log("job \(id): cannot mark it running: \(error)")
            return
        }
        guard let job = startedJob, job.state == .running, job.started == now else { return }
        log("job \(id): running (\(job.options.algorithm)\(job.options.model.map { " " + $0 } ?? ""), attempt \(job.attempts))")

        let outcome: Result<(Video, Metrics.Scores?, Double), any Error>
        do {
            let input = try prepared.take(id) ?? loadInput(job)
            let reconstructor = try makeReconstructor(job.options)
            // The last 5% are scoring and writing the result; `succeeded` reports 1.
            let context = ReconstructionContext(progress: { [store] p in store.setProgress(id, 0.95 * p) },
                                                cancellation: control.token)
            let clock = Date()
            let video = try reconstructor.reconstruct(input.snapshots, mask: input.mask, context: context)
            let seconds = Date().timeIntervalSince(clock)
            try control.token.check()
            try Self.requireFinite(video, whiteLevel: input.whiteLevel)
            let scores = try input.groundTruth.map { try Metrics.score(reference: $0, estimate: video) }
            try store.writeFile(id, Self.resultFile,
                                NPY.encode(NumericArray(shape: [video.frames, video.height, video.width], float32: video.pixels)))
            outcome = .success((video, scores, seconds))
        } catch {
            outcome = .failure(error)
        }

        let final: Job?
        do {
            switch outcome {
            case .success where store.get(id)?.cancelRequested == true:
                // DELETE arrived while the job ran and was answered "cancelling": keep that word.
                final = try store.update(id) { job in
                    job.state = .cancelled
                    job.finished = Date()
                }
                metrics.recordFinished(state: .cancelled, algorithm: job.options.algorithm, seconds: nil)
                log("job \(id): cancelled (finished after its cancellation was requested; result discarded)")
            case .success(let (_, scores, seconds)):
                final = try store.update(id) { job in
                    job.state = .succeeded
                    job.progress = 1
                    job.finished = Date()
                    job.reconstructionSeconds = seconds
                    job.metrics = scores.map {
                        Job.Scores(psnr: $0.psnr, ssim: $0.ssim, meanPSNR: $0.meanPSNR, meanSSIM: $0.meanSSIM)
                    }
                }
                metrics.recordFinished(state: .succeeded, algorithm: job.options.algorithm, seconds: seconds)
                log("job \(id): succeeded in \(String(format: "%.3f", seconds)) s"
                    + (scores.map { String(format: ", PSNR %.2f dB, SSIM %.4f", $0.meanPSNR, $0.meanSSIM) } ?? ""))
            case .failure(let error) where error is ReconstructionCancelled || control.interruption != nil:
                if control.interruption == .shutdown {
                    final = try store.update(id) { job in
                        job.state = .queued
                        job.started = nil
                        job.progress = 0
                        // A graceful stop is not a crash: `attempts` counts interrupted runs only.
                        job.attempts = max(0, job.attempts - 1)
                    }
                    log("job \(id): stopped by shutdown, kept queued for the next start")
                    return
                }
                final = try store.update(id) { job in
                    job.state = .cancelled
                    job.finished = Date()
                }
                metrics.recordFinished(state: .cancelled, algorithm: job.options.algorithm, seconds: nil)
                log("job \(id): cancelled")
            case .failure(let error):
                let detail: String
                switch error {
                case let e as ProblemDocument: detail = e.detail
                case let e as SCIError: detail = e.message
                case let e as FormatError: detail = e.description
                default: detail = "\(error)"
                }
                final = try store.update(id) { job in
                    job.state = .failed
                    job.finished = Date()
                    job.failure = Job.Failure(title: "Reconstruction failed", detail: detail)
                }
                metrics.recordFinished(state: .failed, algorithm: job.options.algorithm, seconds: nil)
                log("job \(id): failed: \(detail)")
            }
        } catch {
            log("job \(id): cannot record its final state: \(error)")
            return
        }
        if let final { finished(final) }
    }

    /// A result holding NaN or infinity is not stored: it would make every download meaningless
    /// (and PNG frames of it all black). The job fails saying why instead.
    static func requireFinite(_ video: Video, whiteLevel: Float) throws {
        let bad = nonFiniteCount(video.pixels)
        guard bad > 0 else { return }
        throw SCIError("the reconstruction produced \(bad) NaN or infinite value(s) out of \(video.pixels.count): the input's values overflow float32 arithmetic on the [0, 1] scale (white level \(whiteLevel)); state a white_level near the measurement's largest value, or rescale the data")
    }

    /// The job's reconstruction input, rebuilt from its folder and the mask store.
    func loadInput(_ job: Job) throws -> ReconstructionInput {
        guard let measurement = job.input("measurement") else { throw StorageError("job \(job.id) has no measurement file") }
        let measurementFile = try ArrayFile.decode(try store.readFile(job.id, measurement.file), defaultName: "meas")
        let maskFile = try ArrayFile.decode(try DurableFile.read(masks.npyPath(job.maskID)), defaultName: "mask")
        let truthFile = try job.input("ground_truth").map {
            try ArrayFile.decode(try store.readFile(job.id, $0.file), defaultName: "orig")
        }
        return try JobSubmission.buildInput(measurement: measurementFile, mask: maskFile, groundTruth: truthFile,
                                            options: job.options)
    }

    /// The reconstructor the job's options ask for.
    func makeReconstructor(_ options: JobOptions) throws -> any Reconstructor {
        if options.algorithm == "revsci" {
            return try models.reconstructor(named: options.model ?? "")
        }
        if options.algorithm == "pnp-ffdnet" {
            let schedule = PnPFFDNet.Schedule(rawValue: options.schedule ?? "warm") ?? .warm
            return PnPFFDNet(network: try models.ffdnet(), schedule: schedule, sigmas: options.sigmas,
                             iterationsPerSigma: options.sigmaIterations, warmIterations: options.warmIterations,
                             tvWeight: options.tvWeight ?? 0.3, tvIterations: options.tvIterations ?? 5)
        }
        return GAPTV(iterations: options.iterations ?? 40, tvWeight: Float(options.tvWeight ?? 0.3),
                     tvIterations: options.tvIterations ?? 5)
    }
}
