/// The RGGB Bayer mosaic of REFERENCE.md section 5: R at (even row, even col), G at (even, odd)
/// and (odd, even), B at (odd, odd).
public enum Bayer {
    /// Which RGB channel (0 R, 1 G, 2 B) the sensor samples at (row, col).
    @inlinable
    public static func channel(row: Int, col: Int) -> Int {
        switch (row & 1, col & 1) {
        case (0, 0): return 0
        case (1, 1): return 2
        default: return 1
        }
    }

    /// Mosaics an RGB video stored (3, T, H, W) channel-major into a raw video (T, H, W).
    public static func mosaic(rgb: [Float], frames: Int, height: Int, width: Int) throws -> Video {
        let plane = height * width
        guard rgb.count == 3 * frames * plane else {
            throw SCIError("RGB video of 3x\(frames)x\(height)x\(width) needs \(3 * frames * plane) values, got \(rgb.count)")
        }
        var raw = Video(zeros: frames, height: height, width: width)
        for t in 0 ..< frames {
            for r in 0 ..< height {
                for c in 0 ..< width {
                    let ch = channel(row: r, col: c)
                    raw.pixels[t * plane + r * width + c] = rgb[(ch * frames + t) * plane + r * width + c]
                }
            }
        }
        return raw
    }
}
