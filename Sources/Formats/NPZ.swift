/// NumPy `.npz` archives: a zip of `.npy` files (np.savez stores them, np.savez_compressed
/// deflates them). Arrays are named after their entries without the ".npy" suffix and come in
/// archive order.
public enum NPZ {
    static let format = "npz"

    public static func decode(_ bytes: [UInt8], limits: DecodeLimits = .default) throws -> [(name: String, array: NumericArray)] {
        let archive: ZipArchive
        do {
            archive = try ZipArchive(bytes, limits: limits)
        } catch let error as FormatError {
            throw FormatError(format, "not a readable zip archive: \(error.message)")
        }
        var result = [(name: String, array: NumericArray)]()
        var seen = Set<String>()
        var inflatedBudget = limits.maxInflatedBytes
        for entry in archive.entries where !(entry.isDirectory && entry.uncompressedSize == 0) {
            guard entry.name.hasSuffix(".npy") else {
                throw FormatError(format, "entry '\(entry.name)' is not a .npy array (every member of an .npz must end in .npy)")
            }
            let name = String(entry.name.dropLast(4))
            guard seen.insert(name).inserted else {
                throw FormatError(format, "array '\(name)' appears twice in the archive")
            }
            // Inflating is capped at each entry's declared size; the declared sizes share one budget.
            if entry.method != 0 {
                guard entry.uncompressedSize <= inflatedBudget else {
                    throw FormatError(format, "the compressed arrays inflate to more than the \(limits.maxInflatedBytes) bytes accepted")
                }
                inflatedBudget -= entry.uncompressedSize
            }
            do {
                let data = try archive.data(for: entry)
                result.append((name, try NPY.decode(data, limits: limits)))
            } catch let error as FormatError {
                throw FormatError(format, "array '\(name)': \(error.format): \(error.message)")
            }
        }
        return result
    }

    public static func encode(_ arrays: [(name: String, array: NumericArray)], compressed: Bool) throws -> [UInt8] {
        var writer = ZipWriter()
        for (name, array) in arrays {
            try writer.add(name: name + ".npy", data: NPY.encode(array), compress: compressed)
        }
        return writer.finish()
    }
}
