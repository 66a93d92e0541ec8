extension MATFile {
    /// Writes a Level 5 MAT-file (little-endian, what MATLAB's `save -v7` and scipy's `savemat`
    /// read). Each C-order array is transposed to column-major; its shape becomes MATLAB's
    /// dimensions (a scalar becomes 1x1, a vector of length n a 1xn row). Every storage type maps
    /// to its MATLAB class; bool becomes a logical array (uint8 with the logical flag).
    /// With `compressed`, each variable is stored as its own miCOMPRESSED (zlib) element.
    ///
    /// A dimension above 2^31-1 or a variable over 4 GiB cannot be expressed in this format and
    /// stops the program (it is a caller error, not bad input).
    public static func encode(_ variables: [(name: String, array: NumericArray)], compressed: Bool) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(MATHeader.size + variables.reduce(0) { $0 + $1.array.count * 8 + 64 })
        var text = Array("MATLAB 5.0 MAT-file, Platform: \(matPlatformName), Created by: revsci".utf8)
        text = Array(text.prefix(116))
        text.append(contentsOf: [UInt8](repeating: 0x20, count: 116 - text.count))
        out.append(contentsOf: text)
        out.append(contentsOf: [UInt8](repeating: 0, count: 8)) // no subsystem data
        out.appendLE(UInt16(0x0100))
        out.append(contentsOf: Array("IM".utf8))
        for variable in variables {
            let element = matrixElement(name: variable.name, array: variable.array)
            if compressed {
                let deflated = Zlib.deflate(element[...])
                precondition(deflated.count <= Int(UInt32.max), "variable '\(variable.name)' is too large for a MAT-file")
                out.appendLE(MI.compressed)
                out.appendLE(UInt32(deflated.count))
                out.append(contentsOf: deflated) // MATLAB does not pad compressed elements
            } else {
                out.append(contentsOf: element)
            }
        }
        return out
    }

    private static var matPlatformName: String {
        #if os(Linux)
        return "GLNXA64"
        #elseif os(macOS)
        return "MACI64"
        #elseif os(Windows)
        return "PCWIN64"
        #else
        return "unknown"
        #endif
    }

    /// One miMATRIX element (tag included) holding `array`.
    static func matrixElement(name: String, array: NumericArray) -> [UInt8] {
        let dims: [Int]
        switch array.shape.count {
        case 0: dims = [1, 1]
        case 1: dims = [1, array.shape[0]]
        default: dims = array.shape
        }
        let (cls, dataType, logical) = matClass(array.storage)
        var content = [UInt8]()
        // Array flags: class in the low byte, logical flag; second word unused (nzmax for sparse).
        appendElement(&content, type: MI.uint32, count: 8) { buffer in
            buffer.appendLE(cls | (logical ? MX.logicalFlag : 0))
            buffer.appendLE(UInt32(0))
        }
        appendElement(&content, type: MI.int32, count: 4 * dims.count) { buffer in
            for d in dims {
                precondition(d <= Int(Int32.max), "dimension \(d) of '\(name)' is too large for a MAT-file")
                buffer.appendLE(Int32(d))
            }
        }
        let nameBytes = Array(name.utf8)
        if (1 ... 4).contains(nameBytes.count) {
            // A small data element, as MATLAB writes short names: byte count in the upper half of the tag.
            content.appendLE(UInt32(nameBytes.count) << 16 | MI.int8)
            content.append(contentsOf: nameBytes + [UInt8](repeating: 0, count: 4 - nameBytes.count))
        } else {
            appendElement(&content, type: MI.int8, count: nameBytes.count) { $0.append(contentsOf: nameBytes) }
        }
        let columnMajor = array.storage.map(RowMajorToColumnMajor(shape: dims))
        let elementSize = byteWidth(dataType)
        let (byteCount, overflow) = columnMajor.count.multipliedReportingOverflow(by: elementSize)
        precondition(!overflow && byteCount <= Int(UInt32.max), "variable '\(name)' is too large for a MAT-file")
        appendElement(&content, type: dataType, count: byteCount) { appendValues(&$0, columnMajor) }

        precondition(content.count <= Int(UInt32.max), "variable '\(name)' is too large for a MAT-file")
        var element = [UInt8]()
        element.reserveCapacity(content.count + 8)
        element.appendLE(MI.matrix)
        element.appendLE(UInt32(content.count))
        element.append(contentsOf: content)
        return element
    }

    /// Appends a full 8-byte tag, the data written by `body` (`count` bytes) and padding to 8.
    private static func appendElement(_ out: inout [UInt8], type: UInt32, count: Int, _ body: (inout [UInt8]) -> Void) {
        out.appendLE(type)
        out.appendLE(UInt32(count))
        let start = out.count
        body(&out)
        assert(out.count - start == count)
        out.append(contentsOf: [UInt8](repeating: 0, count: (8 - count % 8) % 8))
    }

    private static func byteWidth(_ dataType: UInt32) -> Int {
        switch dataType {
        case MI.int8, MI.uint8: return 1
        case MI.int16, MI.uint16: return 2
        case MI.int32, MI.uint32, MI.single: return 4
        default: return 8
        }
    }

    private static func matClass(_ storage: NumericArray.Storage) -> (cls: UInt32, dataType: UInt32, logical: Bool) {
        switch storage {
        case .float64: return (MX.double, MI.double, false)
        case .float32: return (MX.single, MI.single, false)
        case .int8: return (MX.int8, MI.int8, false)
        case .uint8: return (MX.uint8, MI.uint8, false)
        case .int16: return (MX.int16, MI.int16, false)
        case .uint16: return (MX.uint16, MI.uint16, false)
        case .int32: return (MX.int32, MI.int32, false)
        case .uint32: return (MX.uint32, MI.uint32, false)
        case .int64: return (MX.int64, MI.int64, false)
        case .uint64: return (MX.uint64, MI.uint64, false)
        case .bool: return (MX.uint8, MI.uint8, true)
        }
    }

    private static func appendValues(_ out: inout [UInt8], _ storage: NumericArray.Storage) {
        switch storage {
        case .float64(let v):
            if 1.littleEndian == 1 { v.withUnsafeBytes { out.append(contentsOf: $0) } } else { appendLittleEndian(&out, v.map { $0.bitPattern }) }
        case .float32(let v):
            if 1.littleEndian == 1 { v.withUnsafeBytes { out.append(contentsOf: $0) } } else { appendLittleEndian(&out, v.map { $0.bitPattern }) }
        case .int8(let v): appendLittleEndian(&out, v)
        case .uint8(let v): out.append(contentsOf: v)
        case .int16(let v): appendLittleEndian(&out, v)
        case .uint16(let v): appendLittleEndian(&out, v)
        case .int32(let v): appendLittleEndian(&out, v)
        case .uint32(let v): appendLittleEndian(&out, v)
        case .int64(let v): appendLittleEndian(&out, v)
        case .uint64(let v): appendLittleEndian(&out, v)
        case .bool(let v): out.append(contentsOf: v.map { $0 ? 1 : 0 })
        }
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ out: inout [UInt8], _ values: [T]) {
        if 1.littleEndian == 1 {
            values.withUnsafeBytes { out.append(contentsOf: $0) }
        } else {
            values.map { $0.littleEndian }.withUnsafeBytes { out.append(contentsOf: $0) }
        }
    }
}

/// Reorders a C-order array of `shape` into column-major order: the same bytes read as
/// column-major with the reversed shape are the array's transpose, whose C order is wanted.
struct RowMajorToColumnMajor: ElementTransform {
    let shape: [Int]
    func apply<T>(_ values: [T]) -> [T] {
        NumericArray.columnMajorToRowMajor(values, shape: Array(shape.reversed()))
    }
}
