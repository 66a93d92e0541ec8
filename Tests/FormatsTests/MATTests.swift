import XCTest
@testable import Formats
import TestSupport

/// Builds MAT-file bytes by hand, in either byte order, for the tests that need files MATLAB's
/// writer (and ours) never produce: big-endian, odd stored types, hostile sizes.
private struct RawMAT {
    var bigEndian = false

    func u32(_ v: UInt32) -> [UInt8] {
        var out = [UInt8]()
        if bigEndian { out.appendBE(v) } else { out.appendLE(v) }
        return out
    }

    func header(text: String = "MATLAB 5.0 MAT-file, test", version: UInt16 = 0x0100) -> [UInt8] {
        var out = Array(text.utf8.prefix(116))
        out += [UInt8](repeating: 0x20, count: 116 - out.count)
        out += [UInt8](repeating: 0, count: 8)
        if bigEndian { out.appendBE(version); out += Array("MI".utf8) } else { out.appendLE(version); out += Array("IM".utf8) }
        return out
    }

    /// A data element with a full 8-byte tag; `declared` overrides the byte count in the tag.
    func element(_ type: UInt32, _ data: [UInt8], declared: UInt32? = nil, pad: Bool = true) -> [UInt8] {
        var out = u32(type) + u32(declared ?? UInt32(data.count)) + data
        if pad { out += [UInt8](repeating: 0, count: (8 - data.count % 8) % 8) }
        return out
    }

    func small(_ type: UInt32, _ data: [UInt8]) -> [UInt8] {
        precondition(data.count <= 4)
        let word = UInt32(data.count) << 16 | type
        return u32(word) + data + [UInt8](repeating: 0, count: 4 - data.count)
    }

    func values<T: FixedWidthInteger>(_ v: [T]) -> [UInt8] {
        var out = [UInt8]()
        for x in v { if bigEndian { out.appendBE(x) } else { out.appendLE(x) } }
        return out
    }

    func matrix(cls: UInt32, flags: UInt32 = 0, dims: [Int32], name: String, dataType: UInt32, data: [UInt8],
                declaredData: UInt32? = nil, extra: [UInt8] = []) -> [UInt8] {
        var content = element(6, u32(cls | flags) + u32(0))
        content += element(5, values(dims))
        content += name.utf8.count <= 4 ? small(1, Array(name.utf8)) : element(1, Array(name.utf8))
        content += element(dataType, data, declared: declaredData, pad: declaredData == nil)
        content += extra
        return element(14, content)
    }
}

final class MATTests: XCTestCase {
    // MARK: helpers

    private func assertFormatError(_ bytes: [UInt8], limits: DecodeLimits = .default, contains: String? = nil,
                                   _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try MATFile.decode(bytes, limits: limits)
            XCTFail("\(what): decoded without error", file: file, line: line)
        } catch let error as FormatError {
            XCTAssertEqual(error.format, "mat", what, file: file, line: line)
            XCTAssertFalse(error.message.isEmpty, what, file: file, line: line)
            if let contains {
                XCTAssertTrue(error.message.contains(contains), "\(what): message '\(error.message)' lacks '\(contains)'", file: file, line: line)
            }
        } catch {
            XCTFail("\(what): threw \(type(of: error)), not FormatError: \(error)", file: file, line: line)
        }
    }

    /// Decodes or throws a FormatError; anything else fails the test.
    private func decodeOrFormatError(_ bytes: [UInt8], limits: DecodeLimits = .default, _ what: String) -> MATFile? {
        do {
            return try MATFile.decode(bytes, limits: limits)
        } catch let error as FormatError {
            XCTAssertFalse(error.message.isEmpty, what)
            return nil
        } catch {
            XCTFail("\(what): threw \(type(of: error)), not FormatError")
            return nil
        }
    }

    /// The element at a C-order index, as Double.
    private func element(_ a: NumericArray, _ index: [Int]) -> Double {
        precondition(index.count == a.shape.count)
        var flat = 0
        for (i, d) in zip(index, a.shape) { flat = flat * d + i }
        switch a.storage {
        case .float32(let v): return Double(v[flat])
        case .float64(let v): return v[flat]
        case .uint8(let v): return Double(v[flat])
        case .int8(let v): return Double(v[flat])
        case .uint16(let v): return Double(v[flat])
        case .int16(let v): return Double(v[flat])
        case .uint32(let v): return Double(v[flat])
        case .int32(let v): return Double(v[flat])
        case .uint64(let v): return Double(v[flat])
        case .int64(let v): return Double(v[flat])
        case .bool(let v): return v[flat] ? 1 : 0
        }
    }

    private func sum(_ a: NumericArray) -> Double {
        switch a.storage {
        // Plain loops: reduce is slow in unoptimized test builds, and these arrays are large.
        case .uint8(let v): return v.withUnsafeBufferPointer { b in var s = 0; for i in b.indices { s += Int(b[i]) }; return Double(s) }
        case .float64(let v): return v.withUnsafeBufferPointer { b in var s = 0.0; for i in b.indices { s += b[i] }; return s }
        default: return a.doubles().reduce(0, +)
        }
    }

    // MARK: (1) the shared data

    private struct Expected {
        var name: String
        var shape: [Int]
        var type: String
        var sum: Double
        var samples: [([Int], Double)] = []
    }

    /// Expected values below were computed once with scipy.io.loadmat(path, mat_dtype=True)
    /// (indices are the same C-order / MATLAB-minus-one indices numpy uses). Every variable in
    /// these files has class double (stored as miUINT8/miUINT16 where values fit) except the
    /// uint8 arrays of nerf_bayer_hotdog.mat, so the reader returns float64 for them.
    func testSharedFilesParseToDocumentedShapes() throws {
        let cacti: [(String, [Expected])] = [
            ("data/benchmarks/drop8_cacti.mat", [
                Expected(name: "mask", shape: [256, 256, 8], type: "float64", sum: 261108,
                         samples: [([10, 20, 3], 0), ([1, 0, 0], 1), ([0, 1, 0], 0)]),
                Expected(name: "meas", shape: [256, 256, 5], type: "float64", sum: 234826084,
                         samples: [([10, 20, 3], 1221), ([200, 7, 1], 395), ([0, 1, 0], 739), ([1, 0, 0], 740)]),
                Expected(name: "orig", shape: [256, 256, 8], type: "float64", sum: 92243663,
                         samples: [([10, 20, 3], 246), ([200, 7, 1], 196), ([0, 1, 0], 244), ([1, 0, 0], 245)]),
            ]),
            ("data/benchmarks/runner8_cacti.mat", [
                Expected(name: "mask", shape: [256, 256, 8], type: "float64", sum: 261108),
                Expected(name: "meas", shape: [256, 256, 5], type: "float64", sum: 96027153, samples: [([10, 20, 3], 96)]),
                Expected(name: "orig", shape: [256, 256, 8], type: "float64", sum: 38380253, samples: [([10, 20, 3], 123)]),
            ]),
            ("data/benchmarks/traffic48_cacti.mat", [
                Expected(name: "mask", shape: [256, 256, 8], type: "float64", sum: 261108),
                Expected(name: "meas", shape: [256, 256, 6], type: "float64", sum: 164780057,
                         samples: [([10, 20, 3], 344.99999999999994), ([20, 10, 3], 328), ([200, 7, 1], 203),
                                   ([0, 1, 0], 226), ([1, 0, 0], 220)]),
                Expected(name: "orig", shape: [256, 256, 48], type: "float64", sum: 330908504,
                         samples: [([10, 20, 3], 63), ([200, 7, 1], 77), ([0, 1, 0], 79), ([1, 0, 0], 73)]),
            ]),
            ("data/benchmarks/mask.mat", [
                Expected(name: "mask", shape: [256, 256, 8], type: "float64", sum: 264576,
                         samples: [([0, 0, 0], 1), ([1, 0, 0], 0), ([0, 1, 0], 1)]),
            ]),
            ("data/benchmarks_full/drop40_cacti.mat", [
                Expected(name: "mask", shape: [256, 256, 8], type: "float64", sum: 261108),
                Expected(name: "meas", shape: [256, 256, 5], type: "float64", sum: 234826084, samples: [([10, 20, 3], 1221)]),
                Expected(name: "orig", shape: [256, 256, 40], type: "float64", sum: 472058868, samples: [([10, 20, 3], 246)]),
            ]),
            ("data/benchmarks_full/runner40_cacti.mat", [
                Expected(name: "mask", shape: [256, 256, 8], type: "float64", sum: 261108),
                Expected(name: "meas", shape: [256, 256, 5], type: "float64", sum: 96027153, samples: [([10, 20, 3], 96)]),
                Expected(name: "orig", shape: [256, 256, 40], type: "float64", sum: 192629434, samples: [([10, 20, 3], 123)]),
            ]),
            ("data/color/nerf_bayer_hotdog.mat", [
                Expected(name: "mask_bayer", shape: [400, 400, 8], type: "uint8", sum: 320000,
                         samples: [([200, 210, 4], 1), ([150, 301, 6], 0), ([1, 0, 0], 1), ([0, 1, 0], 0)]),
                Expected(name: "meas_bayer", shape: [400, 400, 1], type: "float64", sum: 276858.8286584276,
                         samples: [([200, 210, 0], 1.3725490272045135), ([150, 301, 0], 2)]),
                Expected(name: "orig", shape: [400, 400, 3, 8], type: "uint8", sum: 845647378,
                         samples: [([200, 210, 1, 4], 71), ([233, 101, 0, 0], 99), ([150, 300, 2, 6], 255)]),
                Expected(name: "orig_bayer", shape: [400, 400, 8], type: "float64", sum: 1107490.8048267444,
                         samples: [([200, 210, 4], 0.4431372582912445), ([150, 301, 6], 1)]),
            ]),
            ("data/real_cr10/meas_duomino_cr_10.mat", [
                Expected(name: "meas", shape: [512, 512, 6], type: "float64", sum: 30388400, samples: [([100, 200, 1], 54)]),
            ]),
            ("data/real_cr10/meas_hand_cr_10.mat", [
                Expected(name: "meas", shape: [512, 512, 4], type: "float64", sum: 44483526, samples: [([100, 200, 1], 57)]),
            ]),
            ("data/real_cr10/meas_pendulumBall_cr_10.mat", [
                Expected(name: "meas", shape: [512, 512, 4], type: "float64", sum: 10990091, samples: [([100, 200, 1], 6)]),
            ]),
            ("data/real_cr10/meas_waterBalloon_cr_10.mat", [
                Expected(name: "meas", shape: [512, 512], type: "float64", sum: 4585044,
                         samples: [([256, 100], 10), ([100, 256], 73), ([300, 301], 17), ([10, 20], 4)]),
            ]),
        ]
        for (path, expected) in cacti {
            let mat = try MATFile.decode(SharedData.bytes(path))
            XCTAssertEqual(Set(mat.arrays.map(\.name)), Set(expected.map(\.name)), path)
            XCTAssertEqual(mat.skipped, [], path)
            for e in expected {
                guard let a = mat.array(e.name) else { XCTFail("\(path): no \(e.name)"); continue }
                XCTAssertEqual(a.shape, e.shape, "\(path) \(e.name)")
                XCTAssertEqual(a.elementTypeName, e.type, "\(path) \(e.name)")
                XCTAssertEqual(sum(a), e.sum, accuracy: abs(e.sum) * 1e-9, "\(path) \(e.name) sum")
                for (index, value) in e.samples {
                    XCTAssertEqual(element(a, index), value, "\(path) \(e.name)\(index)")
                }
            }
            if path.hasSuffix("nerf_bayer_hotdog.mat") {
                XCTAssertEqual(mat.strings, ["Bayer_mode": "rggb"])
            } else {
                XCTAssertEqual(mat.strings, [:], path)
            }
        }
    }

    // MARK: (2) round trips

    private func sampleArrays(shape: [Int]) -> [NumericArray] {
        let n = shape.reduce(1, *)
        let i = Array(0 ..< n)
        return [
            NumericArray(shape: shape, storage: .float64(i.map { Double($0) * 1.5 - 7.25 })),
            NumericArray(shape: shape, storage: .float32(i.map { Float($0) * -0.25 + 3 })),
            NumericArray(shape: shape, storage: .uint8(i.map { UInt8(truncatingIfNeeded: $0 * 37 + 1) })),
            NumericArray(shape: shape, storage: .int8(i.map { Int8(truncatingIfNeeded: $0 * 29 - 100) })),
            NumericArray(shape: shape, storage: .uint16(i.map { UInt16(truncatingIfNeeded: $0 * 4099 + 65000) })),
            NumericArray(shape: shape, storage: .int16(i.map { Int16(truncatingIfNeeded: $0 * 3001 - 32768) })),
            NumericArray(shape: shape, storage: .uint32(i.map { UInt32(truncatingIfNeeded: $0 * 123_456_789 + 4_000_000_000) })),
            NumericArray(shape: shape, storage: .int32(i.map { Int32(truncatingIfNeeded: $0 * 987_654_321 - 2_000_000_000) })),
            NumericArray(shape: shape, storage: .uint64(i.map { UInt64.max - UInt64($0) * 0x1234_5678_9ABC })),
            NumericArray(shape: shape, storage: .int64(i.map { Int64.min + Int64($0) * 0x0FED_CBA9_8765 })),
            NumericArray(shape: shape, storage: .bool(i.map { $0 % 3 == 1 })),
        ]
    }

    func testRoundTripEveryStorageTypeAndRank() throws {
        let shapes: [[Int]] = [[], [5], [1], [2, 3], [3, 1], [2, 3, 4], [2, 1, 3, 2], [0], [0, 0], [0, 3], [3, 0, 2]]
        for compressed in [false, true] {
            var variables = [(name: String, array: NumericArray)]()
            for (s, shape) in shapes.enumerated() {
                for (t, array) in sampleArrays(shape: shape).enumerated() {
                    variables.append((name: "v\(s)_\(t)_\(array.elementTypeName)", array: array))
                }
            }
            let bytes = MATFile.encode(variables, compressed: compressed)
            let decoded = try MATFile.decode(bytes)
            XCTAssertEqual(decoded.arrays.count, variables.count)
            XCTAssertEqual(decoded.skipped, [])
            for (original, back) in zip(variables, decoded.arrays) {
                XCTAssertEqual(back.name, original.name)
                // MATLAB has no rank below 2: a scalar comes back 1x1, a vector of n as 1xn.
                let expectedShape = original.array.shape.count == 0 ? [1, 1]
                    : original.array.shape.count == 1 ? [1] + original.array.shape : original.array.shape
                XCTAssertEqual(back.array.shape, expectedShape, original.name)
                XCTAssertEqual(back.array.storage, original.array.storage, "\(original.name) compressed=\(compressed)")
            }
        }
    }

    /// The encoder writes column-major data: a 2x3 C-order array [[1,2,3],[4,5,6]] is stored as
    /// 1,4,2,5,3,6 (the layout MATLAB and scipy expect).
    func testEncoderWritesColumnMajorLittleEndian() throws {
        let a = NumericArray(shape: [2, 3], storage: .uint8([1, 2, 3, 4, 5, 6]))
        let bytes = MATFile.encode([(name: "a", array: a)], compressed: false)
        XCTAssertEqual(Array(bytes[124 ..< 128]), [0x00, 0x01, 0x49, 0x4D])
        XCTAssertTrue(String(decoding: bytes[0 ..< 19], as: UTF8.self) == "MATLAB 5.0 MAT-file")
        let raw = RawMAT()
        let expected = raw.header().prefix(116) + Array(bytes[116 ..< 128])
            + raw.matrix(cls: 9, dims: [2, 3], name: "a", dataType: 2, data: [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(Array(bytes[128...]), Array(expected[128...]))
        let logical = MATFile.encode([(name: "m", array: NumericArray(shape: [2], storage: .bool([true, false])))], compressed: false)
        // Array flags: uint8 class (9) with the logical flag (0x0200).
        XCTAssertEqual(Array(logical[144 ..< 148]), [9, 2, 0, 0])
    }

    // MARK: byte order, stored types, char arrays, skipped classes

    private func mixedFile(bigEndian: Bool) -> [UInt8] {
        let raw = RawMAT(bigEndian: bigEndian)
        var bytes = raw.header()
        // double class stored as miUINT8 (MATLAB's compact form), 2x3 column-major.
        bytes += raw.matrix(cls: 6, dims: [2, 3], name: "d", dataType: 2, data: [1, 4, 2, 5, 3, 6])
        // int16 class stored as miINT16.
        bytes += raw.matrix(cls: 10, dims: [1, 3], name: "i16", dataType: 3, data: raw.values([Int16(-2), 300, -32768]))
        // single class stored as miINT16 (values fit).
        bytes += raw.matrix(cls: 7, dims: [3, 1], name: "f", dataType: 3, data: raw.values([Int16(-1), 2, 7]))
        // uint32 class stored as miUINT16.
        bytes += raw.matrix(cls: 13, dims: [1, 2], name: "u32", dataType: 4, data: raw.values([UInt16(65535), 1]))
        // double class stored as miDOUBLE.
        bytes += raw.matrix(cls: 6, dims: [1, 2], name: "dd", dataType: 9, data: raw.values([(0.1).bitPattern, (-2.5).bitPattern]))
        // logical 2x2.
        bytes += raw.matrix(cls: 9, flags: 0x0200, dims: [2, 2], name: "mask", dataType: 2, data: [1, 0, 0, 1])
        // char 'rggb' (UTF-16 code units, as MATLAB writes) and a 2x3 char matrix ['abc';'def'].
        bytes += raw.matrix(cls: 4, dims: [1, 4], name: "Bayer_mode", dataType: 4, data: raw.values("rggb".utf16.map { $0 }))
        bytes += raw.matrix(cls: 4, dims: [2, 3], name: "rows", dataType: 16, data: Array("adbecf".utf8))
        // A struct and a cell: skipped by name (their contents are never read).
        bytes += raw.matrix(cls: 2, dims: [1, 1], name: "s", dataType: 5, data: raw.values([Int32(32)]))
        bytes += raw.matrix(cls: 1, dims: [1, 1], name: "c", dataType: 14, data: [])
        return bytes
    }

    func testBothByteOrdersStoredTypesCharsAndSkipped() throws {
        for bigEndian in [false, true] {
            let mat = try MATFile.decode(mixedFile(bigEndian: bigEndian))
            let label = bigEndian ? "big-endian" : "little-endian"
            XCTAssertEqual(mat.arrays.map(\.name), ["d", "i16", "f", "u32", "dd", "mask"], label)
            XCTAssertEqual(mat.array("d"), NumericArray(shape: [2, 3], storage: .float64([1, 2, 3, 4, 5, 6])), label)
            XCTAssertEqual(mat.array("i16"), NumericArray(shape: [1, 3], storage: .int16([-2, 300, -32768])), label)
            XCTAssertEqual(mat.array("f"), NumericArray(shape: [3, 1], storage: .float32([-1, 2, 7])), label)
            XCTAssertEqual(mat.array("u32"), NumericArray(shape: [1, 2], storage: .uint32([65535, 1])), label)
            XCTAssertEqual(mat.array("dd"), NumericArray(shape: [1, 2], storage: .float64([0.1, -2.5])), label)
            XCTAssertEqual(mat.array("mask"), NumericArray(shape: [2, 2], storage: .bool([true, false, false, true])), label)
            XCTAssertEqual(mat.strings, ["Bayer_mode": "rggb", "rows": "abc\ndef"], label)
            XCTAssertEqual(mat.skipped, ["s", "c"], label)
            XCTAssertNil(mat.array("Bayer_mode"))
        }
    }

    func testStoredValueOutsideClassIsAnError() {
        let raw = RawMAT()
        // int8 class whose data (miINT16) holds 300.
        let bytes = raw.header() + raw.matrix(cls: 8, dims: [1, 2], name: "x", dataType: 3, data: raw.values([Int16(1), 300]))
        assertFormatError(bytes, contains: "300", "value outside class")
        // uint8 class stored as miDOUBLE holding 0.5.
        let half = raw.header() + raw.matrix(cls: 9, dims: [1, 1], name: "x", dataType: 9, data: raw.values([(0.5).bitPattern]))
        assertFormatError(half, "fraction in an integer class")
    }

    // MARK: (3) hostile input

    func testRejectsV73V4EmptyAndForeignInput() {
        // v7.3: a 512-byte user block with the MATLAB text and version 0x0200, then HDF5's signature.
        var v73 = RawMAT().header(text: "MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .", version: 0x0200)
        v73 += [UInt8](repeating: 0, count: 512 - v73.count) + [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        v73 += [UInt8](repeating: 0, count: 64)
        assertFormatError(v73, contains: "v7.3 (HDF5) files are not supported: save with -v7", "v7.3")
        assertFormatError(Array(v73.prefix(128)), contains: "v7.3", "v7.3 header alone")
        // Version 0x0200 alone, even with another text.
        assertFormatError(RawMAT().header(text: "something", version: 0x0200), contains: "v7.3", "version 0x0200")
        assertFormatError([], contains: "empty", "empty input")
        assertFormatError(RawMAT().header(), contains: "no variables", "header alone")
        assertFormatError(RawMAT(bigEndian: true).header(), "big-endian header alone")
        // A v4 file: a 20-byte header (type, rows, cols, imagf, name length), name, doubles.
        var v4 = [UInt8]()
        for v: Int32 in [0, 2, 2, 0, 2] { v4.appendLE(v) }
        v4 += Array("x\0".utf8) + [UInt8](repeating: 0, count: 32) + [UInt8](repeating: 0, count: 100)
        assertFormatError(v4, contains: "v4", "v4")
        assertFormatError(Array("\u{93}NUMPY and then some bytes".utf8) + [UInt8](repeating: 7, count: 200), "npy")
        assertFormatError(Array(repeating: 0x41, count: 300), contains: "not a MAT-file", "text")
        assertFormatError(Array("MATLAB 5.0".utf8), contains: "truncated", "short header")
        var badVersion = RawMAT().header(version: 0x0300)
        badVersion += RawMAT().matrix(cls: 9, dims: [1, 1], name: "x", dataType: 2, data: [1])
        assertFormatError(badVersion, contains: "version", "version 0x0300")
    }

    func testRejectsHostileSizesAndStructure() {
        let raw = RawMAT()
        let h = raw.header()
        // Dimensions whose product is 2^62: refused before anything is allocated.
        assertFormatError(h + raw.matrix(cls: 6, dims: [Int32.max, Int32.max], name: "big", dataType: 9, data: []),
                          contains: "elements", "huge dims")
        assertFormatError(h + raw.matrix(cls: 6, dims: [-1, 4], name: "neg", dataType: 9, data: []), "negative dim")
        assertFormatError(h + raw.matrix(cls: 6, dims: Array(repeating: 1, count: 9), name: "r9", dataType: 9, data: []),
                          contains: "dimensions", "rank 9")
        assertFormatError(h + raw.matrix(cls: 6, dims: [2, 2], name: "x", dataType: 9, data: [], declaredData: 0xFFFF_FFF8),
                          contains: "truncated", "huge data byte count")
        assertFormatError(h + raw.u32(14) + raw.u32(0xFFFF_FFF0) + [UInt8](repeating: 0, count: 64),
                          contains: "truncated", "huge miMATRIX byte count")
        assertFormatError(h + raw.u32(15) + raw.u32(0x7FFF_FFFF) + [0x78, 0x9C], contains: "truncated", "huge miCOMPRESSED byte count")
        // The element count must match the dimensions.
        assertFormatError(h + raw.matrix(cls: 9, dims: [2, 3], name: "x", dataType: 2, data: [1, 2, 3, 4, 5]),
                          contains: "6 elements", "count mismatch")
        assertFormatError(h + raw.matrix(cls: 6, dims: [1, 1], name: "x", dataType: 9, data: [1, 2, 3]), "partial double")
        assertFormatError(h + raw.matrix(cls: 4, dims: [1, 5], name: "s", dataType: 4, data: raw.values("rggb".utf16.map { $0 })),
                          "char count mismatch")
        // Complex data is refused.
        let re = raw.values([(1.0).bitPattern]), im = raw.values([(2.0).bitPattern])
        assertFormatError(h + raw.matrix(cls: 6, flags: 0x0800, dims: [1, 1], name: "z", dataType: 9, data: re, extra: raw.element(9, im)),
                          contains: "complex data is not supported", "complex")
        // Structural damage.
        assertFormatError(h + raw.element(14, raw.element(5, raw.values([Int32(1)]))), contains: "array flags", "no flags")
        assertFormatError(h + raw.element(14, raw.element(6, raw.u32(6) + raw.u32(0))), contains: "truncated", "flags only")
        assertFormatError(h + raw.matrix(cls: 99, dims: [1, 1], name: "x", dataType: 2, data: [1]), contains: "class", "unknown class")
        assertFormatError(h + raw.matrix(cls: 9, dims: [1, 1], name: "x", dataType: 14, data: [1]), "matrix as data")
        assertFormatError(h + raw.element(9, [UInt8](repeating: 0, count: 8)), contains: "miDOUBLE", "stray top-level element")
        assertFormatError(h + raw.u32(0x0005_0001) + [1, 2, 3, 4], contains: "small", "small element over 4 bytes")
        assertFormatError(h + [0x0E, 0, 0], contains: "truncated", "partial tag")
        // A compressed element that holds something other than a variable, or garbage.
        let notMatrix = raw.element(9, [UInt8](repeating: 0, count: 8))
        let wrapped = Zlib.deflate(notMatrix[...])
        assertFormatError(h + raw.element(15, wrapped, pad: false), contains: "miMATRIX", "compressed non-matrix")
        assertFormatError(h + raw.element(15, [0x78, 0x9C, 1, 2, 3, 4, 5, 6], pad: false), "compressed garbage")
        assertFormatError(h + raw.element(15, [], pad: false), "compressed empty")
    }

    func testCompressedStreamPastTheLimitIsRefused() {
        let raw = RawMAT()
        // 8 MiB of zeros deflates to a few KiB; the limit allows 1 MiB.
        let bomb = Zlib.deflate([UInt8](repeating: 0, count: 8 << 20)[...])
        XCTAssertLessThan(bomb.count, 64 << 10)
        let limits = DecodeLimits(maxInflatedBytes: 1 << 20)
        // Refused from its first inflated bytes: they are no variable tag declaring a size.
        assertFormatError(raw.header() + raw.element(15, bomb, pad: false), limits: limits, contains: "not a variable", "zip bomb")
        // A real variable tag declaring more than the limit is refused before inflating the rest,
        // and one that lies about its size cannot inflate past what it declared.
        var tag: [UInt8] = []
        tag.appendLE(UInt32(14)); tag.appendLE(UInt32(2 << 20))
        let declared = Zlib.deflate((tag + [UInt8](repeating: 0, count: 8 << 20))[...])
        assertFormatError(raw.header() + raw.element(15, declared, pad: false), limits: limits, contains: "would inflate", "declared bomb")
        var small: [UInt8] = []
        small.appendLE(UInt32(14)); small.appendLE(UInt32(64))
        let lying = Zlib.deflate((small + [UInt8](repeating: 0, count: 8 << 20))[...])
        assertFormatError(raw.header() + raw.element(15, lying, pad: false), limits: limits, contains: "inflates", "lying size")
        // The limit holds for the file as a whole: two variables of 600 kB each against 1 MiB.
        let big = NumericArray(shape: [600, 1000], storage: .uint8([UInt8](repeating: 3, count: 600_000)))
        let two = MATFile.encode([(name: "a", array: big), (name: "b", array: big)], compressed: true)
        XCTAssertNoThrow(try MATFile.decode(two))
        assertFormatError(two, limits: limits, contains: "inflate", "cumulative inflate limit")
        // And the element limit applies to compressed variables too.
        assertFormatError(two, limits: DecodeLimits(maxElements: 100_000), contains: "elements", "element limit")
    }

    func testTruncatedRealFileAlwaysThrows() throws {
        let bytes = try SharedData.bytes("data/benchmarks/mask.mat")
        var offsets = Array(0 ..< 140) + [bytes.count - 1, bytes.count - 4, bytes.count - 8, bytes.count / 2]
        var offset = 150
        while offset < bytes.count { offsets.append(offset); offset += 997 }
        for cut in offsets {
            assertFormatError(Array(bytes.prefix(cut)), "mask.mat cut at \(cut)")
        }
    }

    /// The same file with its zlib stream cut short but the miCOMPRESSED byte count patched to
    /// match, so that the cut reaches the inflater rather than the element bounds check.
    func testTruncatedCompressedStreamThrows() throws {
        let bytes = try SharedData.bytes("data/benchmarks/mask.mat")
        XCTAssertEqual(Array(bytes[128 ..< 132]), [15, 0, 0, 0]) // miCOMPRESSED, little-endian
        for cut in [136, 137, 138, 140, 200, 1000, 20_000, 50_000, bytes.count - 5, bytes.count - 1] {
            var truncated = Array(bytes.prefix(cut))
            let declared = UInt32(cut - 136)
            for k in 0 ..< 4 { truncated[132 + k] = UInt8(truncatingIfNeeded: declared >> (8 * UInt32(k))) }
            assertFormatError(truncated, "mask.mat zlib stream cut at \(cut)")
        }
    }

    func testTruncatedEncodedFilesThrowExceptAtVariableBoundaries() throws {
        for compressed in [false, true] {
            let variables = sampleArrays(shape: [2, 3]).enumerated().map { (name: "v\($0.offset)", array: $0.element) }
            let bytes = MATFile.encode(variables, compressed: compressed)
            // Offsets where a whole number of variables ends.
            var boundaries = Set<Int>()
            var position = 128
            for v in variables {
                position += MATFile.encode([v], compressed: compressed).count - 128
                boundaries.insert(position)
            }
            for cut in 0 ..< bytes.count {
                let truncated = Array(bytes.prefix(cut))
                if boundaries.contains(cut) {
                    let mat = try MATFile.decode(truncated)
                    XCTAssertEqual(mat.arrays.count, variables.count - boundaries.filter { $0 > cut }.count)
                } else {
                    assertFormatError(truncated, "encoded (compressed=\(compressed)) cut at \(cut)")
                }
            }
        }
    }

    func testRandomByteFlipsNeverCrash() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        let plain = mixedFile(bigEndian: false)
        let bigEndian = mixedFile(bigEndian: true)
        let encoded = MATFile.encode(sampleArrays(shape: [3, 2, 2]).enumerated().map { (name: "v\($0.offset)", array: $0.element) },
                                     compressed: true)
        let real = Array(try SharedData.bytes("data/color/nerf_bayer_hotdog.mat").prefix(4096))
        let limits = DecodeLimits(maxElements: 1 << 20, maxInflatedBytes: 4 << 20)
        var decoded = 0, refused = 0
        for (corpus, count) in [(plain, 300), (bigEndian, 100), (encoded, 150), (real, 50)] {
            for _ in 0 ..< count {
                var bytes = corpus
                for _ in 0 ..< 1 + next() % 4 {
                    let i = next() % bytes.count
                    switch next() % 3 {
                    case 0: bytes[i] ^= UInt8(1 << (next() % 8))
                    case 1: bytes[i] = UInt8(truncatingIfNeeded: next())
                    default: bytes[i] = [0x00, 0xFF, 0x7F, 0x80][next() % 4]
                    }
                }
                if decodeOrFormatError(bytes, limits: limits, "mutation") != nil { decoded += 1 } else { refused += 1 }
            }
        }
        XCTAssertEqual(decoded + refused, 600)
        XCTAssertGreaterThan(refused, 0)
        XCTAssertGreaterThan(decoded, 0)
    }
}
