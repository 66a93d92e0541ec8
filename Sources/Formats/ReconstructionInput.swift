import SCICore

/// A measurement stack, its mask and optional ground truth, checked against each other and put
/// on the [0, 1] scale: what `reconstruct` and the service build from the files a user sends.
public struct ReconstructionInput: Sendable {
    public var snapshots: [Snapshot]
    public var mask: MaskStack
    public var groundTruth: Video?
    /// The measurement's white level: frames are value / whiteLevel; outputs are scaled back by it.
    public var whiteLevel: Float

    /// Variable names looked for in .mat/.npz files, in order (the benchmark files use these).
    public static let measurementNames = ["meas", "measurement", "y"]
    public static let maskNames = ["mask", "Phi", "phi"]
    public static let truthNames = ["orig", "ground_truth", "gt", "truth"]

    /// The array named one of `names`, or the file's only array.
    public static func pick(_ file: ArrayFile, _ names: [String], what: String) throws -> NumericArray {
        for n in names { if let a = file.array(n) { return a } }
        if file.arrays.count == 1 { return file.arrays[0].array }
        let have = file.arrays.map(\.name).joined(separator: ", ")
        throw SCIError("could not find the \(what): name it one of \(names.joined(separator: ", ")) (the file holds: \(have.isEmpty ? "nothing" : have))")
    }

    /// Throws unless every value is finite: NaN or infinity in an input (or made by dividing by a
    /// tiny white level) would poison every reconstructed value.
    static func requireFinite(_ values: [Float], what: String, whiteLevel: Float?) throws {
        let bad = nonFiniteCount(values)
        guard bad > 0 else { return }
        var message = "\(what) holds \(bad) value(s) that are NaN or infinite"
        if let whiteLevel, whiteLevel != 1 {
            message += " after division by the white level \(whiteLevel) (the values overflow float32: state a larger white_level, or send the data on a smaller scale)"
        } else {
            message += "; send finite numbers"
        }
        throw SCIError(message)
    }

    /// Builds the input. The mask (and ground truth) may come from the measurement's own file when
    /// it is a .mat/.npz holding `meas`, `mask` and `orig` together. `snapshotLimit` keeps only the
    /// first N snapshots (the benchmark files store more snapshots than their `orig` covers).
    public init(measurement: ArrayFile, mask maskFile: ArrayFile?, groundTruth truthFile: ArrayFile?,
                whiteLevel statedWhiteLevel: Float? = nil, snapshotLimit: Int? = nil) throws {
        let bundled = measurement.arrays.count > 1
        let measArray = try Self.pick(measurement, Self.measurementNames, what: "measurement")
        var maskArray: (NumericArray, PlaneOrder)?
        if let maskFile {
            maskArray = (try Self.pick(maskFile, Self.maskNames, what: "mask"), maskFile.planeOrder)
        } else if bundled, let a = Self.maskNames.lazy.compactMap({ measurement.array($0) }).first {
            maskArray = (a, measurement.planeOrder)
        }
        guard let (maskValues, maskOrder) = maskArray else {
            throw SCIError("no mask: send one (a T x H x W stack), reference an uploaded one, or bundle 'mask' in the measurement's .mat")
        }
        let mask = try SCIInput.mask(maskValues, order: maskOrder)
        if let statedWhiteLevel, !(statedWhiteLevel > 0 && statedWhiteLevel.isFinite) {
            throw SCIError("white level must be a positive number, got \(statedWhiteLevel)")
        }
        let white = statedWhiteLevel ?? SCIInput.inferWhiteLevel(measurement: measArray, mask: mask)
        var snapshots = try SCIInput.snapshots(measArray, order: measurement.planeOrder, whiteLevel: white)
        guard !snapshots.isEmpty else { throw SCIError("measurement holds no snapshot (shape \(measArray.shape))") }
        for snapshot in snapshots {
            try Self.requireFinite(snapshot.pixels, what: "the measurement", whiteLevel: white)
        }
        guard snapshots[0].height == mask.height, snapshots[0].width == mask.width else {
            throw SCIError("measurement is \(snapshots[0].height)x\(snapshots[0].width) but the mask is \(mask.height)x\(mask.width); they must match")
        }
        if let snapshotLimit {
            guard snapshotLimit >= 1 else { throw SCIError("snapshot limit must be at least 1") }
            snapshots = Array(snapshots.prefix(snapshotLimit))
        }
        var truth: Video?
        var truthSource: (NumericArray, PlaneOrder)?
        if let truthFile {
            truthSource = (try Self.pick(truthFile, Self.truthNames, what: "ground truth"), truthFile.planeOrder)
        } else if bundled, let a = Self.truthNames.lazy.compactMap({ measurement.array($0) }).first {
            truthSource = (a, measurement.planeOrder)
        }
        if let (a, order) = truthSource {
            // Ground truth in integer types is scaled by its own full scale; floats follow the measurement.
            let level = a.isFloatingPoint ? (SCIInput.inferFrameWhiteLevel(a) > 1 ? white : 1) : SCIInput.inferFrameWhiteLevel(a)
            let v = try SCIInput.video(a, order: order, whiteLevel: level)
            guard v.height == mask.height, v.width == mask.width else {
                throw SCIError("ground truth frames are \(v.height)x\(v.width) but the mask is \(mask.height)x\(mask.width)")
            }
            let needed = snapshots.count * mask.frames
            guard v.frames == needed else {
                let hint = v.frames % mask.frames == 0 && v.frames < needed
                    ? " (use only the first \(v.frames / mask.frames) snapshot(s) of the measurement: --snapshots \(v.frames / mask.frames) on the command line)" : ""
                throw SCIError("ground truth has \(v.frames) frames but \(snapshots.count) snapshot(s) of \(mask.frames) frames give \(needed)\(hint)")
            }
            try Self.requireFinite(v.pixels, what: "the ground truth", whiteLevel: level)
            truth = v
        }
        self.snapshots = snapshots
        self.mask = mask
        self.groundTruth = truth
        self.whiteLevel = white
    }
}
