import Foundation
import XCTest
import Formats
import SCICore
import TestSupport


/// Runs `decode`; passes when it succeeds or throws a FormatError with a message. Any other
/// error fails the test (a crash fails the whole run).
private func expectDecodesOrFormatError(_ input: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line,
                                        _ decode: ([UInt8]) throws -> Void) {
    do {
        try decode(input)
    } catch let error as FormatError {
        XCTAssertFalse(error.message.isEmpty, what, file: file, line: line)
    } catch {
        XCTFail("\(what): unexpected error type \(error)", file: file, line: line)
    }
}

/// Asserts that `body` throws a FormatError whose description contains every fragment.
private func expectFormatError(_ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a FormatError", file: file, line: line)
    } catch let error as FormatError {
        XCTAssertEqual(error.format, "npy", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "'\(error.description)' lacks '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// A .npy file with a hand-written header (padded like numpy's, unless `pad` is false).
private func npyFile(_ header: String, _ data: [UInt8], version: UInt8 = 1, pad: Bool = true) -> [UInt8] {
    var text = Array(header.utf8)
    let prefix = 6 + 2 + (version == 1 ? 2 : 4)
    if pad {
        text += [UInt8](repeating: 0x20, count: 63 - (prefix + text.count) % 64)
        text.append(0x0A)
    }
    var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
    if version == 1 { out.appendLE(UInt16(text.count)) } else { out.appendLE(UInt32(text.count)) }
    return out + text + data
}

private func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var out = [UInt8]()
    for v in values { out.appendLE(v) }
    return out
}

private func be<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var out = [UInt8]()
    for v in values { out.appendBE(v) }
    return out
}

final class NPYTests: XCTestCase {
    // MARK: Fixtures

    func testEveryFixtureNPYDecodesWithTheShapeInItsMetaJSON() throws {
        let root = try SharedData.url("fixtures")
        let files = try XCTUnwrap(FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil))
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "npy" }
        XCTAssertGreaterThanOrEqual(files.count, 40)
        var checked = 0
        for url in files {
            let metaURL = url.deletingLastPathComponent().appendingPathComponent("meta.json")
            guard FileManager.default.fileExists(atPath: metaURL.path) else {
                try checkAgainstCasesJSON(url)
                continue
            }
            checked += 1
            let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: metaURL)) as? [String: Any])
            let arrays = try XCTUnwrap(meta["arrays"] as? [String: Any])
            let info = try XCTUnwrap(arrays[url.lastPathComponent] as? [String: Any], "\(url.path) missing from meta.json")
            let shape = try XCTUnwrap(info["shape"] as? [Any]).map { ($0 as! NSNumber).intValue }
            let dtype = try XCTUnwrap(info["dtype"] as? String)
            let array = try NPY.decode([UInt8](Data(contentsOf: url)))
            XCTAssertEqual(array.shape, shape, url.path)
            XCTAssertEqual(array.elementTypeName, dtype, url.path)
        }
        XCTAssertGreaterThanOrEqual(checked, 40)
    }

    /// Fixture folders without meta.json (ffdnet/) describe their cases in cases.json:
    /// `<case>_input.npy` and `<case>_output.npy` have the case's shape; every file is float32.
    func checkAgainstCasesJSON(_ url: URL) throws {
        let array = try NPY.decode([UInt8](Data(contentsOf: url)))
        XCTAssertEqual(array.elementTypeName, "float32", url.path)
        let casesURL = url.deletingLastPathComponent().appendingPathComponent("cases.json")
        guard let data = try? Data(contentsOf: casesURL),
              let cases = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["cases"] as? [String: Any] else {
            return XCTFail("\(url.path): its folder has neither meta.json nor cases.json")
        }
        let stem = url.deletingPathExtension().lastPathComponent
        for suffix in ["_input", "_output"] where stem.hasSuffix(suffix) {
            let name = String(stem.dropLast(suffix.count))
            let info = try XCTUnwrap(cases[name] as? [String: Any], "\(url.path) has no case '\(name)' in cases.json")
            let shape = try XCTUnwrap(info["shape"] as? [Any]).map { ($0 as! NSNumber).intValue }
            XCTAssertEqual(array.shape, shape, url.path)
        }
    }

    func testFixtureElementValuesMatchNumpy() throws {
        // Values printed by numpy 2.4 (np.load(...)[index]).
        let x = try NPY.decode(SharedData.bytes("fixtures/revsci_cacti_nb2/input_x.npy"))
        XCTAssertEqual(x.shape, [1, 1, 8, 32, 32])
        guard case .float32(let xv) = x.storage else { return XCTFail("expected float32") }
        XCTAssertEqual(xv[0], 1.043116)                              // x[0,0,0,0,0]
        XCTAssertEqual(xv[7 * 1024 + 31 * 32 + 31], 0.4493617)       // x[0,0,7,31,31]
        XCTAssertEqual(xv[3 * 1024 + 10 * 32 + 17], 1.0957643)       // x[0,0,3,10,17]
        XCTAssertEqual(xv[1000], 0.39299488)                         // x.flatten()[1000]

        let y = try NPY.decode(SharedData.bytes("fixtures/revsci_cacti_nb2/output_float64.npy"))
        XCTAssertEqual(y.shape, [1, 8, 32, 32])
        guard case .float64(let yv) = y.storage else { return XCTFail("expected float64") }
        XCTAssertEqual(yv[0], 0.035162944557960214)                  // y[0,0,0,0]
        XCTAssertEqual(yv[7 * 1024 + 31 * 32 + 31], 0.010919079410119763) // y[0,7,31,31]
        XCTAssertEqual(yv[2 * 1024 + 5 * 32 + 9], 0.020291081649504567)   // y[0,2,5,9]

        let gt = try NPY.decode(SharedData.bytes("fixtures/metrics/gt.npy"))
        XCTAssertEqual(gt.shape, [8, 256, 256])
        let g = gt.floats()
        XCTAssertEqual(g[3 * 65536 + 100 * 256 + 200], 0.5529412)    // gt[3,100,200]
        XCTAssertEqual(g[0], 0.2784314)                              // gt[0,0,0]
        XCTAssertEqual(g[8 * 65536 - 1], 0.70980394)                 // gt[7,255,255]
    }

    // MARK: Writing

    func testEncodeMatchesNumpyByteForByte() throws {
        // base64 of np.save(np.arange(6, dtype='<i4').reshape(2, 3)), numpy 2.4.
        let numpy = "k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAQAAAAIAAAADAAAABAAAAAUAAAA="
        let expected = [UInt8](try XCTUnwrap(Data(base64Encoded: numpy)))
        let array = NumericArray(shape: [2, 3], storage: .int32([0, 1, 2, 3, 4, 5]))
        XCTAssertEqual(NPY.encode(array), expected)
        XCTAssertEqual(try NPY.decode(expected), array)
    }

    func testRoundTripEveryDtypeAndShape() throws {
        let storages: [NumericArray.Storage] = [
            .float32([0, -1.5, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude]),
            .float64([0, -1.5, .infinity, .leastNormalMagnitude / 4, .pi, -.greatestFiniteMagnitude]),
            .uint8([0, 1, 127, 128, 254, 255]),
            .int8([0, -1, 127, -128, 5, -5]),
            .uint16([0, 1, 0x1234, 0x8000, 0xFFFE, 0xFFFF]),
            .int16([0, -1, .max, .min, 0x1234, -0x1234]),
            .uint32([0, 1, 0x1234_5678, 0x8000_0000, 0xFFFF_FFFE, .max]),
            .int32([0, -1, .max, .min, 0x1234_5678, -7]),
            .uint64([0, 1, 0x0123_4567_89AB_CDEF, 1 << 63, .max - 1, .max]),
            .int64([0, -1, .max, .min, 0x0123_4567_89AB_CDEF, -7]),
            .bool([true, false, false, true, true, true]),
        ]
        for storage in storages {
            for shape in [[6], [2, 3], [3, 2, 1], [1, 1, 1, 1, 6]] {
                let array = NumericArray(shape: shape, storage: storage)
                let bytes = NPY.encode(array)
                let headerEnd = 10 + Int(bytes[8]) + Int(bytes[9]) << 8
                XCTAssertEqual(headerEnd % 64, 0, "data must be 64-byte aligned")
                XCTAssertEqual(try NPY.decode(bytes), array, "\(storage.typeName) \(shape)")
            }
        }
        // NaN payloads survive bit for bit.
        let nan = NumericArray(shape: [2], storage: .float32([Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFF80_0001)]))
        guard case .float32(let back) = try NPY.decode(NPY.encode(nan)).storage else { return XCTFail() }
        XCTAssertEqual(back.map(\.bitPattern), [0x7FC0_1234, 0xFF80_0001])
        // Scalars, empty arrays, zero-sized axes.
        for array in [NumericArray(shape: [], storage: .float64([2.5])),
                      NumericArray(shape: [0], storage: .float32([])),
                      NumericArray(shape: [2, 0, 3], storage: .int16([]))] {
            XCTAssertEqual(try NPY.decode(NPY.encode(array)), array)
        }
    }

    func testLongHeaderSwitchesToVersion2() throws {
        // "1, " per dimension: 22000 dimensions need more than 65535 header bytes.
        let limits = DecodeLimits(maxRank: 30_000)
        let shape = [Int](repeating: 1, count: 22_000)
        let array = NumericArray(shape: shape, storage: .uint8([7]))
        let bytes = NPY.encode(array)
        XCTAssertEqual(Array(bytes[6 ..< 8]), [2, 0])
        let decoded = try NPY.decode(bytes, limits: limits)
        XCTAssertEqual(decoded, array)
    }

    // MARK: Hand-written headers

    func testByteOrders() throws {
        let f4 = try NPY.decode(npyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", be([Float(1.5).bitPattern, Float(-2.25).bitPattern])))
        XCTAssertEqual(f4, NumericArray(shape: [2], storage: .float32([1.5, -2.25])))
        let f8 = try NPY.decode(npyFile("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", be([Double(-0.1).bitPattern])))
        XCTAssertEqual(f8, NumericArray(shape: [1], storage: .float64([-0.1])))
        let i2 = try NPY.decode(npyFile("{'descr': '>i2', 'fortran_order': False, 'shape': (3,), }", be([Int16(-2), 0x1234, .min])))
        XCTAssertEqual(i2, NumericArray(shape: [3], storage: .int16([-2, 0x1234, .min])))
        let u2 = try NPY.decode(npyFile("{'descr': '>u2', 'fortran_order': False, 'shape': (1,), }", [0x12, 0x34]))
        XCTAssertEqual(u2, NumericArray(shape: [1], storage: .uint16([0x1234])))
        let u4 = try NPY.decode(npyFile("{'descr': '>u4', 'fortran_order': False, 'shape': (1,), }", [0x12, 0x34, 0x56, 0x78]))
        XCTAssertEqual(u4, NumericArray(shape: [1], storage: .uint32([0x1234_5678])))
        let i4 = try NPY.decode(npyFile("{'descr': '=i4', 'fortran_order': False, 'shape': (2,), }", le([Int32(-3), 9])))
        XCTAssertEqual(i4, NumericArray(shape: [2], storage: .int32([-3, 9])))
        let u8 = try NPY.decode(npyFile("{'descr': '>u8', 'fortran_order': False, 'shape': (1,), }", [1, 2, 3, 4, 5, 6, 7, 8]))
        XCTAssertEqual(u8, NumericArray(shape: [1], storage: .uint64([0x0102_0304_0506_0708])))
        let i8 = try NPY.decode(npyFile("{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", be([Int64(-5)])))
        XCTAssertEqual(i8, NumericArray(shape: [1], storage: .int64([-5])))
        let u1 = try NPY.decode(npyFile("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", [0, 255]))
        XCTAssertEqual(u1, NumericArray(shape: [2], storage: .uint8([0, 255])))
        let i1 = try NPY.decode(npyFile("{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", [0x80, 0x7F]))
        XCTAssertEqual(i1, NumericArray(shape: [2], storage: .int8([-128, 127])))
        let b1 = try NPY.decode(npyFile("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", [1, 0, 1]))
        XCTAssertEqual(b1, NumericArray(shape: [3], storage: .bool([true, false, true])))
        // Half precision is widened to float32.
        let f2 = try NPY.decode(npyFile("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", le([UInt16(0x3C00), 0xC100])))
        XCTAssertEqual(f2, NumericArray(shape: [2], storage: .float32([1, -2.5])))
        // Double quotes, no trailing comma, other key order, Python 2 longs, extra whitespace.
        let odd = try NPY.decode(npyFile("{ \"shape\" : ( 2L , 1 ) ,\"fortran_order\":False,'descr':\"<u2\"}", le([UInt16(1), 2])))
        XCTAssertEqual(odd, NumericArray(shape: [2, 1], storage: .uint16([1, 2])))
        // Unpadded header (older writers).
        let bare = try NPY.decode(npyFile("{'descr': '<i2', 'fortran_order': False, 'shape': (), }", le([Int16(-9)]), pad: false))
        XCTAssertEqual(bare, NumericArray(shape: [], storage: .int16([-9])))
    }

    func testFortranOrderIsConvertedToCOrder() throws {
        let two = try NPY.decode(npyFile("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", le([Int32(1), 4, 2, 5, 3, 6])))
        XCTAssertEqual(two, NumericArray(shape: [2, 3], storage: .int32([1, 2, 3, 4, 5, 6])))
        // (2, 3, 4): element (i, j, k) = 100 i + 10 j + k, stored with i fastest.
        var fortran = [Double]()
        for k in 0 ..< 4 { for j in 0 ..< 3 { for i in 0 ..< 2 { fortran.append(Double(100 * i + 10 * j + k)) } } }
        var c = [Double]()
        for i in 0 ..< 2 { for j in 0 ..< 3 { for k in 0 ..< 4 { c.append(Double(100 * i + 10 * j + k)) } } }
        let three = try NPY.decode(npyFile("{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3, 4), }", be(fortran.map(\.bitPattern))))
        XCTAssertEqual(three, NumericArray(shape: [2, 3, 4], storage: .float64(c)))
        // 1-D and scalar Fortran arrays are the same as C ones.
        let one = try NPY.decode(npyFile("{'descr': '|b1', 'fortran_order': True, 'shape': (2,), }", [0, 1]))
        XCTAssertEqual(one, NumericArray(shape: [2], storage: .bool([false, true])))
    }

    func testVersions2And3() throws {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
        let data = le([Float(1), 2, 3, 4].map(\.bitPattern))
        let expected = NumericArray(shape: [2, 2], float32: [1, 2, 3, 4])
        XCTAssertEqual(try NPY.decode(npyFile(header, data, version: 2)), expected)
        XCTAssertEqual(try NPY.decode(npyFile(header, data, version: 3)), expected)
        // 3.0 headers are UTF-8: a stray invalid byte is reported as such.
        var bad = npyFile(header, data, version: 3)
        bad[12 + header.utf8.count + 1] = 0xFF
        expectFormatError(["UTF-8"]) { _ = try NPY.decode(bad) }
        // Unknown versions.
        var v4 = npyFile(header, data)
        v4[6] = 4
        expectFormatError(["version 4.0"]) { _ = try NPY.decode(v4) }
        var v11 = npyFile(header, data)
        v11[7] = 1
        expectFormatError(["version 1.1"]) { _ = try NPY.decode(v11) }
    }

    // MARK: Rejections

    func testUnsupportedDtypesAreNamed() {
        let cases: [(String, String)] = [
            ("'|O'", "'|O'"), ("'<c8'", "'<c8'"), ("'<U10'", "'<U10'"), ("'<M8[ns]'", "'<M8[ns]'"),
            ("'<f16'", "'<f16'"), ("'|V8'", "'|V8'"), ("'float32'", "'float32'"),
        ]
        for (descr, named) in cases {
            let file = npyFile("{'descr': \(descr), 'fortran_order': False, 'shape': (1,), }", [UInt8](repeating: 0, count: 16))
            expectFormatError(["unsupported dtype", named, "f4, f8, u1, i1, u2, i2, u4, i4, u8, i8, b1"]) { _ = try NPY.decode(file) }
        }
        let structured = npyFile("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", [UInt8](repeating: 0, count: 8))
        expectFormatError(["structured dtype", "('a', '<f4')", "f4"]) { _ = try NPY.decode(structured) }
    }

    func testMalformedHeadersAreRejected() {
        let data = [UInt8](repeating: 0, count: 8)
        let headers: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "unexpected key 'extra'"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "appears twice"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "'fortran_order' must be True or False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "'shape' must be a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", "trailing comma"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}", "decimal integers"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': ('2',)}", "must hold integers"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", "integer too large"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", "negative dimension"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,)}", "more than the"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", "unexpected text after the dict"),
            ("{'descr': 'a\\'b', 'fortran_order': False, 'shape': (2,)}", "escape"),
            ("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}", "unexpected character"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "expected '}'"),
            ("('descr', '<f4')", "dict literal"),
            ("", "dict literal"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': " + String(repeating: "(", count: 5000), "nested too deeply"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,)}", "at most 8"),
        ]
        for (header, fragment) in headers {
            expectFormatError([fragment]) { _ = try NPY.decode(npyFile(header, data)) }
        }
    }

    func testDataLengthMustMatch() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
        expectFormatError(["truncated", "12 data bytes", "only 11"]) { _ = try NPY.decode(npyFile(header, [UInt8](repeating: 0, count: 11))) }
        expectFormatError(["1 unexpected bytes"]) { _ = try NPY.decode(npyFile(header, [UInt8](repeating: 0, count: 13))) }
        expectFormatError(["empty input"]) { _ = try NPY.decode([]) }
        expectFormatError(["magic"]) { _ = try NPY.decode(Array("PK\u{3}\u{4} not numpy".utf8)) }
        expectFormatError(["truncated"]) { _ = try NPY.decode([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1]) }
        // A version 2.0 header length of 4 GiB - 1 in a small file.
        var huge: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0xFF, 0xFF, 0xFF, 0xFF]
        huge += Array("{'descr': '<f4'}".utf8)
        expectFormatError(["truncated", "header"]) { _ = try NPY.decode(huge) }
        // A shape of 2**40 elements is refused before anything is allocated.
        let big = npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", [])
        expectFormatError(["1099511627776"]) { _ = try NPY.decode(big) }
        let product = npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (65536, 65536, 65536, 65536, 65536), }", [])
        expectFormatError(["more than the"]) { _ = try NPY.decode(product) }
        // Limits apply.
        let small = npyFile("{'descr': '|u1', 'fortran_order': False, 'shape': (10,), }", [UInt8](repeating: 1, count: 10))
        expectFormatError(["more than the 9"]) { _ = try NPY.decode(small, limits: DecodeLimits(maxElements: 9)) }
    }

    // MARK: Hostile corpus

    func testTruncationsAndSeededCorruptionNeverCrash() throws {
        let samples: [[UInt8]] = [
            NPY.encode(NumericArray(shape: [3, 4], float32: (0 ..< 12).map(Float.init))),
            npyFile("{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }", be((0 ..< 6).map { Double($0).bitPattern })),
            npyFile("{'descr': '|b1', 'fortran_order': False, 'shape': (5,), }", [1, 0, 1, 0, 1], version: 3),
            NPY.encode(NumericArray(shape: [], storage: .int64([-1]))),
        ]
        for sample in samples {
            XCTAssertNoThrow(try NPY.decode(sample))
            // Every strict prefix is invalid (the data length must match exactly).
            for length in 0 ..< sample.count {
                expectFormatError { _ = try NPY.decode(Array(sample[0 ..< length])) }
            }
        }
        var rng = SeededGenerator(seed: 0x5EED_0001)
        for round in 0 ..< 300 {
            var mutated = samples[round % samples.count]
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
                let index = Int.random(in: 0 ..< min(mutated.count, 140), using: &rng) // mostly the header
                switch Int.random(in: 0 ..< 4, using: &rng) {
                case 0: mutated[index] = UInt8.random(in: 0 ... 255, using: &rng)
                case 1: mutated[index] ^= 1 << UInt8.random(in: 0 ..< 8, using: &rng)
                case 2: mutated[index] = Array("(),:'{}[]0123456789LTF-\" ".utf8).randomElement(using: &rng)!
                default: mutated.insert(UInt8.random(in: 0 ... 255, using: &rng), at: index)
                }
            }
            expectDecodesOrFormatError(mutated, "round \(round)") { _ = try NPY.decode($0) }
        }
    }
}
