import Foundation

/// Keeps the data directory within its limits: removes finished jobs older than the retention
/// period, then the oldest finished jobs while jobs and masks together exceed the quota, and
/// masks that came with jobs once no job refers to them. Queued and running jobs, and masks
/// uploaded with POST /v1/masks, are never removed.
final class Janitor: @unchecked Sendable {
    private let store: JobStore
    private let masks: MaskStore
    private let retention: Double
    private let quota: Int64
    private let interval: Double
    /// Held while a submission stores its mask and job, so a job-sent mask is never collected
    /// between the two.
    let storageLock: NSLock
    private let log: ServiceLog
    private let queue = DispatchQueue(label: "revsci.janitor")
    private var timer: DispatchSourceTimer?

    init(store: JobStore, masks: MaskStore, config: ServiceConfig, storageLock: NSLock, log: ServiceLog) {
        self.store = store
        self.masks = masks
        retention = config.retentionHours * 3600
        quota = Int64(config.quotaMiB) << 20
        interval = config.janitorIntervalSeconds
        self.storageLock = storageLock
        self.log = log
    }

    /// Runs now and then every `janitor_interval_seconds`.
    func start() {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now(), repeating: interval)
        timer.setEventHandler { [weak self] in self?.sweep() }
        self.timer = timer
        timer.resume()
    }

    func stop() {
        timer?.cancel()
        timer = nil
    }

    /// Asks for a sweep soon (after a job finished).
    func poke() { queue.async { [weak self] in self?.sweep() } }

    private let reservationLock = NSLock()
    /// Bytes promised to submissions that are being stored (checked and taken atomically, so
    /// two concurrent submissions cannot both fit into the same free space).
    private var reserved: Int64 = 0

    /// Whether `incoming` more bytes fit under the quota (after a sweep when they do not at
    /// first), counting the space reserved by submissions in flight.
    func hasRoom(for incoming: Int64) -> Bool {
        guard quota > 0 else { return true }
        if fits(incoming) { return true }
        _ = queue.sync { sweep() }
        return fits(incoming)
    }

    private func fits(_ incoming: Int64) -> Bool {
        store.totalBytes + masks.totalBytes + reservationLock.withLock({ reserved }) + incoming <= quota
    }

    /// Reserves `bytes` under the quota; false when they do not fit even after a sweep. Give
    /// them back with `release` once stored (or abandoned).
    func reserve(_ bytes: Int64) -> Bool {
        guard quota > 0 else { return true }
        for attempt in 0 ..< 2 {
            if attempt == 1 { _ = queue.sync { sweep() } }
            let used = store.totalBytes + masks.totalBytes
            let taken: Bool = reservationLock.withLock {
                guard used + reserved + bytes <= quota else { return false }
                reserved += bytes
                return true
            }
            if taken { return true }
        }
        return false
    }

    /// Returns a reservation.
    func release(_ bytes: Int64) {
        guard quota > 0 else { return }
        reservationLock.withLock { reserved = max(0, reserved - bytes) }
    }

    /// One pass; returns the ids of the jobs it removed.
    @discardableResult
    func sweep(now: Date = Date()) -> [String] {
        var removed: [String] = []
        let finished = store.all().filter { $0.state.isFinished }
            .sorted { ($0.finished ?? $0.created) < ($1.finished ?? $1.created) }
        var kept: [Job] = []
        for job in finished {
            if retention > 0, now.timeIntervalSince(job.finished ?? job.created) > retention {
                if store.remove(job.id) { removed.append(job.id) }
            } else {
                kept.append(job)
            }
        }
        if quota > 0 {
            var total = store.totalBytes + masks.totalBytes
            for job in kept where total > quota {
                let size = store.size(job.id)
                if store.remove(job.id) {
                    removed.append(job.id)
                    total -= size
                }
            }
            if total > quota {
                log("janitor: \(total >> 20) MiB used, over the \(quota >> 20) MiB quota, by unfinished jobs and uploaded masks alone")
            }
        }
        storageLock.withLock {
            let referenced = Set(store.all().map(\.maskID))
            for mask in masks.all() where mask.source == .job && !referenced.contains(mask.id) {
                masks.remove(mask.id)
            }
        }
        if !removed.isEmpty { log("janitor: removed \(removed.count) finished job(s)") }
        return removed
    }
}
