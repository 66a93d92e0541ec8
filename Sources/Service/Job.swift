import Foundation

/// Where a job is in its life. `queued` and `running` are unfinished; the other three are final.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    /// Whether the job will not change any more.
    public var isFinished: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// One reconstruction job as stored in `jobs/<id>/job.json` (written atomically on every state
/// change). The API's job document is built from it (`JobView`).
public struct Job: Codable, Sendable, Equatable {
    /// Reconstruction shape.
    public struct Shape: Codable, Sendable, Equatable {
        public var snapshots: Int
        public var framesPerSnapshot: Int
        public var height: Int
        public var width: Int
        public var frames: Int { snapshots * framesPerSnapshot }

        enum CodingKeys: String, CodingKey {
            case snapshots, framesPerSnapshot = "frames_per_snapshot", height, width
        }
    }

    /// A file the client sent, as kept in the job's folder.
    public struct Input: Codable, Sendable, Equatable {
        /// measurement, mask or ground_truth.
        public var role: String
        /// File name inside the job folder.
        public var file: String
        /// npy, npz, mat or png.
        public var format: String
        public var bytes: Int
        /// The client's file name from Content-Disposition, if it sent one.
        public var filename: String?
    }

    /// PSNR/SSIM against the ground truth, per frame (dB on the 0-255 scale, SSIM MATLAB-style).
    public struct Scores: Codable, Sendable, Equatable {
        public var psnr: [Double]
        public var ssim: [Double]
        public var meanPSNR: Double
        public var meanSSIM: Double

        enum CodingKeys: String, CodingKey { case psnr, ssim, meanPSNR = "mean_psnr", meanSSIM = "mean_ssim" }

        // Metrics can be +inf (a perfect frame): stored as null, read back as infinity.
        public init(psnr: [Double], ssim: [Double], meanPSNR: Double, meanSSIM: Double) {
            self.psnr = psnr
            self.ssim = ssim
            self.meanPSNR = meanPSNR
            self.meanSSIM = meanSSIM
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            psnr = try c.decode([Double?].self, forKey: .psnr).map { $0 ?? .infinity }
            ssim = try c.decode([Double?].self, forKey: .ssim).map { $0 ?? .nan }
            meanPSNR = try c.decodeIfPresent(Double.self, forKey: .meanPSNR) ?? .infinity
            meanSSIM = try c.decodeIfPresent(Double.self, forKey: .meanSSIM) ?? .nan
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(psnr.map { $0.isFinite ? $0 : nil }, forKey: .psnr)
            try c.encode(ssim.map { $0.isFinite ? $0 : nil }, forKey: .ssim)
            try c.encodeIfPresent(meanPSNR.isFinite ? meanPSNR : nil, forKey: .meanPSNR)
            try c.encodeIfPresent(meanSSIM.isFinite ? meanSSIM : nil, forKey: .meanSSIM)
        }
    }

    /// Why a job failed.
    public struct Failure: Codable, Sendable, Equatable {
        public var title: String
        public var detail: String
    }

    public var id: String
    /// Creation order within the store (newest first listings, FIFO re-queueing).
    public var sequence: Int
    public var state: JobState
    /// 0...1; live while running (kept in memory, not written on every step).
    public var progress: Double
    public var created: Date
    public var started: Date?
    public var finished: Date?
    /// Seconds spent in the reconstructor itself (last attempt).
    public var reconstructionSeconds: Double?
    /// How many times a worker started the job (more than 1 after a crash or shutdown).
    public var attempts: Int
    public var cancelRequested: Bool

    public var options: JobOptions
    public var shape: Shape
    public var whiteLevel: Double
    /// "stated" (options.white_level) or "inferred" (README's value-scale rule).
    public var whiteLevelSource: String
    /// The content id of the mask (its canonical encoding's SHA-256); the mask lives in the mask store.
    public var maskID: String
    public var inputs: [Input]
    /// Whether ground truth came with the job (a part, or `orig` bundled in the measurement file).
    public var hasGroundTruth: Bool
    public var metrics: Scores?
    public var failure: Failure?

    enum CodingKeys: String, CodingKey {
        case id, sequence, state, progress, created, started, finished
        case reconstructionSeconds = "reconstruction_seconds", attempts, cancelRequested = "cancel_requested"
        case options, shape, whiteLevel = "white_level", whiteLevelSource = "white_level_source"
        case maskID = "mask_id", inputs, hasGroundTruth = "has_ground_truth", metrics, failure
    }

    /// The input with `role`, if the job has one.
    public func input(_ role: String) -> Input? { inputs.first { $0.role == role } }

}

/// JSON coding of job records: dates as seconds since 1970 (exact), keys sorted.
enum JobCoding {
    static func encode(_ job: Job) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .secondsSince1970
        return [UInt8](try encoder.encode(job))
    }

    static func decode(_ bytes: [UInt8]) throws -> Job {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(Job.self, from: Data(bytes))
    }
}
