/// An error raised while decoding or encoding a file. The message says what is wrong with the
/// input and, where it can, what to send instead; it is shown to users as is.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Short name of the format ("npy", "mat", "png", "safetensors", "zip", "pth").
    public let format: String
    public let message: String

    public init(_ format: String, _ message: String) {
        self.format = format
        self.message = message
    }

    public var description: String { "\(format): \(message)" }
}

/// Upper bounds that keep a hostile or corrupt file from making a reader allocate without limit.
/// A declared size is checked against these and against the bytes actually present before any
/// buffer is allocated.
public struct DecodeLimits: Sendable {
    /// Most elements a single decoded array may hold.
    public var maxElements: Int
    /// Most bytes a decompression step (zlib) may produce in total for one file.
    public var maxInflatedBytes: Int
    /// Most dimensions an array may declare.
    public var maxRank: Int

    public init(maxElements: Int = 1 << 28, maxInflatedBytes: Int = 2 << 30, maxRank: Int = 8) {
        self.maxElements = maxElements
        self.maxInflatedBytes = maxInflatedBytes
        self.maxRank = maxRank
    }

    public static let `default` = DecodeLimits()

    /// Checks a declared shape: no negative extents, rank and element count within the limits,
    /// no overflow. Returns the element count.
    public func checkShape(_ shape: [Int], format: String) throws -> Int {
        guard shape.count <= maxRank else {
            throw FormatError(format, "array has \(shape.count) dimensions; at most \(maxRank) are accepted")
        }
        // The non-zero extents are bounded too: an empty array of shape (0, 2^32, 2^32) holds
        // no element, but its extents would overflow any later arithmetic on them.
        var nonZero = 1
        var empty = false
        for d in shape {
            guard d >= 0 else { throw FormatError(format, "negative dimension \(d) in shape \(shape)") }
            if d == 0 { empty = true; continue }
            let (product, overflow) = nonZero.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maxElements else {
                throw FormatError(format, "shape \(shape) holds more than the \(maxElements) elements accepted")
            }
            nonZero = product
        }
        return empty ? 0 : nonZero
    }
}
