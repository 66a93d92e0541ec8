/// T frames of H x W pixels, stored frame-major: element (t, row, col) at (t * H + row) * W + col.
/// Values are on the [0, 1] scale unless stated otherwise.
public struct Video: Sendable, Equatable {
    public let frames: Int
    public let height: Int
    public let width: Int
    public var pixels: [Float]

    public init(frames: Int, height: Int, width: Int, pixels: [Float]) throws {
        guard frames > 0, height > 0, width > 0 else {
            throw SCIError("a video needs at least one frame of at least 1x1 pixels (got \(frames)x\(height)x\(width))")
        }
        guard pixels.count == frames * height * width else {
            throw SCIError("video of \(frames)x\(height)x\(width) needs \(frames * height * width) values, got \(pixels.count)")
        }
        self.frames = frames
        self.height = height
        self.width = width
        self.pixels = pixels
    }

    public init(zeros frames: Int, height: Int, width: Int) {
        self.frames = frames
        self.height = height
        self.width = width
        self.pixels = [Float](repeating: 0, count: frames * height * width)
    }

    public var frameSize: Int { height * width }

    /// Frame t as a copy.
    public func frame(_ t: Int) -> [Float] { Array(pixels[t * frameSize ..< (t + 1) * frameSize]) }

    /// Frames `range` as a new video (e.g. one snapshot's T frames out of a longer recording).
    public func frames(_ range: Range<Int>) -> Video {
        var v = Video(zeros: range.count, height: height, width: width)
        v.pixels = Array(pixels[range.lowerBound * frameSize ..< range.upperBound * frameSize])
        return v
    }

    /// Concatenates videos of the same frame size along time.
    public static func concatenating(_ parts: [Video]) throws -> Video {
        guard let first = parts.first else { throw SCIError("nothing to concatenate") }
        for p in parts where p.height != first.height || p.width != first.width {
            throw SCIError("cannot join frames of \(p.height)x\(p.width) with frames of \(first.height)x\(first.width)")
        }
        return try Video(frames: parts.reduce(0) { $0 + $1.frames }, height: first.height, width: first.width,
                         pixels: parts.flatMap(\.pixels))
    }

    /// Builds a frame-major video from an array shaped (H, W, F) in C order, as MATLAB's
    /// `orig(:,:,k)` scenes arrive after column-major conversion.
    public static func fromHWF(_ values: [Float], height: Int, width: Int, frames: Int) throws -> Video {
        guard values.count == height * width * frames else {
            throw SCIError("expected \(height)x\(width)x\(frames) values, got \(values.count)")
        }
        var out = [Float](repeating: 0, count: values.count)
        for r in 0 ..< height {
            for c in 0 ..< width {
                let src = (r * width + c) * frames
                for t in 0 ..< frames { out[(t * height + r) * width + c] = values[src + t] }
            }
        }
        return try Video(frames: frames, height: height, width: width, pixels: out)
    }
}

/// One coded snapshot: the sensor's H x W integration of T masked frames.
public struct Snapshot: Sendable, Equatable {
    public let height: Int
    public let width: Int
    public var pixels: [Float]

    public init(height: Int, width: Int, pixels: [Float]) throws {
        guard height > 0, width > 0, pixels.count == height * width else {
            throw SCIError("snapshot of \(height)x\(width) needs \(height * width) values, got \(pixels.count)")
        }
        self.height = height
        self.width = width
        self.pixels = pixels
    }
}
