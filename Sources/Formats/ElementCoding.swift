/// Element types that the array readers (.npy, .safetensors) understand on disk, and the bulk
/// conversion between raw bytes and `NumericArray.Storage`. Internal to the module.
enum ElementKind: Sendable, Equatable {
    case float16   // IEEE binary16, widened to float32
    case bfloat16  // bfloat16, widened to float32
    case float32, float64
    case uint8, int8, uint16, int16, uint32, int32, uint64, int64
    case bool      // one byte; 0 is false, anything else true

    var itemSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .float16, .bfloat16, .uint16, .int16: return 2
        case .float32, .uint32, .int32: return 4
        case .float64, .uint64, .int64: return 8
        }
    }

    /// The kind that stores `storage` without loss.
    init(of storage: NumericArray.Storage) {
        switch storage {
        case .float32: self = .float32
        case .float64: self = .float64
        case .uint8: self = .uint8
        case .int8: self = .int8
        case .uint16: self = .uint16
        case .int16: self = .int16
        case .uint32: self = .uint32
        case .int32: self = .int32
        case .uint64: self = .uint64
        case .int64: self = .int64
        case .bool: self = .bool
        }
    }

    /// Decodes `count` elements starting at `offset`. The caller has checked that
    /// `offset + count * itemSize <= bytes.count`.
    func decode(_ bytes: [UInt8], offset: Int, count: Int, bigEndian: Bool) -> NumericArray.Storage {
        precondition(offset >= 0 && count >= 0 && offset + count * itemSize <= bytes.count)
        let swap = bigEndian != RawElements.hostIsBigEndian
        switch self {
        case .float16:
            let bits: [UInt16] = RawElements.load(bytes, offset: offset, count: count, swap: swap)
            return .float32(bits.map(HalfFloat.float16ToFloat))
        case .bfloat16:
            let bits: [UInt16] = RawElements.load(bytes, offset: offset, count: count, swap: swap)
            return .float32(bits.map(HalfFloat.bfloat16ToFloat))
        case .float32:
            let bits: [UInt32] = RawElements.load(bytes, offset: offset, count: count, swap: swap)
            return .float32(RawElements.reinterpret(bits, as: Float.self))
        case .float64:
            let bits: [UInt64] = RawElements.load(bytes, offset: offset, count: count, swap: swap)
            return .float64(RawElements.reinterpret(bits, as: Double.self))
        case .uint8: return .uint8(Array(bytes[offset ..< offset + count]))
        case .int8: return .int8(bytes[offset ..< offset + count].map { Int8(bitPattern: $0) })
        case .uint16: return .uint16(RawElements.load(bytes, offset: offset, count: count, swap: swap))
        case .int16: return .int16(RawElements.load(bytes, offset: offset, count: count, swap: swap))
        case .uint32: return .uint32(RawElements.load(bytes, offset: offset, count: count, swap: swap))
        case .int32: return .int32(RawElements.load(bytes, offset: offset, count: count, swap: swap))
        case .uint64: return .uint64(RawElements.load(bytes, offset: offset, count: count, swap: swap))
        case .int64: return .int64(RawElements.load(bytes, offset: offset, count: count, swap: swap))
        case .bool: return .bool(bytes[offset ..< offset + count].map { $0 != 0 })
        }
    }
}

enum RawElements {
    static let hostIsBigEndian = 1.bigEndian == 1

    /// Copies `count` fixed-width integers out of `bytes`, byte-swapping each when asked.
    static func load<T: FixedWidthInteger>(_ bytes: [UInt8], offset: Int, count: Int, swap: Bool) -> [T] {
        let size = MemoryLayout<T>.size
        var values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                let source = UnsafeRawBufferPointer(rebasing: raw[offset ..< offset + count * size])
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            initialized = count
        }
        if swap {
            for i in values.indices { values[i] = values[i].byteSwapped }
        }
        return values
    }

    /// Reinterprets bit patterns as floating-point values of the same width.
    static func reinterpret<Bits, F>(_ bits: [Bits], as _: F.Type) -> [F] {
        precondition(MemoryLayout<Bits>.stride == MemoryLayout<F>.stride)
        return [F](unsafeUninitializedCapacity: bits.count) { buffer, initialized in
            bits.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
            initialized = bits.count
        }
    }

    /// The elements of `storage` as little-endian bytes (bool as 0/1).
    static func littleEndianBytes(_ storage: NumericArray.Storage) -> [UInt8] {
        switch storage {
        case .float32(let v): return littleEndian(v.map(\.bitPattern))
        case .float64(let v): return littleEndian(v.map(\.bitPattern))
        case .uint8(let v): return v
        case .int8(let v): return v.map { UInt8(bitPattern: $0) }
        case .uint16(let v): return littleEndian(v)
        case .int16(let v): return littleEndian(v)
        case .uint32(let v): return littleEndian(v)
        case .int32(let v): return littleEndian(v)
        case .uint64(let v): return littleEndian(v)
        case .int64(let v): return littleEndian(v)
        case .bool(let v): return v.map { $0 ? 1 : 0 }
        }
    }

    private static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        let source = hostIsBigEndian ? values.map(\.byteSwapped) : values
        return source.withUnsafeBytes { [UInt8]($0) }
    }
}

/// Bit-exact widening of 16-bit floats to float32 (every binary16 and bfloat16 value, including
/// subnormals, infinities and NaN payloads, is representable in float32).
public enum HalfFloat {
    /// IEEE 754 binary16 (1 sign, 5 exponent, 10 fraction bits) to float32.
    public static func float16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = UInt32((h >> 10) & 0x1F)
        var fraction = UInt32(h & 0x3FF)
        if exponent == 0x1F { // infinity or NaN: keep the payload
            return Float(bitPattern: sign | 0x7F80_0000 | (fraction << 13))
        }
        if exponent == 0 {
            if fraction == 0 { return Float(bitPattern: sign) } // signed zero
            // Subnormal: 0.fraction * 2^-14. Normalise so that bit 10 is the implicit one.
            var e: Int32 = -14
            while fraction & 0x400 == 0 {
                fraction <<= 1
                e -= 1
            }
            fraction &= 0x3FF
            return Float(bitPattern: sign | (UInt32(e + 127) << 23) | (fraction << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (fraction << 13)) // 112 = 127 - 15
    }

    /// bfloat16 (the upper half of a float32) to float32.
    public static func bfloat16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }
}

/// `bytes` as a String when they are valid UTF-8, nil otherwise.
func strictUTF8<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
    let text = String(decoding: bytes, as: UTF8.self)
    return text.utf8.elementsEqual(bytes) ? text : nil
}
