import SCICore

/// Turns decoded arrays into the sensing model's values, applying the layout and value-scale
/// conventions documented in the README:
/// - planes: .npy/.npz/PNG are (N, H, W) or (H, W); .mat is (H, W, N) or (H, W);
/// - masks are used as sent when floating point or already 0/1; integer masks with larger values
///   (8-bit PNG masks of 0/255) are divided by their maximum;
/// - frames (ground truth, reconstructions) are on [0, 1] after division by the white level.
public enum SCIInput {
    /// Splits an array into H x W planes, honouring the file's plane order. A 2-D array is one plane.
    public static func planes(_ array: NumericArray, order: PlaneOrder, what: String) throws -> (count: Int, height: Int, width: Int, values: [Float]) {
        var shape = array.shape
        // An empty array is no image; its other extents may be anything (0 x 2^32 x 2^32
        // holds no element), so they must not reach any arithmetic.
        guard shape.allSatisfy({ $0 > 0 }) else {
            throw SCIError("the \(what) is empty (shape \(shape)); send at least one \(what == "mask" ? "frame" : "snapshot") with pixels")
        }
        // Singleton axes from batch/channel dimensions (e.g. (1, 8, 256, 256)) are dropped.
        while shape.count > 2, let i = shape.firstIndex(of: 1) { shape.remove(at: i) }
        let values = array.floats()
        switch shape.count {
        case 2:
            return (1, shape[0], shape[1], values)
        case 3 where order == .framesFirst:
            return (shape[0], shape[1], shape[2], values)
        case 3:
            let v = try Video.fromHWF(values, height: shape[0], width: shape[1], frames: shape[2])
            return (shape[2], shape[0], shape[1], v.pixels)
        default:
            let expected = order == .framesFirst ? "(H, W) or (N, H, W)" : "(H, W) or (H, W, N)"
            throw SCIError("\(what) has shape \(array.shape); expected \(expected) for this file type")
        }
    }

    public static func mask(_ array: NumericArray, order: PlaneOrder) throws -> MaskStack {
        var p = try planes(array, order: order, what: "mask")
        if !array.isFloatingPoint, let top = p.values.max(), top > 1 {
            p.values = p.values.map { $0 / top }
        }
        return try MaskStack(frames: p.count, height: p.height, width: p.width, values: p.values)
    }

    public static func snapshots(_ array: NumericArray, order: PlaneOrder, whiteLevel: Float) throws -> [Snapshot] {
        let p = try planes(array, order: order, what: "measurement")
        try requireFinite(p.values, "measurement")
        let plane = p.height * p.width
        return try (0 ..< p.count).map { k in
            try Snapshot(height: p.height, width: p.width,
                         pixels: p.values[k * plane ..< (k + 1) * plane].map { $0 / whiteLevel })
        }
    }

    public static func video(_ array: NumericArray, order: PlaneOrder, whiteLevel: Float, what: String = "ground truth") throws -> Video {
        let p = try planes(array, order: order, what: what)
        try requireFinite(p.values, what)
        return try Video(frames: p.count, height: p.height, width: p.width, pixels: p.values.map { $0 / whiteLevel })
    }

    /// The white level of a measurement when the user does not state it: integer data, or values
    /// no [0, 1] video could produce through this mask (above sum_t max Phi_t), are taken to be
    /// 8-bit frames (255), or 16-bit (65535) when even 255 cannot explain them; otherwise 1.
    public static func inferWhiteLevel(measurement: NumericArray, mask: MaskStack) -> Float {
        let values = measurement.floats()
        let top = values.max() ?? 0
        let reach = (0 ..< mask.frames).reduce(Float(0)) { acc, t in
            acc + (mask.values[t * mask.frameSize ..< (t + 1) * mask.frameSize].max() ?? 0)
        }
        let integer = !measurement.isFloatingPoint
        if top > 255 * reach * 1.0001 { return 65535 }
        if integer || top > reach * 1.0001 { return 255 }
        return 1
    }

    /// The white level of ground-truth frames: the full scale of integer types, else 255 when
    /// values exceed 1, else 1.
    public static func inferFrameWhiteLevel(_ array: NumericArray) -> Float {
        switch array.storage {
        case .uint8: return 255
        case .uint16: return 65535
        default: return (array.floats().max() ?? 0) > 1.0001 ? 255 : 1
        }
    }
}
