/// MATLAB Level 5 MAT-files (what `save` writes by default up to -v7): a 128-byte header, then a
/// sequence of data elements, each a variable (miMATRIX), possibly zlib-compressed
/// (miCOMPRESSED). Numeric, logical and char variables are read; arrays come back in C order
/// with MATLAB's dimensions. MATLAB v7.3 files (HDF5) and v4 files are refused with an error that
/// says how to re-save.
public struct MATFile: Sendable {
    /// Numeric and logical variables, in file order, C order (converted from column-major), shape
    /// exactly as MATLAB's dimensions (at least two, e.g. [256, 256, 8] or [512, 512]).
    public var arrays: [(name: String, array: NumericArray)]
    /// Char variables (e.g. Bayer_mode = 'rggb'). A char matrix gives its rows joined by "\n".
    public var strings: [String: String]
    /// Names of variables of classes that are not read (struct, cell, object, sparse, function
    /// handle, opaque/MCOS objects such as string or table).
    public var skipped: [String]

    public init(arrays: [(name: String, array: NumericArray)] = [], strings: [String: String] = [:], skipped: [String] = []) {
        self.arrays = arrays
        self.strings = strings
        self.skipped = skipped
    }

    /// The numeric or logical variable `name` (the last one, should a file repeat a name, as
    /// MATLAB's `load` would keep it).
    public func array(_ name: String) -> NumericArray? {
        arrays.last(where: { $0.name == name })?.array
    }

    /// Decodes a Level 5 MAT-file. Throws `FormatError` ("mat") for anything else or anything
    /// malformed; every declared size is checked against the bytes present and `limits` first.
    public static func decode(_ bytes: [UInt8], limits: DecodeLimits = .default) throws -> MATFile {
        let header = try MATHeader(bytes)
        var parser = MATParser(bigEndian: header.bigEndian, limits: limits)
        var cursor = MATCursor(bytes[...], bigEndian: header.bigEndian)
        try cursor.seek(to: bytes.startIndex + MATHeader.size)
        var elements = 0
        while !cursor.isAtEnd {
            // A writer may pad a final miCOMPRESSED element to 8 bytes: zeros up to the next
            // 8-byte boundary at the very end are padding, not a truncated element.
            let padding = (8 - (cursor.position - bytes.startIndex) % 8) % 8
            if padding > 0, cursor.remaining == padding, cursor.restIsZero { break }
            let start = cursor.position - bytes.startIndex
            let element = try cursor.readElement(padCompressed: false)
            elements += 1
            if let subsys = header.subsystemOffset, subsys == start { continue } // MATLAB's object store
            try parser.topLevel(element, offset: start)
        }
        guard elements > 0 else {
            throw FormatError("mat", "the MAT-file holds no variables (only its \(bytes.count)-byte header)")
        }
        return parser.file
    }
}

// MARK: - Constants from the MAT-file format

enum MI {
    static let int8: UInt32 = 1, uint8: UInt32 = 2, int16: UInt32 = 3, uint16: UInt32 = 4
    static let int32: UInt32 = 5, uint32: UInt32 = 6, single: UInt32 = 7, double: UInt32 = 9
    static let int64: UInt32 = 12, uint64: UInt32 = 13, matrix: UInt32 = 14, compressed: UInt32 = 15
    static let utf8: UInt32 = 16, utf16: UInt32 = 17, utf32: UInt32 = 18

    static func name(_ type: UInt32) -> String {
        switch type {
        case int8: return "miINT8"
        case uint8: return "miUINT8"
        case int16: return "miINT16"
        case uint16: return "miUINT16"
        case int32: return "miINT32"
        case uint32: return "miUINT32"
        case single: return "miSINGLE"
        case double: return "miDOUBLE"
        case int64: return "miINT64"
        case uint64: return "miUINT64"
        case matrix: return "miMATRIX"
        case compressed: return "miCOMPRESSED"
        case utf8: return "miUTF8"
        case utf16: return "miUTF16"
        case utf32: return "miUTF32"
        default: return "type \(type)"
        }
    }
}

enum MX {
    static let cell: UInt32 = 1, structure: UInt32 = 2, object: UInt32 = 3, char: UInt32 = 4
    static let sparse: UInt32 = 5, double: UInt32 = 6, single: UInt32 = 7, int8: UInt32 = 8
    static let uint8: UInt32 = 9, int16: UInt32 = 10, uint16: UInt32 = 11, int32: UInt32 = 12
    static let uint32: UInt32 = 13, int64: UInt32 = 14, uint64: UInt32 = 15
    static let function: UInt32 = 16, opaque: UInt32 = 17

    static let complexFlag: UInt32 = 0x0800
    static let globalFlag: UInt32 = 0x0400
    static let logicalFlag: UInt32 = 0x0200

    static func name(_ cls: UInt32) -> String {
        switch cls {
        case cell: return "cell"
        case structure: return "struct"
        case object: return "object"
        case char: return "char"
        case sparse: return "sparse"
        case double: return "double"
        case single: return "single"
        case int8: return "int8"
        case uint8: return "uint8"
        case int16: return "int16"
        case uint16: return "uint16"
        case int32: return "int32"
        case uint32: return "uint32"
        case int64: return "int64"
        case uint64: return "uint64"
        case function: return "function handle"
        case opaque: return "opaque object"
        default: return "class \(cls)"
        }
    }
}

// MARK: - Header

struct MATHeader {
    static let size = 128
    let bigEndian: Bool
    /// Offset of the subsystem-specific data (MATLAB's store for objects), when the header names one.
    let subsystemOffset: Int?

    private static let v73Advice = "MATLAB v7.3 (HDF5) files are not supported: save with -v7 (save(f, vars, '-v7')) or send .npy"
    private static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    init(_ bytes: [UInt8]) throws {
        let text = bytes.prefix(116)
        let textString = String(decoding: text.prefix(while: { $0 != 0 }), as: UTF8.self)
        func hasHDF5(at offset: Int) -> Bool {
            bytes.count >= offset + 8 && Array(bytes[offset ..< offset + 8]) == MATHeader.hdf5Signature
        }
        if textString.hasPrefix("MATLAB 7.3") || hasHDF5(at: 512) || hasHDF5(at: 0) {
            throw FormatError("mat", "this is a " + MATHeader.v73Advice)
        }
        guard !bytes.isEmpty else { throw FormatError("mat", "the input is empty, not a MAT-file") }
        guard bytes.count >= MATHeader.size else {
            if textString.hasPrefix("MATLAB") {
                throw FormatError("mat", "truncated: a MAT-file header needs \(MATHeader.size) bytes but the input has \(bytes.count)")
            }
            throw FormatError("mat", "not a MAT-file: \(bytes.count) bytes, shorter than the \(MATHeader.size)-byte MATLAB header")
        }
        var reader = ByteReader(bytes, format: "mat", offset: 116)
        let subsysBytes = try reader.readBytes(8, "subsystem data offset")
        let versionBytes = try reader.readBytes(2, "version")
        let endian = try reader.readBytes(2, "endian indicator")
        switch (endian[endian.startIndex], endian[endian.startIndex + 1]) {
        case (0x49, 0x4D): bigEndian = false // "IM": written little-endian
        case (0x4D, 0x49): bigEndian = true  // "MI": written big-endian
        default:
            // A v4 file starts with a small integer type code (MOPT); a v5 header starts with text.
            if bytes.prefix(4).contains(0), !textString.hasPrefix("MATLAB") {
                throw FormatError("mat", "not a Level 5 MAT-file: this looks like a MATLAB v4 (or older) file, which is not supported: save with -v7 (save(f, vars, '-v7')) or send .npy")
            }
            throw FormatError("mat", "not a MAT-file: no 'IM'/'MI' endian indicator at bytes 126-127 of the header")
        }
        let v0 = UInt16(versionBytes[versionBytes.startIndex]), v1 = UInt16(versionBytes[versionBytes.startIndex + 1])
        let version = bigEndian ? (v0 << 8 | v1) : (v1 << 8 | v0)
        if version == 0x0200 { throw FormatError("mat", "this is a " + MATHeader.v73Advice) }
        guard version == 0x0100 else {
            throw FormatError("mat", "unsupported MAT-file version 0x\(String(version, radix: 16)) (Level 5 files have 0x0100)")
        }
        var subsys: UInt64 = 0
        for b in bigEndian ? Array(subsysBytes) : subsysBytes.reversed() { subsys = subsys << 8 | UInt64(b) }
        if subsys == 0 || subsys == 0x2020_2020_2020_2020 || subsys > UInt64(bytes.count) {
            subsystemOffset = nil
        } else {
            subsystemOffset = Int(subsys)
        }
    }
}

// MARK: - Data elements

struct MATElement {
    var type: UInt32
    var data: ArraySlice<UInt8>
}

/// A bounds-checked cursor over a slice (which keeps the indices of the buffer it came from)
/// that reads tags in the file's byte order.
struct MATCursor {
    let data: ArraySlice<UInt8>
    let bigEndian: Bool
    private(set) var position: Int

    init(_ data: ArraySlice<UInt8>, bigEndian: Bool) {
        self.data = data
        self.bigEndian = bigEndian
        self.position = data.startIndex
    }

    var remaining: Int { data.endIndex - position }
    var isAtEnd: Bool { position >= data.endIndex }
    var restIsZero: Bool { data[position...].allSatisfy { $0 == 0 } }

    mutating func seek(to absolute: Int) throws {
        guard absolute >= data.startIndex, absolute <= data.endIndex else {
            throw FormatError("mat", "truncated: the input ends before offset \(absolute)")
        }
        position = absolute
    }

    mutating func readUInt32(_ what: String) throws -> UInt32 {
        guard remaining >= 4 else {
            throw FormatError("mat", "truncated: \(what) needs 4 bytes but only \(max(remaining, 0)) remain")
        }
        let value = loadUInt32(data, at: position, bigEndian: bigEndian)
        position += 4
        return value
    }

    /// Reads one data element: an 8-byte tag (type, byte count) or a 4-byte small-element tag
    /// (byte count in the upper 16 bits, data in the next 4 bytes), then the data and its
    /// padding to 8 bytes. MATLAB does not pad miCOMPRESSED elements.
    mutating func readElement(padCompressed: Bool = true) throws -> MATElement {
        guard remaining >= 8 else {
            throw FormatError("mat", "truncated: a data element tag needs 8 bytes but only \(max(remaining, 0)) remain")
        }
        let first = try readUInt32("data element tag")
        if first >> 16 != 0 {
            let type = first & 0xFFFF
            let count = Int(first >> 16)
            guard count <= 4 else {
                throw FormatError("mat", "malformed small data element (\(MI.name(type))): it declares \(count) bytes, at most 4 fit")
            }
            let start = position
            position += 4 // checked above: the tag needed 8 bytes
            return MATElement(type: type, data: data[start ..< start + count])
        }
        let type = first
        let count = Int(try readUInt32("data element size"))
        guard count <= remaining else {
            throw FormatError("mat", "truncated: a \(MI.name(type)) element declares \(count) bytes but only \(remaining) remain")
        }
        let start = position
        position += count
        if type != MI.compressed || padCompressed {
            let padding = (8 - count % 8) % 8
            position += min(padding, remaining)
        }
        return MATElement(type: type, data: data[start ..< start + count])
    }
}

@inline(__always)
func loadUInt32(_ bytes: ArraySlice<UInt8>, at i: Int, bigEndian: Bool) -> UInt32 {
    let b0 = UInt32(bytes[i]), b1 = UInt32(bytes[i + 1]), b2 = UInt32(bytes[i + 2]), b3 = UInt32(bytes[i + 3])
    return bigEndian ? (b0 << 24 | b1 << 16 | b2 << 8 | b3) : (b3 << 24 | b2 << 16 | b1 << 8 | b0)
}

private let hostIsBigEndian = 1.bigEndian == 1

/// Copies `count` values out of `bytes` (which holds at least `count * stride` bytes) as they lie.
private func loadRaw<T: BitwiseCopyable>(_ bytes: ArraySlice<UInt8>, count: Int) -> [T] {
    [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        bytes.withUnsafeBytes { raw in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0 ..< count * MemoryLayout<T>.stride]))
        }
        initialized = count
    }
}

/// Copies `count` integers out of `bytes`, swapping the byte order when the file's differs from
/// the host's.
private func loadIntegers<T: FixedWidthInteger & BitwiseCopyable>(_ bytes: ArraySlice<UInt8>, count: Int, bigEndian: Bool) -> [T] {
    var values: [T] = loadRaw(bytes, count: count)
    if bigEndian != hostIsBigEndian, MemoryLayout<T>.size > 1 {
        values.withUnsafeMutableBufferPointer { buffer in
            for i in 0 ..< buffer.count { buffer[i] = buffer[i].byteSwapped }
        }
    }
    return values
}

/// The data of a real part as stored (its miTYPE), before conversion to the array's class.
private enum StoredValues {
    case int8([Int8]), uint8([UInt8]), int16([Int16]), uint16([UInt16]), int32([Int32]), uint32([UInt32])
    case int64([Int64]), uint64([UInt64]), single([Float]), double([Double])

    static func elementSize(_ type: UInt32) -> Int? {
        switch type {
        case MI.int8, MI.uint8: return 1
        case MI.int16, MI.uint16: return 2
        case MI.int32, MI.uint32, MI.single: return 4
        case MI.double, MI.int64, MI.uint64: return 8
        default: return nil
        }
    }

    init(_ element: MATElement, count: Int, bigEndian: Bool) {
        let d = element.data
        switch element.type {
        case MI.int8: self = .int8(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.uint8: self = .uint8(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.int16: self = .int16(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.uint16: self = .uint16(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.int32: self = .int32(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.uint32: self = .uint32(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.int64: self = .int64(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.uint64: self = .uint64(loadIntegers(d, count: count, bigEndian: bigEndian))
        case MI.single:
            var values: [Float] = loadRaw(d, count: count)
            if bigEndian != hostIsBigEndian {
                values.withUnsafeMutableBufferPointer { b in
                    for i in b.indices { b[i] = Float(bitPattern: b[i].bitPattern.byteSwapped) }
                }
            }
            self = .single(values)
        default: // MI.double: the caller checked the type with elementSize
            var values: [Double] = loadRaw(d, count: count)
            if bigEndian != hostIsBigEndian {
                values.withUnsafeMutableBufferPointer { b in
                    for i in b.indices { b[i] = Double(bitPattern: b[i].bitPattern.byteSwapped) }
                }
            }
            self = .double(values)
        }
    }

    // The conversions are written out per stored type (rather than as one generic map) so that
    // they run as plain loops even in unoptimized builds; the data files hold millions of values.
    var doubles: [Double] {
        switch self {
        case .int8(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .uint8(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .int16(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .uint16(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .int32(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .uint32(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .int64(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .uint64(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .single(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Double($0[i]) } } }
        case .double(let v): return v
        }
    }

    var floats: [Float] {
        switch self {
        case .int8(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .uint8(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .int16(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .uint16(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .int32(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .uint32(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .int64(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .uint64(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        case .single(let v): return v
        case .double(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = Float($0[i]) } } }
        }
    }

    var bools: [Bool] {
        switch self {
        case .uint8(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = $0[i] != 0 } } }
        case .int8(let v): return convert(v.count) { o in v.withUnsafeBufferPointer { for i in $0.indices { o[i] = $0[i] != 0 } } }
        default: return doubles.map { $0 != 0 }
        }
    }

    /// Converts to an integer class; a stored value the class cannot hold exactly is an error.
    func integers<T: FixedWidthInteger>(_: T.Type, variable: String) throws -> [T] {
        switch self {
        case .int8(let v): return try exactIntegers(v, variable: variable)
        case .uint8(let v): return try exactIntegers(v, variable: variable)
        case .int16(let v): return try exactIntegers(v, variable: variable)
        case .uint16(let v): return try exactIntegers(v, variable: variable)
        case .int32(let v): return try exactIntegers(v, variable: variable)
        case .uint32(let v): return try exactIntegers(v, variable: variable)
        case .int64(let v): return try exactIntegers(v, variable: variable)
        case .uint64(let v): return try exactIntegers(v, variable: variable)
        case .single(let v): return try exactIntegers(fromFloats: v, variable: variable)
        case .double(let v): return try exactIntegers(fromFloats: v, variable: variable)
        }
    }
}

/// An array of `count` trivial values, every one of them set by `fill`.
private func convert<T: BitwiseCopyable>(_ count: Int, _ fill: (UnsafeMutableBufferPointer<T>) -> Void) -> [T] {
    [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        fill(buffer)
        initialized = count
    }
}

private func exactIntegers<S: FixedWidthInteger, T: FixedWidthInteger>(_ values: [S], variable: String) throws -> [T] {
    if S.self == T.self { return unsafeBitCast(values, to: [T].self) }
    var result = [T]()
    result.reserveCapacity(values.count)
    for v in values {
        guard let converted = T(exactly: v) else {
            throw FormatError("mat", "variable '\(variable)' stores the value \(v), which its class \(T.self) cannot hold")
        }
        result.append(converted)
    }
    return result
}

private func exactIntegers<S: BinaryFloatingPoint, T: FixedWidthInteger>(fromFloats values: [S], variable: String) throws -> [T] {
    var result = [T]()
    result.reserveCapacity(values.count)
    for v in values {
        guard let converted = T(exactly: v) else {
            throw FormatError("mat", "variable '\(variable)' stores the value \(v), which its class \(T.self) cannot hold")
        }
        result.append(converted)
    }
    return result
}

/// Reorders a column-major character array and joins its rows (the last axis runs along a row).
private func charRows<T>(_ units: [T], dims: [Int], join: ([T]) -> String) -> String {
    guard !units.isEmpty else { return "" }
    let rowLength = dims.last ?? units.count
    guard rowLength > 0, units.count > rowLength else { return join(units) }
    let ordered = NumericArray.columnMajorToRowMajor(units, shape: dims)
    var rows = [String]()
    var start = 0
    while start < ordered.count {
        rows.append(join(Array(ordered[start ..< start + rowLength])))
        start += rowLength
    }
    return rows.joined(separator: "\n")
}

// MARK: - Variables

struct MATParser {
    let bigEndian: Bool
    let limits: DecodeLimits
    var inflated = 0
    var file = MATFile()

    init(bigEndian: Bool, limits: DecodeLimits) {
        self.bigEndian = bigEndian
        self.limits = limits
    }

    mutating func topLevel(_ element: MATElement, offset: Int) throws {
        switch element.type {
        case MI.matrix:
            try variable(element.data)
        case MI.compressed:
            let budget = limits.maxInflatedBytes - inflated
            guard budget > 0 else {
                throw FormatError("mat", "compressed variables inflate to more than the \(limits.maxInflatedBytes) bytes accepted")
            }
            // The variable's tag, flags and dimensions come first: read them from a small prefix
            // and refuse a declared size over the budget before inflating anything more.
            let declared = try declaredSize(ofCompressed: element.data, budget: budget, offset: offset)
            // (capped so that the inflater's own arithmetic on the limit cannot overflow)
            let bytes = try Zlib.inflate(element.data, maxOutput: min(budget, declared, Int.max / 2), format: "mat")
            inflated += bytes.count
            var cursor = MATCursor(bytes[...], bigEndian: bigEndian)
            let inner = try cursor.readElement()
            guard inner.type == MI.matrix else {
                throw FormatError("mat", "a compressed element at offset \(offset) holds \(MI.name(inner.type)), not a variable (miMATRIX)")
            }
            try variable(inner.data)
        default:
            throw FormatError("mat", "unexpected \(MI.name(element.type)) element at offset \(offset): a MAT-file holds variables (miMATRIX or miCOMPRESSED)")
        }
    }

    /// The inflated size a compressed variable declares in its tag (tag included), checked
    /// against `budget`, with its dimensions checked against the limits, from at most 512
    /// inflated bytes.
    private func declaredSize(ofCompressed data: ArraySlice<UInt8>, budget: Int, offset: Int) throws -> Int {
        let prefix = try Zlib.inflatePrefix(data, count: 512, format: "mat")
        var cursor = MATCursor(prefix[...], bigEndian: bigEndian)
        let type = try cursor.readUInt32("compressed variable tag")
        let size = Int(try cursor.readUInt32("compressed variable tag"))
        guard type == MI.matrix else {
            throw FormatError("mat", "a compressed element at offset \(offset) holds \(MI.name(type)), not a variable (miMATRIX)")
        }
        guard size <= budget - 8 else {
            throw FormatError("mat", "a compressed variable at offset \(offset) declares \(size) bytes: it would inflate past the \(limits.maxInflatedBytes) bytes accepted")
        }
        // Flags and dimensions, when the prefix holds them (a variable is at least that long).
        if let flags = try? cursor.readElement(), flags.type == MI.uint32, flags.data.count == 8,
           loadUInt32(flags.data, at: flags.data.startIndex, bigEndian: bigEndian) & 0xFF != MX.opaque,
           let dims = try? cursor.readElement(), dims.type == MI.int32, dims.data.count % 4 == 0, dims.data.count >= 4 {
            var shape = [Int]()
            for i in 0 ..< min(dims.data.count / 4, limits.maxRank + 1) {
                shape.append(Int(Int32(bitPattern: loadUInt32(dims.data, at: dims.data.startIndex + 4 * i, bigEndian: bigEndian))))
            }
            _ = try limits.checkShape(shape, format: "mat")
        }
        return size + 8
    }

    private func name(of element: MATElement) throws -> String {
        guard element.type == MI.int8 || element.type == MI.uint8 || element.type == MI.utf8 else {
            throw FormatError("mat", "malformed variable: its name is stored as \(MI.name(element.type)), not miINT8")
        }
        return String(decoding: element.data, as: UTF8.self)
    }

    /// The content of one miMATRIX element: array flags, dimensions, name, real part [, imaginary part].
    mutating func variable(_ content: ArraySlice<UInt8>) throws {
        var cursor = MATCursor(content, bigEndian: bigEndian)
        let flagsElement = try cursor.readElement()
        guard flagsElement.type == MI.uint32, flagsElement.data.count == 8 else {
            throw FormatError("mat", "malformed variable: array flags must be 8 bytes of miUINT32, found \(flagsElement.data.count) bytes of \(MI.name(flagsElement.type))")
        }
        let flags = loadUInt32(flagsElement.data, at: flagsElement.data.startIndex, bigEndian: bigEndian)
        let cls = flags & 0xFF
        if cls == MX.opaque { // flags, name, type system, class name, data: no dimensions
            file.skipped.append(try name(of: cursor.readElement()))
            return
        }
        let dimsElement = try cursor.readElement()
        guard dimsElement.type == MI.int32, dimsElement.data.count % 4 == 0, dimsElement.data.count >= 4 else {
            throw FormatError("mat", "malformed variable: dimensions must be miINT32 values, found \(dimsElement.data.count) bytes of \(MI.name(dimsElement.type))")
        }
        let rank = dimsElement.data.count / 4
        guard rank <= limits.maxRank else {
            throw FormatError("mat", "array has \(rank) dimensions; at most \(limits.maxRank) are accepted")
        }
        var dims = [Int]()
        for i in 0 ..< rank {
            let raw = loadUInt32(dimsElement.data, at: dimsElement.data.startIndex + 4 * i, bigEndian: bigEndian)
            dims.append(Int(Int32(bitPattern: raw)))
        }
        let variableName = try name(of: cursor.readElement())

        switch cls {
        case MX.cell, MX.structure, MX.object, MX.sparse, MX.function:
            file.skipped.append(variableName)
            return
        case MX.char, MX.double ... MX.uint64:
            break
        default:
            throw FormatError("mat", "variable '\(variableName)' has unknown array class \(cls)")
        }
        let count: Int
        do {
            count = try limits.checkShape(dims, format: "mat")
        } catch let error as FormatError {
            throw FormatError("mat", "variable '\(variableName)': \(error.message)")
        }
        if flags & MX.complexFlag != 0 {
            throw FormatError("mat", "variable '\(variableName)' is complex; complex data is not supported: save its real and imaginary parts as separate real arrays")
        }
        guard !cursor.isAtEnd else {
            throw FormatError("mat", "truncated: variable '\(variableName)' has no data element")
        }
        let real = try cursor.readElement()
        if cls == MX.char {
            file.strings[variableName] = try chars(real, dims: dims, count: count, variable: variableName)
            return
        }
        guard let size = StoredValues.elementSize(real.type) else {
            throw FormatError("mat", "variable '\(variableName)' (\(MX.name(cls))) stores its data as \(MI.name(real.type)), which is not a numeric type")
        }
        guard real.data.count % size == 0 else {
            throw FormatError("mat", "variable '\(variableName)' stores \(real.data.count) bytes of \(MI.name(real.type)), not a whole number of \(size)-byte values")
        }
        guard real.data.count / size == count else {
            throw FormatError("mat", "variable '\(variableName)' has dimensions \(dims) (\(count) elements) but its data holds \(real.data.count / size) values")
        }
        let stored = StoredValues(real, count: count, bigEndian: bigEndian)
        let storage: NumericArray.Storage
        if flags & MX.logicalFlag != 0 {
            storage = .bool(stored.bools)
        } else {
            switch cls {
            case MX.double: storage = .float64(stored.doubles)
            case MX.single: storage = .float32(stored.floats)
            case MX.int8: storage = .int8(try stored.integers(Int8.self, variable: variableName))
            case MX.uint8: storage = .uint8(try stored.integers(UInt8.self, variable: variableName))
            case MX.int16: storage = .int16(try stored.integers(Int16.self, variable: variableName))
            case MX.uint16: storage = .uint16(try stored.integers(UInt16.self, variable: variableName))
            case MX.int32: storage = .int32(try stored.integers(Int32.self, variable: variableName))
            case MX.uint32: storage = .uint32(try stored.integers(UInt32.self, variable: variableName))
            case MX.int64: storage = .int64(try stored.integers(Int64.self, variable: variableName))
            default: storage = .uint64(try stored.integers(UInt64.self, variable: variableName))
            }
        }
        let array = NumericArray(shape: dims, storage: storage).reorderedFromColumnMajor()
        file.arrays.append((name: variableName, array: array))
    }

    /// A char array: UTF-16 code units (miUINT16/miUTF16, MATLAB's own), bytes (miUINT8, one
    /// character each), UTF-8 (miUTF8) or UTF-32 (miUTF32/miUINT32).
    private func chars(_ element: MATElement, dims: [Int], count: Int, variable: String) throws -> String {
        func mismatch(_ found: Int) -> FormatError {
            FormatError("mat", "char variable '\(variable)' has dimensions \(dims) (\(count) characters) but its data holds \(found)")
        }
        let data = element.data
        switch element.type {
        case MI.uint16, MI.utf16:
            guard data.count % 2 == 0, data.count / 2 == count else { throw mismatch(data.count / 2) }
            let units: [UInt16] = loadIntegers(data, count: count, bigEndian: bigEndian)
            return charRows(units, dims: dims) { String(decoding: $0, as: UTF16.self) }
        case MI.uint8, MI.int8:
            guard data.count == count else { throw mismatch(data.count) }
            let scalars = data.map { Unicode.Scalar($0) }
            return charRows(scalars, dims: dims) { String(String.UnicodeScalarView($0)) }
        case MI.utf8:
            let text = String(decoding: data, as: UTF8.self)
            let scalars = Array(text.unicodeScalars)
            guard scalars.count == count else { throw mismatch(scalars.count) }
            return charRows(scalars, dims: dims) { String(String.UnicodeScalarView($0)) }
        case MI.utf32, MI.uint32:
            guard data.count % 4 == 0, data.count / 4 == count else { throw mismatch(data.count / 4) }
            let codes: [UInt32] = loadIntegers(data, count: count, bigEndian: bigEndian)
            let scalars = codes.map { Unicode.Scalar($0) ?? "\u{FFFD}" }
            return charRows(scalars, dims: dims) { String(String.UnicodeScalarView($0)) }
        default:
            throw FormatError("mat", "char variable '\(variable)' stores its data as \(MI.name(element.type)), which is not a character type")
        }
    }
}
