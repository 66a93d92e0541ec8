/// The CACTI forward model of REFERENCE.md sections 1-2: y = A(x) = sum_t Phi_t .* x_t, its
/// adjoint A^T(y)_t = Phi_t .* y, and the network's input preparation.
public struct SensingModel: Sendable {
    public let mask: MaskStack

    public init(mask: MaskStack) { self.mask = mask }

    public var frames: Int { mask.frames }
    public var height: Int { mask.height }
    public var width: Int { mask.width }

    private func check(_ video: Video) throws {
        guard video.frames == mask.frames, video.height == mask.height, video.width == mask.width else {
            throw SCIError("video is \(video.frames)x\(video.height)x\(video.width) but the mask is \(mask.frames)x\(mask.height)x\(mask.width) (frames x height x width)")
        }
    }

    private func check(_ y: Snapshot) throws {
        guard y.height == mask.height, y.width == mask.width else {
            throw SCIError("measurement is \(y.height)x\(y.width) but the mask is \(mask.height)x\(mask.width)")
        }
    }

    /// A: integrates the masked frames into one snapshot.
    public func measure(_ video: Video) throws -> Snapshot {
        try check(video)
        let plane = mask.frameSize
        var y = [Float](repeating: 0, count: plane)
        for t in 0 ..< mask.frames {
            let base = t * plane
            for i in 0 ..< plane { y[i] += mask.values[base + i] * video.pixels[base + i] }
        }
        return try Snapshot(height: height, width: width, pixels: y)
    }

    /// A^T: spreads a snapshot back over the frames through each mask.
    public func adjoint(_ y: Snapshot) throws -> Video {
        try check(y)
        let plane = mask.frameSize
        var x = Video(zeros: frames, height: height, width: width)
        for t in 0 ..< frames {
            let base = t * plane
            for i in 0 ..< plane { x.pixels[base + i] = mask.values[base + i] * y.pixels[i] }
        }
        return x
    }

    /// y_bar = y ./ Phi_s.
    public func normalized(_ y: Snapshot) throws -> Snapshot {
        try check(y)
        var out = y
        for i in 0 ..< out.pixels.count { out.pixels[i] = y.pixels[i] / mask.phiSum[i] }
        return out
    }

    /// The grayscale network input data_t = y_bar + Phi_t .* y_bar (T, H, W).
    public func networkInput(_ y: Snapshot) throws -> Video {
        let yBar = try normalized(y)
        let plane = mask.frameSize
        var x = Video(zeros: frames, height: height, width: width)
        for t in 0 ..< frames {
            let base = t * plane
            for i in 0 ..< plane { x.pixels[base + i] = yBar.pixels[i] + mask.values[base + i] * yBar.pixels[i] }
        }
        return x
    }
}
