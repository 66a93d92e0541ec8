import Dispatch
import Foundation
import Formats
import HTTP

/// The reconstruction service: job store, mask store, worker pool, janitor and HTTP server
/// wired together.
///
/// ```swift
/// let service = try ReconstructionService(config: config)
/// try service.start()
/// service.runUntilSignalled()   // SIGTERM/SIGINT: graceful shutdown
/// ```
///
/// Opening the service takes an exclusive lock on the data directory and re-queues every job
/// that was queued or running when the previous server stopped (however it stopped).
public final class ReconstructionService: @unchecked Sendable {
    public let config: ServiceConfig
    let log: ServiceLog
    let store: JobStore
    let masks: MaskStore
    let models: ModelRegistry
    let metrics = MetricsRegistry()
    let results = ResultCache()
    let preparedInputs = PreparedInputs()
    let storageLock = NSLock()
    /// Bounds how many requests decode uploaded files at once (`max_concurrent_decodes`).
    let decodeSlots: DispatchSemaphore
    let tokens: [String]
    private(set) var pool: WorkerPool!
    private(set) var janitor: Janitor!
    private let directoryLock: DirectoryLock
    private let stateLock = NSLock()
    private var accepting = false
    private var stopped = false
    private var server: HTTPServer?
    private var finishedHandlers: [@Sendable (Job) -> Void] = []

    var jobRoutes: JobRoutes { JobRoutes(service: self) }
    var maskRoutes: MaskRoutes { MaskRoutes(service: self) }
    var systemRoutes: SystemRoutes { SystemRoutes(service: self) }

    /// Opens the data directory (creating it), locks it, loads the stores and re-queues
    /// unfinished jobs. Nothing listens until `start()`.
    public init(config: ServiceConfig, log: ServiceLog = .standardError) throws {
        try config.validate()
        self.config = config
        self.log = log
        tokens = try config.resolvedTokens()
        decodeSlots = DispatchSemaphore(value: config.maxConcurrentDecodes)
        let root = config.dataDir
        try DurableFile.makeDirectory(root)
        directoryLock = try DirectoryLock(path: root + "/LOCK")
        store = try JobStore(root: root, log: log)
        masks = try MaskStore(directory: root + "/masks", staging: store.stagingDirectory, log: log)
        models = ModelRegistry(directory: config.modelsDir, weightOverrides: config.modelWeights)
        janitor = Janitor(store: store, masks: masks, config: config, storageLock: storageLock, log: log)
        let runner = JobRunner(store: store, masks: masks, models: models, metrics: metrics, prepared: preparedInputs, log: log) { [weak self] job in
            self?.jobFinished(job)
        }
        pool = WorkerPool(capacity: config.maxQueue) { id, control in runner.run(id, control: control) }
        try recover()
    }

    /// Puts every unfinished job back in the queue, in creation order. A job found `running`
    /// was interrupted (crash, kill, power loss); it runs again unless it already started
    /// `max_attempts` times, in which case it fails with a message saying so.
    private func recover() throws {
        var requeued = 0, failed = 0
        for job in store.all().reversed() where !job.state.isFinished {
            if job.state == .running && job.attempts >= config.maxAttempts {
                try store.update(job.id) { job in
                    job.state = .failed
                    job.finished = Date()
                    job.failure = Job.Failure(title: "Interrupted too often",
                        detail: "The server stopped \(job.attempts) times while reconstructing this job (max_attempts \(config.maxAttempts)); check the input, or the server's memory limits, and submit it again.")
                }
                failed += 1
                continue
            }
            if job.state == .running {
                try store.update(job.id) { job in
                    job.state = .queued
                    job.started = nil
                    job.progress = 0
                }
            }
            pool.enqueue(job.id, reserved: false)
            requeued += 1
        }
        if requeued + failed > 0 {
            log("recovered \(requeued) unfinished job(s) from \(config.dataDir)\(failed > 0 ? ", \(failed) failed after \(config.maxAttempts) interrupted attempts" : "")")
        }
    }

    /// Starts the workers, the janitor and the HTTP server.
    public func start() throws {
        let router = Router(service: self)
        // Handlers block (file I/O, decoding) on their connection's own thread: no hop to a
        // shared pool, so /healthz never waits behind another request's work.
        let server = HTTPServer(configuration: config.httpConfiguration,
                                admission: { head, remote in router.admit(head, remoteAddress: remote) },
                                blockingHandler: { request in router.handle(request) })
        try server.start()
        stateLock.withLock {
            self.server = server
            accepting = true
        }
        pool.start(workers: config.workers)
        janitor.start()
        log("configuration: " + String(decoding: config.json.bytes, as: UTF8.self))
        log("revsci serve listening on \(config.tls.enabled ? "https" : "http")://\(config.host):\(server.boundPort) (data \(config.dataDir), \(config.workers) worker(s), queue \(config.maxQueue), auth \(config.auth.enabled ? "on" : "off"))")
    }

    /// The port the server listens on (after `start()`).
    public var port: Int { stateLock.withLock { server?.boundPort ?? 0 } }

    /// Whether new jobs are taken.
    public var isAccepting: Bool { stateLock.withLock { accepting } }

    /// Calls `handler` after each job reaches a final state.
    public func onJobFinished(_ handler: @escaping @Sendable (Job) -> Void) {
        stateLock.withLock { finishedHandlers.append(handler) }
    }

    private func jobFinished(_ job: Job) {
        janitor.poke()
        for handler in stateLock.withLock({ finishedHandlers }) { handler(job) }
    }

    /// Stops gracefully: stops accepting connections (requests in flight finish), gives running
    /// jobs `grace` seconds (default `shutdown_grace_seconds`) to finish, then stops them and
    /// keeps them queued for the next start. Queued jobs stay queued on disk. Safe to call twice.
    public func shutdown(grace: Double? = nil) {
        guard let server = takeServerForStop() else { return }
        let grace = grace ?? config.shutdownGraceSeconds
        log("shutting down: no new connections; running jobs get \(grace) s to finish")
        server?.shutdown(gracePeriod: min(grace, 10))
        pool.stop(grace: grace)
        janitor.stop()
        directoryLock.release()
        log("stopped")
    }

    /// Marks the service stopped; nil when it already was, else the server to stop (if started).
    private func takeServerForStop() -> HTTPServer?? {
        stateLock.withLock {
            guard !stopped else { return nil }
            stopped = true
            accepting = false
            defer { server = nil }
            return .some(server)
        }
    }

    /// Test hook: the process "dies" without any cleanup. No further state is written (the job
    /// running stays `running` on disk), the listener closes, the workers are abandoned.
    func simulateCrash() {
        store.freeze()
        masks.freeze()
        guard let server = takeServerForStop() else { return }
        server?.shutdown(gracePeriod: 0)
        pool.stop(grace: 0)
        janitor.stop()
        directoryLock.release()
    }

    /// Blocks until SIGTERM or SIGINT, then shuts down gracefully and returns. A second signal
    /// during the shutdown exits at once (unfinished jobs are re-queued at the next start anyway).
    public func runUntilSignalled() {
        let done = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "revsci.signals")
        var sources: [DispatchSourceSignal] = []
        final class Latch: @unchecked Sendable {
            private let lock = NSLock()
            private var tripped = false
            /// True the first time only.
            func trip() -> Bool { lock.withLock { defer { tripped = true }; return !tripped } }
        }
        let latch = Latch()
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in
                guard latch.trip() else {
                    log("second signal: exiting now; unfinished jobs will be re-queued at the next start")
                    exit(1)
                }
                log("received \(number == SIGTERM ? "SIGTERM" : "SIGINT")")
                DispatchQueue.global().async {
                    self.shutdown()
                    done.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        done.wait()
        for source in sources { source.cancel() }
    }

    // MARK: - Shared refusals

    /// 503 while shutting down.
    func requireAccepting() throws {
        guard isAccepting else {
            throw ProblemDocument(.serviceUnavailable, kind: .shuttingDown,
                                  detail: "The server is shutting down and takes no new work; retry against its next start.",
                                  headers: [("Retry-After", String(config.retryAfterSeconds))])
        }
    }

    /// 503 with Retry-After unless `bytes` more fit under the disk quota.
    func requireQuota(for bytes: Int64) throws {
        guard janitor.hasRoom(for: bytes) else { throw quotaProblem() }
    }

    func quotaProblem() -> ProblemDocument {
        ProblemDocument(.serviceUnavailable, kind: .quotaExceeded,
            detail: "The job store is over its disk quota (\(config.quotaMiB) MiB) with unfinished jobs and uploaded masks; retry when jobs have finished, or delete finished jobs and unused masks.",
            headers: [("Retry-After", String(config.retryAfterSeconds))])
    }

    /// Runs `body` holding one of the `max_concurrent_decodes` slots.
    func decoding<T>(_ body: () throws -> T) rethrows -> T {
        decodeSlots.wait()
        defer { decodeSlots.signal() }
        return try body()
    }

    /// The limits for decoding one request's files: no array larger than a job may be, and
    /// at most `max_decode_mib` produced by decompression.
    var decodeLimits: DecodeLimits {
        DecodeLimits(maxElements: config.maxOutputValues, maxInflatedBytes: config.maxDecodeMiB << 20)
    }

    /// 429 or 503 (config) with Retry-After when the queue is full.
    func queueFullProblem() -> ProblemDocument {
        ProblemDocument(HTTPStatus(code: config.queueFullStatus), kind: .queueFull,
                        detail: "The job queue is full (\(pool.queueDepth) queued, capacity \(config.maxQueue)); retry after \(config.retryAfterSeconds) s.",
                        extensions: [("queue_depth", .int(pool.queueDepth)), ("queue_capacity", .int(config.maxQueue))],
                        headers: [("Retry-After", String(config.retryAfterSeconds))])
    }
}
