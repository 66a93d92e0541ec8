import Foundation
import Formats
import SCICore

/// The paper's benchmark protocol (REFERENCE.md section 7): take a scene's `orig` / 255, cut it
/// into blocks of T frames, simulate each snapshot with the benchmark mask (not the scene file's
/// own), reconstruct, and score every frame against the truth.
public enum BenchmarkProtocol {
    public struct Scene: Sendable {
        public var name: String
        public var truth: Video
    }

    public struct SceneResult: Sendable, Codable {
        public var scene: String
        public var frames: Int
        public var snapshots: Int
        public var psnr: [Double]
        public var ssim: [Double]
        public var meanPSNR: Double
        public var meanSSIM: Double
        /// Reconstruction wall time only (simulation and scoring excluded).
        public var seconds: Double
        public var secondsPerSnapshot: Double
    }

    /// Reads a scene file's `orig` (H x W x F, 8-bit frames). Its `meas` and `mask`, if any, are
    /// ignored by this protocol.
    public static func loadScene(_ url: URL) throws -> Scene {
        let mat = try MATFile.decode([UInt8](try Data(contentsOf: url)))
        guard let orig = mat.array("orig") else {
            throw SCIError("\(url.lastPathComponent) holds no variable 'orig' (the ground-truth frames, H x W x F)")
        }
        let truth = try SCIInput.video(orig, order: .framesLast, whiteLevel: SCIInput.inferFrameWhiteLevel(orig), what: "orig")
        let name = url.deletingPathExtension().lastPathComponent.replacingOccurrences(of: "_cacti", with: "")
        return Scene(name: name, truth: truth)
    }

    /// Reads the benchmark mask (`mask`, H x W x T) from a .mat file.
    public static func loadMask(_ url: URL) throws -> MaskStack {
        let mat = try MATFile.decode([UInt8](try Data(contentsOf: url)))
        guard let mask = mat.array("mask") else {
            throw SCIError("\(url.lastPathComponent) holds no variable 'mask' (H x W x T)")
        }
        return try SCIInput.mask(mask, order: .framesLast)
    }

    /// The scene files of a benchmark folder: every .mat except the mask file and the folder's
    /// own `mask.mat` (which is no scene even when another mask is used), sorted by name.
    public static func sceneFiles(in directory: URL, excluding maskURL: URL) throws -> [URL] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        return names.filter { $0.hasSuffix(".mat") && $0 != "mask.mat" }.sorted()
            .map { directory.appendingPathComponent($0) }
            .filter { $0.standardizedFileURL.path != maskURL.standardizedFileURL.path }
    }

    public static func run(_ scene: Scene, mask: MaskStack, reconstructor: any Reconstructor,
                           context: ReconstructionContext = ReconstructionContext()) throws -> SceneResult {
        let t = mask.frames
        guard scene.truth.height == mask.height, scene.truth.width == mask.width else {
            throw SCIError("scene \(scene.name) is \(scene.truth.height)x\(scene.truth.width) but the mask is \(mask.height)x\(mask.width)")
        }
        guard scene.truth.frames >= t else {
            throw SCIError("scene \(scene.name) has \(scene.truth.frames) frames, fewer than the mask's \(t)")
        }
        let model = SensingModel(mask: mask)
        let blocks = scene.truth.frames / t
        var parts: [Video] = []
        var seconds = 0.0
        for b in 0 ..< blocks {
            let truth = scene.truth.frames(b * t ..< (b + 1) * t)
            let y = try model.measure(truth)
            let start = DispatchTime.now().uptimeNanoseconds
            let sub = ReconstructionContext(progress: { p in context.progress((Double(b) + p) / Double(blocks)) },
                                            cancellation: context.cancellation)
            parts.append(try reconstructor.reconstruct(y, mask: mask, context: sub))
            seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let estimate = try Video.concatenating(parts)
        let scores = try Metrics.score(reference: scene.truth.frames(0 ..< blocks * t), estimate: estimate)
        return SceneResult(scene: scene.name, frames: blocks * t, snapshots: blocks, psnr: scores.psnr, ssim: scores.ssim,
                           meanPSNR: scores.meanPSNR, meanSSIM: scores.meanSSIM, seconds: seconds,
                           secondsPerSnapshot: seconds / Double(blocks))
    }
}
