/// How a file lays out a stack of 2-D planes: NumPy writes C-order arrays with the frame index
/// first (N, H, W); MATLAB arrays keep it last (H, W, N) after column-major conversion.
public enum PlaneOrder: Sendable {
    case framesFirst
    case framesLast
}

/// The file types the product reads arrays from.
public enum ArrayFileKind: String, Sendable {
    case npy, npz, mat, png

    /// Recognises a file by its leading bytes (magic numbers), so names and extensions never decide.
    public static func detect(_ bytes: [UInt8]) -> ArrayFileKind? {
        func starts(_ magic: [UInt8]) -> Bool { bytes.count >= magic.count && Array(bytes.prefix(magic.count)) == magic }
        if starts([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) { return .npy }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return .npz }
        if starts(Array("MATLAB".utf8)) { return .mat }
        return nil
    }
}

/// Named arrays read from one file of any supported kind, with the plane order its kind implies.
public struct ArrayFile: Sendable {
    public var kind: ArrayFileKind
    public var arrays: [(name: String, array: NumericArray)]
    public var planeOrder: PlaneOrder { kind == .mat ? .framesLast : .framesFirst }

    public func array(_ name: String) -> NumericArray? { arrays.first { $0.name == name }?.array }

    /// Decodes `bytes` after recognising the format from its magic number. A .npy or .png holds
    /// one unnamed array, named `defaultName`.
    public static func decode(_ bytes: [UInt8], defaultName: String = "array", limits: DecodeLimits = .default) throws -> ArrayFile {
        guard let kind = ArrayFileKind.detect(bytes) else {
            throw FormatError("input", "not a recognised file: send .npy, .npz, MATLAB v5 .mat or PNG (the first bytes match none of them)")
        }
        switch kind {
        case .npy: return ArrayFile(kind: kind, arrays: [(defaultName, try NPY.decode(bytes, limits: limits))])
        case .png: return ArrayFile(kind: kind, arrays: [(defaultName, try PNG.decode(bytes, limits: limits))])
        case .npz: return ArrayFile(kind: kind, arrays: try NPZ.decode(bytes, limits: limits))
        case .mat:
            let mat = try MATFile.decode(bytes, limits: limits)
            return ArrayFile(kind: kind, arrays: mat.arrays)
        }
    }
}
