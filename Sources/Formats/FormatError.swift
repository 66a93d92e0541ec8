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
        var count = 1
        for d in shape {
            guard d >= 0 else { throw FormatError(format, "negative dimension \(d) in shape \(shape)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maxElements else {
                throw FormatError(format, "shape \(shape) holds more than the \(maxElements) elements accepted")
            }
            count = product
        }
        return count
    }
}
