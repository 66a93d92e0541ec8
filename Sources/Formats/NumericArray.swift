/// A decoded n-dimensional array of one element type, always in C (row-major) order: whatever
/// order a file stores (Fortran-order .npy, column-major MATLAB), readers convert to this one.
public struct NumericArray: Sendable, Equatable {
    public enum Storage: Sendable, Equatable {
        case float32([Float])
        case float64([Double])
        case uint8([UInt8])
        case int8([Int8])
        case uint16([UInt16])
        case int16([Int16])
        case uint32([UInt32])
        case int32([Int32])
        case uint64([UInt64])
        case int64([Int64])
        case bool([Bool])
    }

    public var shape: [Int]
    public var storage: Storage

    public init(shape: [Int], storage: Storage) {
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) does not match \(storage.count) elements")
        self.shape = shape
        self.storage = storage
    }

    public init(shape: [Int], float32 values: [Float]) { self.init(shape: shape, storage: .float32(values)) }

    public var count: Int { storage.count }

    /// Bytes the elements take in memory.
    public var byteCount: Int {
        switch storage {
        case .float64, .uint64, .int64: return 8 * count
        case .float32, .uint32, .int32: return 4 * count
        case .uint16, .int16: return 2 * count
        case .uint8, .int8, .bool: return count
        }
    }

    /// Name of the element type as users see it in error messages ("uint8", "float32", ...).
    public var elementTypeName: String { storage.typeName }

    /// True for float32/float64 storage.
    public var isFloatingPoint: Bool {
        switch storage {
        case .float32, .float64: return true
        default: return false
        }
    }

    /// Every element converted to Float (integers exactly up to 2^24, booleans as 0/1).
    public func floats() -> [Float] {
        switch storage {
        case .float32(let v): return v
        case .float64(let v): return v.map { Float($0) }
        case .uint8(let v): return v.map { Float($0) }
        case .int8(let v): return v.map { Float($0) }
        case .uint16(let v): return v.map { Float($0) }
        case .int16(let v): return v.map { Float($0) }
        case .uint32(let v): return v.map { Float($0) }
        case .int32(let v): return v.map { Float($0) }
        case .uint64(let v): return v.map { Float($0) }
        case .int64(let v): return v.map { Float($0) }
        case .bool(let v): return v.map { $0 ? 1 : 0 }
        }
    }

    /// Every element converted to Double.
    public func doubles() -> [Double] {
        switch storage {
        case .float32(let v): return v.map { Double($0) }
        case .float64(let v): return v
        case .uint8(let v): return v.map { Double($0) }
        case .int8(let v): return v.map { Double($0) }
        case .uint16(let v): return v.map { Double($0) }
        case .int16(let v): return v.map { Double($0) }
        case .uint32(let v): return v.map { Double($0) }
        case .int32(let v): return v.map { Double($0) }
        case .uint64(let v): return v.map { Double($0) }
        case .int64(let v): return v.map { Double($0) }
        case .bool(let v): return v.map { $0 ? 1 : 0 }
        }
    }

    /// Reorders elements stored in Fortran (column-major) order for `shape` into C order.
    public static func columnMajorToRowMajor<T>(_ values: [T], shape: [Int]) -> [T] {
        let rank = shape.count
        if rank <= 1 || values.isEmpty { return values }
        // Column-major strides: stride[0] = 1, stride[k] = stride[k-1] * shape[k-1].
        var fStride = [Int](repeating: 1, count: rank)
        for k in 1 ..< rank { fStride[k] = fStride[k - 1] * shape[k - 1] }
        var result = [T]()
        result.reserveCapacity(values.count)
        var index = [Int](repeating: 0, count: rank)
        var source = 0
        for _ in 0 ..< values.count {
            result.append(values[source])
            // Advance the C-order index (last axis fastest) and the matching source offset.
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                source += fStride[axis]
                if index[axis] < shape[axis] { break }
                source -= fStride[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// The same array with its elements reordered from column-major to row-major.
    public func reorderedFromColumnMajor() -> NumericArray {
        NumericArray(shape: shape, storage: storage.map(ColumnMajorToRowMajor(shape: shape)))
    }
}

extension NumericArray.Storage {
    public var count: Int {
        switch self {
        case .float32(let v): return v.count
        case .float64(let v): return v.count
        case .uint8(let v): return v.count
        case .int8(let v): return v.count
        case .uint16(let v): return v.count
        case .int16(let v): return v.count
        case .uint32(let v): return v.count
        case .int32(let v): return v.count
        case .uint64(let v): return v.count
        case .int64(let v): return v.count
        case .bool(let v): return v.count
        }
    }

    public var typeName: String {
        switch self {
        case .float32: return "float32"
        case .float64: return "float64"
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .bool: return "bool"
        }
    }

    /// Applies a reordering to whichever element array this holds.
    public func map(_ transform: ElementTransform) -> NumericArray.Storage {
        switch self {
        case .float32(let v): return .float32(transform.apply(v))
        case .float64(let v): return .float64(transform.apply(v))
        case .uint8(let v): return .uint8(transform.apply(v))
        case .int8(let v): return .int8(transform.apply(v))
        case .uint16(let v): return .uint16(transform.apply(v))
        case .int16(let v): return .int16(transform.apply(v))
        case .uint32(let v): return .uint32(transform.apply(v))
        case .int32(let v): return .int32(transform.apply(v))
        case .uint64(let v): return .uint64(transform.apply(v))
        case .int64(let v): return .int64(transform.apply(v))
        case .bool(let v): return .bool(transform.apply(v))
        }
    }
}

/// A reordering that works on element arrays of any type (see `Storage.map`).
public protocol ElementTransform {
    func apply<T>(_ values: [T]) -> [T]
}

struct ColumnMajorToRowMajor: ElementTransform {
    let shape: [Int]
    func apply<T>(_ values: [T]) -> [T] { NumericArray.columnMajorToRowMajor(values, shape: shape) }
}
