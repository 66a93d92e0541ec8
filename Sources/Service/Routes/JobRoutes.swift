import Foundation
import Formats
import HTTP
import SCICore

/// /v1/jobs: submit, list, inspect, cancel or remove jobs, and download their results.
struct JobRoutes: Sendable {
    let service: ReconstructionService

    private var store: JobStore { service.store }

    // MARK: - POST /v1/jobs

    func submit(_ request: HTTPRequest) throws -> HTTPResponse {
        // Cheap refusals first: a full queue or a stopping server need not read the files.
        try service.requireAccepting()
        guard service.pool.reserve() else { throw service.queueFullProblem() }
        var reserved = true
        defer { if reserved { service.pool.release() } }

        let submission = try service.decoding {
            try JobSubmission.parse(request, config: service.config, masks: service.masks, models: service.models,
                                    limits: service.decodeLimits)
        }
        // The stored files, the mask and the result (frames x H x W float32) are reserved under
        // the quota at once, so concurrent submissions cannot overshoot it together.
        let incoming = Int64(submission.files.reduce(0) { $0 + $1.bytes.count }
            + 4 * submission.input.mask.values.count + 4 * submission.input.snapshots.count * submission.input.mask.values.count)
        guard service.janitor.reserve(incoming) else { throw service.quotaProblem() }
        defer { service.janitor.release(incoming) }

        let input = submission.input
        let id = JobStore.newID()
        let job: Job = try service.storageLock.withLock {
            let mask: MaskInfo
            do {
                mask = try service.masks.put(input.mask, source: .job).info
            } catch {
                throw ProblemDocument.internalError("The mask could not be stored: \(error)")
            }
            let job = Job(
                id: id, sequence: store.takeSequence(), state: .queued, progress: 0, created: Date(),
                started: nil, finished: nil, reconstructionSeconds: nil, attempts: 0, cancelRequested: false,
                options: submission.options,
                shape: Job.Shape(snapshots: input.snapshots.count, framesPerSnapshot: input.mask.frames,
                                 height: input.mask.height, width: input.mask.width),
                whiteLevel: Double(input.whiteLevel),
                whiteLevelSource: submission.options.whiteLevel == nil ? "inferred" : "stated",
                maskID: mask.id,
                inputs: submission.files.map {
                    Job.Input(role: $0.role, file: $0.storedName, format: $0.kind.rawValue, bytes: $0.bytes.count, filename: $0.filename)
                },
                hasGroundTruth: input.groundTruth != nil, metrics: nil, failure: nil)
            do {
                try store.create(job, files: submission.files.map { ($0.storedName, $0.bytes) })
            } catch {
                throw ProblemDocument.internalError("The job could not be stored: \(error)")
            }
            return job
        }
        reserved = false
        service.preparedInputs.put(id, input)
        service.pool.enqueue(id, reserved: true)
        service.metrics.recordSubmission()
        service.log("job \(id): queued (\(job.options.algorithm), \(job.shape.snapshots) snapshot(s) of \(job.shape.height)x\(job.shape.width), \(job.shape.framesPerSnapshot) frames each, white level \(job.whiteLevel) \(job.whiteLevelSource))")
        var response = HTTPResponse.json(raw: JobView.json(job).bytes, status: .accepted)
        response.headers.add(name: "Location", value: "/v1/jobs/\(id)")
        response.headers.add(name: "Cache-Control", value: "no-store")
        return response
    }

    // MARK: - GET /v1/jobs

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        var states: Set<JobState>?
        if let text = request.queryValue("state"), !text.isEmpty {
            var wanted = Set<JobState>()
            for name in text.split(separator: ",") {
                guard let state = JobState(rawValue: String(name).trimmingCharacters(in: .whitespaces)) else {
                    throw ProblemDocument.badRequest("Unknown state '\(name.prefix(40))' in ?state=; use one or more (comma-separated) of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).")
                }
                wanted.insert(state)
            }
            states = wanted
        }
        var limit = 100
        if let text = request.queryValue("limit") {
            guard let value = Int(text), (1 ... 1000).contains(value) else {
                throw ProblemDocument.badRequest("?limit= must be an integer from 1 to 1000 (got '\(text.prefix(40))').")
            }
            limit = value
        }
        let all = store.all().filter { states?.contains($0.state) ?? true }
        let now = Date()
        let page = all.prefix(limit).map { JobView.json($0, now: now) }
        var response = HTTPResponse.json(raw: JSONValue.object([
            ("jobs", .array(Array(page))), ("count", .int(page.count)), ("total", .int(all.count)),
        ]).bytes)
        response.headers.add(name: "Cache-Control", value: "no-store")
        return response
    }

    // MARK: - GET /v1/jobs/{id}

    func get(_ id: String) throws -> HTTPResponse {
        let job = try find(id)
        var response = HTTPResponse.json(raw: JobView.json(job).bytes)
        response.headers.add(name: "Cache-Control", value: "no-store")
        return response
    }

    // MARK: - DELETE /v1/jobs/{id}

    /// Queued: cancelled at once (200). Running: cancellation requested (202; the state turns
    /// `cancelled` within one iteration). Finished: removed with its files (204).
    func delete(_ id: String) throws -> HTTPResponse {
        let job = try find(id)
        if job.state.isFinished {
            store.remove(id)
            service.results.forget(id)
            service.log("job \(id): removed")
            return .empty(.noContent)
        }
        if service.pool.removeQueued(id) || job.state == .queued && !service.pool.isQueued(id) && !isRunning(id) {
            // Only a job still queued is cancelled here: a worker may have started it since
            // the checks above (the store's update is atomic), and then it is interrupted below.
            let updated = try persist { try store.update(id) { job in
                guard job.state == .queued else { return }
                job.state = .cancelled
                job.finished = Date()
                job.cancelRequested = true
            } }
            guard updated?.state != .queued && updated?.state != .running else {
                return try interruptRunning(id, job)
            }
            _ = service.preparedInputs.take(id)
            service.metrics.recordFinished(state: .cancelled, algorithm: job.options.algorithm, seconds: nil)
            service.log("job \(id): cancelled before it started")
            service.janitor.poke()
            return .json(raw: JobView.json(updated ?? job).bytes)
        }
        return try interruptRunning(id, job)
    }

    /// Asks the worker running the job to stop; the job ends `cancelled` (the runner checks
    /// `cancel_requested` before it records a success, so a late finish cannot override it).
    private func interruptRunning(_ id: String, _ job: Job) throws -> HTTPResponse {
        let updated = try persist { try store.update(id) { job in
            if !job.state.isFinished { job.cancelRequested = true }
        } }
        service.pool.interrupt(id, .cancel)
        return .json(raw: JobView.json(updated ?? job).bytes, status: .accepted)
    }

    private func isRunning(_ id: String) -> Bool { store.get(id)?.state == .running }

    private func persist(_ body: () throws -> Job?) throws -> Job? {
        do { return try body() } catch {
            throw ProblemDocument.internalError("The job's state could not be saved: \(error)")
        }
    }

    // MARK: - Results

    func framePNG(_ id: String, _ name: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let job = try find(id)
        let bits = try bitDepth(request, job)
        try requireResult(job)
        let frames = job.shape.snapshots * job.shape.framesPerSnapshot
        let digits = name.hasSuffix(".png") ? name.dropLast(4) : ""
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let k = Int(digits),
              (0 ..< frames).contains(k) else {
            throw ProblemDocument.notFound("Frame '\(name.prefix(40))' does not exist: this job has frames 0.png to \(frames - 1).png.")
        }
        var headers: HTTPHeaders = ["Content-Type": "image/png"]
        headers.add(name: "Content-Disposition", value: "inline; filename=\"\(FrameEncoding.frameName(k))\"")
        if request.method == "HEAD" { return .headOnly(headers: headers, length: nil) }
        let video = try service.decoding { try result(job) }
        guard k < video.frames else {
            throw ProblemDocument.internalError("The stored result of job \(job.id) has \(video.frames) frames, not \(frames).")
        }
        return HTTPResponse(status: .ok, headers: headers, body: FrameEncoding.png(video, frame: k, bitDepth: bits))
    }

    func framesZip(_ id: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let job = try find(id)
        let bits = try bitDepth(request, job)
        try requireResult(job)
        let cached = "frames-\(bits).zip"
        var headers: HTTPHeaders = ["Content-Type": "application/zip"]
        headers.add(name: "Content-Disposition", value: "attachment; filename=\"\(id)-frames.zip\"")
        if let file = ResponseBodyFile(path: store.path(id, cached)) { return .file(file, headers: headers) }
        if request.method == "HEAD" { return .headOnly(headers: headers, length: nil) }
        let built: [UInt8] = try service.decoding {
            if DurableFile.exists(store.path(id, cached)) { return [] as [UInt8] }   // built meanwhile
            let video = try result(job)
            var zip = ZipWriter()
            do {
                for k in 0 ..< video.frames {
                    try zip.add(name: FrameEncoding.frameName(k), data: FrameEncoding.png(video, frame: k, bitDepth: bits), compress: false)
                }
            } catch let error as FormatError {
                throw ProblemDocument.invalidInput("The frames of job \(id) cannot be zipped: \(error.message); download them one by one from /v1/jobs/\(id)/frames/{k}.png.")
            }
            return zip.finish()
        }
        // Kept in the job's folder while it fits the quota (counted in the job's size), and
        // sent from there; otherwise sent from memory this once.
        if !built.isEmpty {
            let size = Int64(built.count)
            if service.janitor.reserve(size) {
                try? store.writeFile(id, cached, built)
                service.janitor.release(size)
            }
        }
        if let file = ResponseBodyFile(path: store.path(id, cached)) { return .file(file, headers: headers) }
        return HTTPResponse(status: .ok, headers: headers, body: built)
    }

    func resultNPY(_ id: String, _ request: HTTPRequest) throws -> HTTPResponse {
        let job = try find(id)
        try requireResult(job)
        var headers: HTTPHeaders = ["Content-Type": "application/octet-stream"]
        headers.add(name: "Content-Disposition", value: "attachment; filename=\"\(id)-result.npy\"")
        // On the [0, 1] scale the stored result is the download: sent from disk as it is.
        if job.whiteLevel == 1, let file = ResponseBodyFile(path: store.path(id, JobRunner.resultFile)) {
            return .file(file, headers: headers)
        }
        if request.method == "HEAD" {
            // The stored result has the download's shape and type: the same length.
            return .headOnly(headers: headers, length: store.fileSize(id, JobRunner.resultFile))
        }
        let bytes = try service.decoding {
            FrameEncoding.npy(try result(job), whiteLevel: Float(job.whiteLevel))
        }
        return HTTPResponse(status: .ok, headers: headers, body: bytes)
    }

    // MARK: - Helpers

    /// The job, or 404 (ids that cannot be job ids included: nothing outside the store is ever touched).
    func find(_ id: String) throws -> Job {
        guard JobStore.isValidID(id) else {
            throw ProblemDocument.notFound("'\(id.prefix(80))' is not a job id: job ids are the 32 lowercase hex digits returned by POST /v1/jobs.")
        }
        guard let job = store.get(id) else {
            throw ProblemDocument.notFound("There is no job \(id): it never existed, was deleted, or was removed by the retention policy.")
        }
        return job
    }

    /// 409 unless the job has a result.
    func requireResult(_ job: Job) throws {
        guard job.state == .succeeded else {
            let why: String
            switch job.state {
            case .queued, .running: why = "it is \(job.state.rawValue) (progress \(Int(job.progress * 100))%): poll GET /v1/jobs/\(job.id) until its state is 'succeeded'"
            case .failed: why = "it failed: \(job.failure?.detail ?? "see GET /v1/jobs/\(job.id)")"
            default: why = "it was cancelled"
            }
            throw ProblemDocument(.conflict, kind: .jobNotFinished, detail: "Job \(job.id) has no result: \(why).",
                                  extensions: [("job_id", .string(job.id)), ("state", .string(job.state.rawValue))])
        }
    }

    /// The reconstructed frames on [0, 1], or 409 when the job has none.
    func result(_ job: Job) throws -> Video {
        try requireResult(job)
        if let video = service.results.get(job.id) { return video }
        do {
            let array = try NPY.decode(try store.readFile(job.id, JobRunner.resultFile))
            guard array.shape.count == 3 else { throw StorageError("result has shape \(array.shape)") }
            let video = try Video(frames: array.shape[0], height: array.shape[1], width: array.shape[2], pixels: array.floats())
            service.results.put(job.id, video)
            return video
        } catch {
            if store.get(job.id) == nil { throw ProblemDocument.notFound("Job \(job.id) was removed.") }
            throw ProblemDocument.internalError("The result of job \(job.id) cannot be read: \(error)")
        }
    }

    /// `?bits=8|16`, defaulting to the job's `png_bits`.
    func bitDepth(_ request: HTTPRequest, _ job: Job) throws -> Int {
        guard let text = request.queryValue("bits") else { return job.options.pngBits }
        guard text == "8" || text == "16" else {
            throw ProblemDocument.badRequest("?bits= must be 8 or 16 (got '\(text.prefix(20))').")
        }
        return Int(text)!
    }
}

/// Results read from disk recently, so downloading a job's frames one by one decodes its result
/// once. Bounded in bytes (`budget`), not in entries: one huge result must not pin gigabytes.
final class ResultCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(id: String, video: Video)] = []
    private var bytes = 0
    let budget: Int

    init(budget: Int = 256 << 20) { self.budget = budget }

    private static func size(_ video: Video) -> Int { 4 * video.pixels.count }

    func get(_ id: String) -> Video? {
        lock.withLock {
            guard let index = entries.firstIndex(where: { $0.id == id }) else { return nil }
            let entry = entries.remove(at: index)
            entries.append(entry)
            return entry.video
        }
    }

    /// Keeps `video`, evicting the least recently used; a result larger than the budget is not kept.
    func put(_ id: String, _ video: Video) {
        let size = Self.size(video)
        lock.withLock {
            removeLocked(id)
            guard size <= budget else { return }
            while bytes + size > budget, !entries.isEmpty {
                bytes -= Self.size(entries.removeFirst().video)
            }
            entries.append((id, video))
            bytes += size
        }
    }

    func forget(_ id: String) {
        lock.withLock { removeLocked(id) }
    }

    /// Bytes held now.
    var heldBytes: Int { lock.withLock { bytes } }

    private func removeLocked(_ id: String) {
        if let index = entries.firstIndex(where: { $0.id == id }) {
            bytes -= Self.size(entries.remove(at: index).video)
        }
    }
}
