import SCICore

/// Runs the network on overlapping spatial tiles when a whole snapshot's working memory would
/// exceed a budget. Each tile is a core region plus a halo of context on every side that is not
/// an image border; outputs are blended with linear ramps across each overlap (the weights of
/// the two tiles sum to one there), so seams fade instead of cutting.
public struct TilePlan: Sendable {
    public struct Tile: Sendable {
        /// Window rows y0 ..< y1 and columns x0 ..< x1 fed to the network (even-aligned).
        public var y0, y1, x0, x1: Int
    }

    public var tiles: [Tile]
    public var halo: Int
    public var height: Int
    public var width: Int

    /// Splits H x W into cores of at most `core` pixels per side (even), each widened by `halo`.
    public init(height: Int, width: Int, core: Int, halo: Int) {
        precondition(core >= 2 && core % 2 == 0 && halo >= 0 && halo % 2 == 0)
        self.height = height
        self.width = width
        self.halo = halo
        func spans(_ n: Int) -> [(Int, Int)] {
            let count = max(1, (n + core - 1) / core)
            // Equal cores, their edges rounded down to multiples of 8: with a halo that is one too,
            // inner windows then have sizes that are multiples of 4 at the blocks' half resolution,
            // which Winograd F(4x4) needs (F(2x2) needs even ones).
            return (0 ..< count).map { i in
                let a = (i * n / count) & ~7, b = i == count - 1 ? n : ((i + 1) * n / count) & ~7
                return (max(0, a - halo), min(n, b + halo))
            }
        }
        tiles = spans(height).flatMap { r in spans(width).map { c in Tile(y0: r.0, y1: r.1, x0: c.0, x1: c.1) } }
    }

    /// The tiles for H x W under a working-memory budget, or nil when the whole snapshot fits
    /// (and no core size is forced).
    public static func choose(for network: RevSCINetwork, frames t: Int, height: Int, width: Int, budget: Int,
                              halo: Int, forcedCore: Int? = nil) -> TilePlan? {
        if let forcedCore { return TilePlan(height: height, width: width, core: forcedCore, halo: halo) }
        guard network.workspaceBytes(frames: t, height: height, width: width) > budget else { return nil }
        return TilePlan(height: height, width: width, core: network.tileCore(frames: t, budget: budget, halo: halo), halo: halo)
    }

    /// Blend weight along one axis at position p of a window [a, b) within [0, n).
    func rampWeight(_ p: Int, _ a: Int, _ b: Int, _ n: Int) -> Float {
        guard halo > 0 else { return 1 }
        var w: Float = 1
        if a > 0 { w = min(w, (Float(p - a) + 0.5) / Float(2 * halo)) }
        if b < n { w = min(w, (Float(b - p) - 0.5) / Float(2 * halo)) }
        return max(w, 1e-4)
    }
}

extension RevSCINetwork {
    /// Bytes of working memory one forward pass at (T, H, W) allocates.
    public func workspaceBytes(frames t: Int, height h: Int, width w: Int) -> Int {
        let stemPad = max(stem[0].padding.t, stem[0].padding.h, stem[0].padding.w)
        let full = max(stem.dropLast().map(\.outputChannels).max() ?? 0, upsample.outputChannels,
                       head.dropLast().map(\.outputChannels).max() ?? 0)
        let group = blocks.first?.groupChannels ?? 1
        let input = (t + 2 * stemPad) * (h + 2 * stemPad) * (w + 2 * stemPad) * inputChannels
        let fullBuffers = 2 * (t + 2) * (h + 2) * (w + 2) * full
        let half = (t + 2) * (h / 2 + 2) * (w / 2 + 2) * (stateChannels + group)
        return 4 * (input + fullBuffers + half + t * h * w * outputChannels)
    }

    /// The largest even square tile core whose window (core + 2 halo) fits `budget` bytes.
    public func tileCore(frames t: Int, budget: Int, halo: Int) -> Int {
        var core = 2
        while workspaceBytes(frames: t, height: core + 2 + 2 * halo, width: core + 2 + 2 * halo) <= budget { core += 2 }
        return max(2, core)
    }

    /// Forward pass over tiles of `plan`, blending overlaps; same input/output layout as forward.
    public func forwardTiled(_ input: [Float], frames t: Int, plan: TilePlan, kernels: KernelSet = .active,
                             context: ReconstructionContext = ReconstructionContext(), profiler: LayerProfiler? = nil) throws -> [Float] {
        let h = plan.height, w = plan.width, plane = h * w
        guard input.count == inputChannels * t * plane else {
            throw SCIError("network input has \(input.count) values; expected \(inputChannels)x\(t)x\(h)x\(w)")
        }
        var out = [Float](repeating: 0, count: outputChannels * t * plane)
        var weightSum = [Float](repeating: 0, count: plane)
        var workspace: Workspace?
        var workspaceSize = (0, 0)
        for (k, tile) in plan.tiles.enumerated() {
            try context.cancellation.check()
            let th = tile.y1 - tile.y0, tw = tile.x1 - tile.x0
            var crop = [Float](repeating: 0, count: inputChannels * t * th * tw)
            for c in 0 ..< inputChannels * t {
                for r in 0 ..< th {
                    let src = c * plane + (tile.y0 + r) * w + tile.x0
                    for x in 0 ..< tw { crop[(c * th + r) * tw + x] = input[src + x] }
                }
            }
            if workspaceSize != (th, tw) {
                workspace = nil // free the old one before allocating
                workspace = makeWorkspace(frames: t, height: th, width: tw)
                workspaceSize = (th, tw)
            }
            let sub = ReconstructionContext(progress: { p in context.progress((Double(k) + p) / Double(plan.tiles.count)) },
                                            cancellation: context.cancellation)
            let result = try forward(crop, frames: t, height: th, width: tw, kernels: kernels, workspace: workspace, context: sub,
                                     profiler: profiler)
            for r in 0 ..< th {
                let wy = plan.rampWeight(tile.y0 + r, tile.y0, tile.y1, h)
                for x in 0 ..< tw {
                    let wgt = wy * plan.rampWeight(tile.x0 + x, tile.x0, tile.x1, w)
                    let dst = (tile.y0 + r) * w + tile.x0 + x
                    weightSum[dst] += wgt
                    for c in 0 ..< outputChannels * t { out[c * plane + dst] += wgt * result[(c * th + r) * tw + x] }
                }
            }
        }
        for c in 0 ..< outputChannels * t {
            for i in 0 ..< plane { out[c * plane + i] /= weightSum[i] }
        }
        context.progress(1)
        return out
    }
}
