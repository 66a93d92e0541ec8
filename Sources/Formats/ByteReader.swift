/// A bounds-checked cursor over a byte buffer. Every read checks the remaining length first and
/// throws a `FormatError` naming the format when the input is truncated, so parsers never trap.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public let format: String

    public init(_ bytes: [UInt8], format: String, offset: Int = 0) {
        self.bytes = bytes
        self.format = format
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func require(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else {
            throw FormatError(format, "truncated: \(what()) needs \(n) bytes but only \(max(remaining, 0)) remain at offset \(offset)")
        }
    }

    public mutating func seek(to position: Int) throws {
        guard position >= 0, position <= bytes.count else {
            throw FormatError(format, "offset \(position) lies outside the \(bytes.count)-byte input")
        }
        offset = position
    }

    public mutating func skip(_ n: Int, _ what: @autoclosure () -> String = "data") throws {
        try require(n, what())
        offset += n
    }

    public mutating func readBytes(_ n: Int, _ what: @autoclosure () -> String = "data") throws -> ArraySlice<UInt8> {
        try require(n, what())
        defer { offset += n }
        return bytes[offset ..< offset + n]
    }

    public mutating func readUInt8(_ what: @autoclosure () -> String = "byte") throws -> UInt8 {
        try require(1, what())
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readLE<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String = "integer") throws -> T {
        let size = MemoryLayout<T>.size
        try require(size, what())
        var value: T = 0
        for i in 0 ..< size { value |= T(truncatingIfNeeded: bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    public mutating func readBE<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String = "integer") throws -> T {
        let size = MemoryLayout<T>.size
        try require(size, what())
        var value: T = 0
        for i in 0 ..< size { value = (value << 8) | T(truncatingIfNeeded: bytes[offset + i]) }
        offset += size
        return value
    }
}

/// Appends fixed-width integers to a byte buffer (used by the writers).
extension Array where Element == UInt8 {
    public mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        for i in 0 ..< MemoryLayout<T>.size { append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    public mutating func appendBE<T: FixedWidthInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        for i in 0 ..< size { append(UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - i)))) }
    }
}
