import SCICore

/// Encodes reconstructed frames (on [0, 1]) for download: PNG frames clipped to [0, 1] and
/// quantised to 8 or 16 bits, and the raw float32 stack as .npy in the user's value scale.
public enum FrameEncoding {
    public static func png(_ video: Video, frame t: Int, bitDepth: Int = 8) -> [UInt8] {
        let n = video.frameSize
        let slice = video.pixels[t * n ..< (t + 1) * n]
        if bitDepth == 16 {
            let px = slice.map { UInt16(quantize($0, levels: 65535)) }
            return PNG.encodeGray16(width: video.width, height: video.height, pixels: px)
        }
        let px = slice.map { UInt8(quantize($0, levels: 255)) }
        return PNG.encodeGray8(width: video.width, height: video.height, pixels: px)
    }

    /// `value` clipped to [0, 1] and scaled to 0...levels. Total on every Float: NaN maps to 0
    /// (Swift's min/max pass NaN through, and converting NaN to an integer traps), +-Inf clip.
    @inline(__always)
    static func quantize(_ value: Float, levels: Float) -> Int {
        guard value > 0 else { return 0 }          // also NaN
        guard value < 1 else { return Int(levels) }
        return Int((value * levels).rounded())
    }

    /// File name of frame k in a PNG sequence.
    public static func frameName(_ k: Int) -> String {
        let digits = String(k)
        return "frame_" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits + ".png"
    }

    /// float32 .npy of shape (frames, H, W), values multiplied by `whiteLevel`.
    public static func npy(_ video: Video, whiteLevel: Float = 1) -> [UInt8] {
        let values = whiteLevel == 1 ? video.pixels : video.pixels.map { $0 * whiteLevel }
        return NPY.encode(NumericArray(shape: [video.frames, video.height, video.width], float32: values))
    }
}
