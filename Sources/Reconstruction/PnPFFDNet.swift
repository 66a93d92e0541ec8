import Foundation
import SCICore

/// Plug-and-play GAP with FFDNet as the denoiser (REFERENCE.md section 9): the accelerated GAP
/// loop of GAP-TV, with each iteration's TV step replaced by FFDNet on every frame at a noise
/// level that falls in stages. It needs no SCI training, so it serves any mask, any T, any size.
///
/// Two schedules:
/// - `published`: from the measurement, sigma 50/25/12/6 (/255), 10 iterations each (the
///   PnP-SCI grayscale benchmark's settings);
/// - `warm` (the default): 40 GAP-TV iterations first, then FFDNet at 25/12/6, 10 each. The cold
///   start diverges on masks where some pixels never open; the warm one starts from GAP-TV's
///   estimate, is better on mask.mat too, and runs 30 denoiser passes instead of 40.
public struct PnPFFDNet: Reconstructor {
    /// One stage of the loop: `iterations` GAP iterations, each followed by TV or by FFDNet at
    /// `sigma` (on the [0, 1] scale).
    public struct Stage: Sendable, Equatable {
        public enum Denoiser: Sendable, Equatable {
            case tv(weight: Float, iterations: Int)
            case ffdnet(sigma: Float)
        }
        public var denoiser: Denoiser
        public var iterations: Int

        public init(_ denoiser: Denoiser, iterations: Int) {
            self.denoiser = denoiser
            self.iterations = iterations
        }
    }

    public enum Schedule: String, Sendable, CaseIterable {
        case published, warm

        /// FFDNet's noise levels on the 0-255 scale, one stage each.
        public var sigmas: [Double] { self == .published ? [50, 25, 12, 6] : [25, 12, 6] }
        /// GAP-TV iterations before the first FFDNet one.
        public var warmIterations: Int { self == .published ? 0 : 40 }
        /// GAP iterations per noise level.
        public static let iterationsPerSigma = 10
    }

    public let network: FFDNet
    public var stages: [Stage]
    /// The loop's start (the published schedule starts from Phi^T y, as the public code does).
    public var start: GAPLoop.Start = .normalized
    public var kernels: KernelSet

    /// The stages of a named schedule; `sigmas` (on the 0-255 scale) and `iterations` per
    /// sigma override the schedule's, `warmIterations` the GAP-TV start (0: none).
    public static func stages(_ schedule: Schedule, sigmas: [Double]? = nil, iterationsPerSigma: Int? = nil,
                              warmIterations: Int? = nil, tvWeight: Double = 0.3, tvIterations: Int = 5) -> [Stage] {
        let each = iterationsPerSigma ?? Schedule.iterationsPerSigma
        var stages: [Stage] = []
        let warm = warmIterations ?? schedule.warmIterations
        if warm > 0 { stages.append(Stage(.tv(weight: Float(tvWeight), iterations: tvIterations), iterations: warm)) }
        for sigma in sigmas ?? schedule.sigmas {
            stages.append(Stage(.ffdnet(sigma: Float(sigma / 255)), iterations: each))
        }
        return stages
    }

    public init(network: FFDNet, stages: [Stage], kernels: KernelSet = .active) {
        self.network = network
        self.stages = stages
        self.kernels = kernels
    }

    /// A named schedule with optional overrides (see `stages`). A loop that starts with FFDNet
    /// (the published schedule) starts from Phi^T y, as the public code does; one that starts
    /// with GAP-TV from GAP-TV's own start.
    public init(network: FFDNet, schedule: Schedule, sigmas: [Double]? = nil, iterationsPerSigma: Int? = nil,
                warmIterations: Int? = nil, tvWeight: Double = 0.3, tvIterations: Int = 5, kernels: KernelSet = .active) {
        let stages = Self.stages(schedule, sigmas: sigmas, iterationsPerSigma: iterationsPerSigma, warmIterations: warmIterations,
                                 tvWeight: tvWeight, tvIterations: tvIterations)
        self.init(network: network, stages: stages, kernels: kernels)
        if case .ffdnet = stages.first?.denoiser { start = .adjoint }
    }

    public var name: String { "pnp-ffdnet" }
    public var requiredFrames: Int? { nil }

    public func reconstruct(_ snapshot: Snapshot, mask: MaskStack, context: ReconstructionContext) throws -> Video {
        guard snapshot.height == mask.height, snapshot.width == mask.width else {
            throw SCIError("measurement is \(snapshot.height)x\(snapshot.width) but the mask is \(mask.height)x\(mask.width)")
        }
        guard network.colors == 1 else {
            throw SCIError("PnP-FFDNet on a grayscale measurement needs the grayscale weights (net_gray.pth); these are the RGB ones")
        }
        guard mask.height % 2 == 0, mask.width % 2 == 0 else {
            throw SCIError("PnP-FFDNet needs an even height and width (FFDNet works on 2x2 cells); this measurement is \(mask.height)x\(mask.width): crop one row or column, or use algorithm \"gaptv\"")
        }
        guard !stages.isEmpty, stages.allSatisfy({ $0.iterations > 0 }) else {
            throw SCIError("PnP-FFDNet needs at least one stage, each with at least one iteration")
        }
        let total = stages.reduce(0) { $0 + $1.iterations }
        var done = 0
        var loop = GAPLoop(snapshot: snapshot, mask: mask, start: start, kernels: kernels)
        let t = mask.frames, h = mask.height, w = mask.width, plane = h * w
        let workspace = FFDNet.Workspace(network: network, height: h, width: w)
        for stage in stages {
            for _ in 0 ..< stage.iterations {
                try context.cancellation.check()
                loop.project()
                switch stage.denoiser {
                case .tv(let weight, let iterations):
                    loop.denoiseTV(weight: weight, iterations: iterations, tolerance: 2e-4)
                case .ffdnet(let sigma):
                    let frames = loop.currentFrames()
                    var denoised = [Float](repeating: 0, count: frames.count)
                    try frames.withUnsafeBufferPointer { all in
                        for f in 0 ..< t {
                            try context.cancellation.check()
                            let one = try network.denoise(UnsafeBufferPointer(rebasing: all[f * plane ..< (f + 1) * plane]),
                                                          height: h, width: w, sigma: sigma,
                                                          workspace: workspace, kernels: kernels)
                            denoised.replaceSubrange(f * plane ..< (f + 1) * plane, with: one)
                        }
                    }
                    try loop.setFrames(denoised)
                }
                done += 1
                context.progress(Double(done) / Double(total))
            }
        }
        return try loop.video()
    }
}

/// Where FFDNet's weights are looked for when none are named. The public weights
/// (`net_gray.pth`, `net_rgb.pth`) are third-party files the repository does not ship: a user
/// puts them where this looks, or names them (`--weights`, the service's
/// `model_weights.ffdnet`).
public enum FFDNetWeights {
    /// Candidates in order: `$REVSCI_FFDNET_WEIGHTS`, `models/ffdnet/<file>` under the working
    /// directory, then the shared data folder of a development checkout
    /// (`$REVSCI_SHARED` or `../shared`, `data/weights/ffdnet/<file>`).
    public static func candidates(file: String = "net_gray.pth") -> [URL] {
        let env = ProcessInfo.processInfo.environment
        var urls: [URL] = []
        if let path = env["REVSCI_FFDNET_WEIGHTS"], !path.isEmpty { urls.append(URL(fileURLWithPath: path)) }
        urls.append(URL(fileURLWithPath: "models/ffdnet/" + file))
        let shared = env["REVSCI_SHARED"].map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: "../shared")
        urls.append(shared.appendingPathComponent("data/weights/ffdnet/" + file))
        return urls
    }

    /// The first readable candidate, or an error saying where it looked and how to get them.
    public static func locate(file: String = "net_gray.pth") throws -> URL {
        let urls = candidates(file: file)
        if let found = urls.first(where: { FileManager.default.isReadableFile(atPath: $0.path) }) { return found }
        throw SCIError("no FFDNet weights found (looked for \(urls.map(\.path).joined(separator: ", "))): download \(file) of the IPOL FFDNet models (as shipped in the PnP-SCI_python repository, packages/ffdnet/models/) and pass it with --weights, set REVSCI_FFDNET_WEIGHTS, or put it in models/ffdnet/")
    }
}
