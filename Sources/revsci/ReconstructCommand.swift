import ArgumentParser
import Foundation
import Formats
import Reconstruction
import SCICore

struct ReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Reconstruct the frames of one measurement (a snapshot or a stack of them).",
        discussion: """
        Inputs may be .npy, .npz, MATLAB v5 .mat or PNG. A .mat holding meas, mask and orig
        together can be passed alone as --measurement. Writes frame_0000.png ... (8-bit unless
        --png-bits 16), result.npy (float32, frames x H x W, in the measurement's value scale)
        and, with ground truth, metrics.json (per-frame and mean PSNR/SSIM).
        """
    )

    @Option(help: "Measurement file: (H, W) or a stack ((N, H, W) in .npy, (H, W, N) in .mat).")
    var measurement: String

    @Option(help: "Mask file: (T, H, W) in .npy, (H, W, T) in .mat. Optional when the measurement's .mat holds 'mask'.")
    var mask: String?

    @Option(help: "Ground-truth frames, for PSNR/SSIM.")
    var groundTruth: String?

    @Option(help: "Output folder (created if missing).")
    var out: String

    @Option(help: "White level of the data (255 for 8-bit frames); inferred when omitted (see README).")
    var whiteLevel: Float?

    @Option(help: "Use only the first N snapshots of the measurement.")
    var snapshots: Int?

    @Option(help: "Bit depth of the PNG frames: 8 or 16.")
    var pngBits: Int = 8

    @OptionGroup var algorithmOptions: AlgorithmOptions

    func validate() throws {
        guard pngBits == 8 || pngBits == 16 else { throw ValidationError("--png-bits must be 8 or 16") }
    }

    func run() throws {
        func load(_ path: String, _ name: String) throws -> ArrayFile {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw ValidationError("cannot read \(path): \(error.localizedDescription)")
            }
            return try ArrayFile.decode([UInt8](data), defaultName: name)
        }
        let input = try ReconstructionInput(
            measurement: try load(measurement, "meas"), mask: try mask.map { try load($0, "mask") },
            groundTruth: try groundTruth.map { try load($0, "orig") }, whiteLevel: whiteLevel, snapshotLimit: snapshots)
        let reconstructor = try algorithmOptions.makeReconstructor()
        let start = Date()
        let video = try reconstructor.reconstruct(input.snapshots, mask: input.mask, context: ReconstructionContext())
        let seconds = Date().timeIntervalSince(start)

        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for t in 0 ..< video.frames {
            try Data(FrameEncoding.png(video, frame: t, bitDepth: pngBits)).write(to: dir.appendingPathComponent(FrameEncoding.frameName(t)))
        }
        try Data(FrameEncoding.npy(video, whiteLevel: input.whiteLevel)).write(to: dir.appendingPathComponent("result.npy"))
        print("\(reconstructor.name): \(input.snapshots.count) snapshot(s) -> \(video.frames) frames of \(video.height)x\(video.width) in \(String(format: "%.3f", seconds)) s (white level \(input.whiteLevel))")
        if let truth = input.groundTruth {
            let scores = try Metrics.score(reference: truth, estimate: video)
            let report = MetricsReport(algorithm: reconstructor.name, psnr: scores.psnr, ssim: scores.ssim,
                                       meanPSNR: scores.meanPSNR, meanSSIM: scores.meanSSIM, seconds: seconds)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: dir.appendingPathComponent("metrics.json"))
            print(String(format: "PSNR %.2f dB, SSIM %.4f (mean over %d frames)", scores.meanPSNR, scores.meanSSIM, video.frames))
        }
        print("wrote \(dir.path)")
    }
}

struct MetricsReport: Codable {
    var algorithm: String
    var psnr: [Double]
    var ssim: [Double]
    var meanPSNR: Double
    var meanSSIM: Double
    var seconds: Double
}
