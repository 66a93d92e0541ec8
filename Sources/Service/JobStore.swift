import Foundation

/// Jobs on local disk, one folder each:
///
///     <data_dir>/jobs/<id>/job.json            the record, replaced atomically on every state change
///     <data_dir>/jobs/<id>/measurement.<ext>   the uploaded files, byte for byte as sent
///     <data_dir>/jobs/<id>/ground_truth.<ext>
///     <data_dir>/jobs/<id>/frames.npy          the result (float32, frames x H x W, on [0, 1])
///     <data_dir>/jobs/<id>/frames-8.zip        PNG downloads, built on first request
///     <data_dir>/tmp/                          staging; emptied at start
///
/// A job folder is assembled (files written and fsynced) in `tmp/` and renamed into `jobs/`
/// in one step, so after a crash a job either exists with all its inputs or not at all. The
/// records are also kept in memory for listing.
public final class JobStore: @unchecked Sendable {
    public let root: String
    public let jobsDirectory: String
    public let stagingDirectory: String
    private let lock = NSLock()
    private var jobs: [String: Job] = [:]
    private var sizes: [String: Int64] = [:]
    private var nextSequence = 1
    private var frozen = false
    private let log: ServiceLog

    /// Opens the store under `root` (creating it), empties `tmp/`, and loads every job record.
    public init(root: String, log: ServiceLog) throws {
        self.root = root
        self.log = log
        jobsDirectory = root + "/jobs"
        stagingDirectory = root + "/tmp"
        try DurableFile.makeDirectory(jobsDirectory)
        DurableFile.removeTree(stagingDirectory)
        try DurableFile.makeDirectory(stagingDirectory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: jobsDirectory)) ?? []
        for name in names where Self.isValidID(name) {
            let folder = jobsDirectory + "/" + name
            // Leftovers of an atomic write that was cut short.
            for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where file.hasPrefix(".tmp-") {
                DurableFile.removeTree(folder + "/" + file)
            }
            do {
                let job = try JobCoding.decode(try DurableFile.read(folder + "/job.json"))
                guard job.id == name else { throw StorageError("job.json names job \(job.id)") }
                jobs[name] = job
                sizes[name] = DurableFile.treeSize(folder)
                nextSequence = max(nextSequence, job.sequence + 1)
            } catch {
                log("job store: skipping \(folder): \(error)")
            }
        }
    }

    /// Whether `text` has the form of a job id (32 lowercase hex digits).
    public static func isValidID(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// A new random job id.
    public static func newID() -> String { DurableFile.randomHex(16) }

    /// The next creation sequence number.
    public func takeSequence() -> Int {
        lock.withLock {
            defer { nextSequence += 1 }
            return nextSequence
        }
    }

    /// Creates the job's folder with `files` and its record, durably, in one rename.
    public func create(_ job: Job, files: [(name: String, bytes: Data)]) throws {
        let folder = stagingDirectory + "/job-" + job.id
        try DurableFile.makeDirectory(folder)
        do {
            for file in files { try DurableFile.writeNew(file.bytes, to: folder + "/" + file.name) }
            try DurableFile.writeNew(try JobCoding.encode(job), to: folder + "/job.json")
            try DurableFile.syncDirectory(folder)
            try lock.withLock {
                if frozen { throw StorageError("the job store is closed") }
                try DurableFile.rename(folder, jobsDirectory + "/" + job.id)
                try DurableFile.syncDirectory(jobsDirectory)
                jobs[job.id] = job
                sizes[job.id] = DurableFile.treeSize(jobsDirectory + "/" + job.id)
            }
        } catch {
            DurableFile.removeTree(folder)
            throw error
        }
    }

    /// The job's record, or nil.
    public func get(_ id: String) -> Job? { lock.withLock { jobs[id] } }

    /// Every job, newest first.
    public func all() -> [Job] {
        lock.withLock { Array(jobs.values) }.sorted { $0.sequence > $1.sequence }
    }

    /// Changes a job's record and writes it to disk before returning it. Nil when the job is gone.
    @discardableResult
    public func update(_ id: String, _ change: (inout Job) -> Void) throws -> Job? {
        try lock.withLock {
            guard var job = jobs[id] else { return nil }
            change(&job)
            if frozen { return job }
            try DurableFile.write(try JobCoding.encode(job), to: jobsDirectory + "/" + id + "/job.json")
            jobs[id] = job
            return job
        }
    }

    /// Sets a running job's progress in memory only (it restarts from 0 after a restart anyway).
    public func setProgress(_ id: String, _ progress: Double) {
        lock.withLock {
            if jobs[id]?.state == .running { jobs[id]?.progress = min(max(progress, 0), 1) }
        }
    }

    /// Removes a job and its files; false when it was not there.
    @discardableResult
    public func remove(_ id: String) -> Bool {
        let removed: Bool = lock.withLock {
            guard !frozen, jobs.removeValue(forKey: id) != nil else { return false }
            sizes[id] = nil
            let doomed = stagingDirectory + "/deleted-" + id
            if (try? DurableFile.rename(jobsDirectory + "/" + id, doomed)) != nil {
                try? DurableFile.syncDirectory(jobsDirectory)
            }
            return true
        }
        if removed {
            DurableFile.removeTree(stagingDirectory + "/deleted-" + id)
            DurableFile.removeTree(jobsDirectory + "/" + id)
        }
        return removed
    }

    /// The path of a file in the job's folder.
    public func path(_ id: String, _ file: String) -> String { jobsDirectory + "/" + id + "/" + file }

    /// Writes a file into the job's folder atomically and durably.
    public func writeFile(_ id: String, _ file: String, _ bytes: [UInt8]) throws {
        try lock.withLock {
            if frozen { throw StorageError("the job store is closed") }
            guard jobs[id] != nil else { throw StorageError("job \(id) was removed") }
        }
        try DurableFile.write(bytes, to: path(id, file))
        lock.withLock {
            if jobs[id] != nil { sizes[id] = DurableFile.treeSize(jobsDirectory + "/" + id) }
        }
    }

    /// The size of a file in the job's folder, or nil when it is not there.
    public func fileSize(_ id: String, _ file: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path(id, file)))?[.size] as? Int
    }

    /// Reads a file of the job's folder.
    public func readFile(_ id: String, _ file: String) throws -> [UInt8] {
        try DurableFile.read(path(id, file))
    }

    /// Bytes used by one job's folder.
    public func size(_ id: String) -> Int64 { lock.withLock { sizes[id] ?? 0 } }

    /// Bytes used by all jobs.
    public var totalBytes: Int64 { lock.withLock { sizes.values.reduce(0, +) } }

    /// Whether the store accepts writes: a probe file can be created, flushed and removed.
    public func isWritable() -> Bool {
        let probe = stagingDirectory + "/.probe-" + DurableFile.randomHex(4)
        do {
            try DurableFile.writeNew(Array("ok".utf8), to: probe)
            DurableFile.removeTree(probe)
            return !lock.withLock { frozen }
        } catch {
            return false
        }
    }

    /// Stops all writes (crash simulation in tests).
    func freeze() { lock.withLock { frozen = true } }
}
