/// The coded aperture's T modulation masks Phi (T, H, W), frame-major, with the derived
/// Phi_s = sum_t Phi_t (zeros replaced by 1, REFERENCE.md section 1) computed once.
public struct MaskStack: Sendable, Equatable {
    public let frames: Int
    public let height: Int
    public let width: Int
    public let values: [Float]
    /// sum_t Phi_t with zeros replaced by 1 (so y / Phi_s is defined everywhere).
    public let phiSum: [Float]

    public init(frames: Int, height: Int, width: Int, values: [Float]) throws {
        guard frames > 0, height > 0, width > 0, values.count == frames * height * width else {
            throw SCIError("mask of \(frames)x\(height)x\(width) needs \(frames * height * width) values, got \(values.count)")
        }
        try requireFinite(values, "mask")
        let plane = height * width
        var sum = [Float](repeating: 0, count: plane)
        for t in 0 ..< frames {
            for i in 0 ..< plane { sum[i] += values[t * plane + i] }
        }
        guard sum.contains(where: { $0 != 0 }) else {
            throw SCIError("mask is zero everywhere: no light reaches the sensor, nothing can be reconstructed")
        }
        for i in 0 ..< plane where sum[i] == 0 { sum[i] = 1 }
        self.frames = frames
        self.height = height
        self.width = width
        self.values = values
        self.phiSum = sum
    }

    public init(_ video: Video) throws {
        try self.init(frames: video.frames, height: video.height, width: video.width, values: video.pixels)
    }

    public var frameSize: Int { height * width }
}
