import Foundation
import XCTest
import Formats
import SCICore
import TestSupport


/// Asserts that `body` throws a safetensors FormatError whose description contains every fragment.
private func expectFormatError(_ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a FormatError", file: file, line: line)
    } catch let error as FormatError {
        XCTAssertEqual(error.format, "safetensors", file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "'\(error.description)' lacks '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// A file with a hand-written header (not padded) and buffer.
private func file(_ header: String, _ buffer: [UInt8]) -> [UInt8] {
    var out = [UInt8]()
    out.appendLE(UInt64(header.utf8.count))
    return out + Array(header.utf8) + buffer
}

private func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var out = [UInt8]()
    for v in values { out.appendLE(v) }
    return out
}

final class SafetensorsTests: XCTestCase {
    // MARK: Fixtures

    func testEveryFixtureDecodesWithTheNamesAndShapesOfItsMetaJSON() throws {
        let root = try SharedData.url("fixtures")
        let files = try XCTUnwrap(FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil))
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "safetensors" }
        XCTAssertEqual(files.count, 7)
        for url in files {
            let decoded = try SafetensorsFile.decode([UInt8](Data(contentsOf: url)))
            let metaURL = url.deletingLastPathComponent().appendingPathComponent("meta.json")
            let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: metaURL)) as? [String: Any])
            let weights = try XCTUnwrap(meta["weights"] as? [String: Any])
            XCTAssertTrue([32, 48].contains(decoded.tensors.count), url.path)
            XCTAssertEqual(Set(decoded.tensors.map(\.name)), Set(weights.keys), url.path)
            for (name, array) in decoded.tensors {
                let shape = try XCTUnwrap(weights[name] as? [Any]).map { ($0 as! NSNumber).intValue }
                XCTAssertEqual(array.shape, shape, "\(url.lastPathComponent) \(name)")
                XCTAssertEqual(array.elementTypeName, "float32")
            }
            XCTAssertFalse(decoded.metadata.isEmpty)
        }
    }

    func testFixtureValuesOrderAndMetadata() throws {
        let weights = try SafetensorsFile.decode(SharedData.bytes("fixtures/revsci_cacti_nb2/revsci_nb2.safetensors"))
        // Order of data offsets (the Python writer sorts by name): bias before weight.
        XCTAssertEqual(weights.tensors.prefix(4).map(\.name), ["conv1.0.bias", "conv1.0.weight", "conv1.2.bias", "conv1.2.weight"])
        XCTAssertEqual(weights.tensors.last?.name, "layers.1.g1.2.weight")
        XCTAssertEqual(weights.metadata, ["dtype": "float32", "arch": "RevSCI re_3dcnn1", "num_block": "2"])
        // Values read with numpy from the raw buffer.
        let bias = try XCTUnwrap(weights.tensor("conv1.0.bias")).floats()
        XCTAssertEqual(Array(bias.prefix(3)), [0.049613625, 0.016022917, 0.013649987])
        let w = try XCTUnwrap(weights.tensor("conv1.0.weight"))
        XCTAssertEqual(w.shape, [16, 1, 5, 5, 5])
        XCTAssertEqual(w.floats()[15 * 125 + 4 * 25 + 4 * 5 + 4], 0.06738968)  // w[15,0,4,4,4]
        XCTAssertEqual(w.floats()[3 * 125 + 1 * 25 + 2 * 5 + 3], 0.0036956957) // w[3,0,1,2,3]
        XCTAssertNil(weights.tensor("nope"))

        let grads = try SafetensorsFile.decode(SharedData.bytes("fixtures/revsci_cacti_nb2/grads_mse_nb2.safetensors"))
        XCTAssertEqual(grads.metadata["loss"], "0.30859774351119995")
        XCTAssertEqual(grads.tensors.map(\.name), weights.tensors.map(\.name))
        let g2 = try SafetensorsFile.decode(SharedData.bytes("fixtures/revsci_paper_g2_nb2/grads.safetensors"))
        XCTAssertEqual(g2.metadata["loss"], "0.31612786650657654")
        let g4 = try SafetensorsFile.decode(SharedData.bytes("fixtures/revsci_paper_g4_nb2/grads.safetensors"))
        XCTAssertEqual(g4.metadata["loss"], "0.36187058687210083")
        XCTAssertEqual(g4.tensors.count, 48)
    }

    // MARK: 16-bit floats

    func testFloat16KnownBitPatterns() throws {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x3C00, 1), (0xC000, -2), (0x3555, 0.333251953125), (0x7BFF, 65504),
            (0x0400, 0x1p-14),                // smallest normal
            (0x03FF, 0x1.ff8p-15),            // largest subnormal, 1023 * 2^-24
            (0x0001, 0x1p-24),                // smallest subnormal
            (0x8001, -0x1p-24), (0x0200, 0x1p-15),
            (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        for (bits, value) in cases {
            XCTAssertEqual(HalfFloat.float16ToFloat(bits), value, "0x\(String(bits, radix: 16))")
        }
        XCTAssertEqual(HalfFloat.float16ToFloat(0x8000).bitPattern, 0x8000_0000) // -0
        XCTAssertTrue(HalfFloat.float16ToFloat(0x7E00).isNaN)
        XCTAssertTrue(HalfFloat.float16ToFloat(0x7C01).isNaN)                    // signalling NaN stays NaN
        XCTAssertEqual(HalfFloat.float16ToFloat(0xFE01).bitPattern, 0xFFC0_2000) // payload kept
        // Every finite value against the definition: (-1)^s * 2^(e-15) * (1 + m/1024), or
        // 2^-14 * m/1024 for subnormals.
        for bits in UInt16(0) ... UInt16.max {
            let e = Int((bits >> 10) & 0x1F), m = Double(bits & 0x3FF)
            guard e != 0x1F else { continue }
            let magnitude = e == 0 ? m * 0x1p-24 : (1 + m / 1024) * pow(2, Double(e - 15))
            let expected = Float(bits & 0x8000 != 0 ? -magnitude : magnitude)
            XCTAssertEqual(HalfFloat.float16ToFloat(bits).bitPattern, expected.bitPattern, "0x\(String(bits, radix: 16))")
        }
    }

    func testBFloat16KnownBitPatterns() {
        let cases: [(UInt16, Float)] = [
            (0x3F80, 1), (0xC040, -3), (0x4049, 3.140625), (0x7F7F, 0x1.fep127), (0x0080, 0x1p-126),
            (0x0001, 0x1p-133), (0x7F80, .infinity), (0xFF80, -.infinity), (0x0000, 0),
        ]
        for (bits, value) in cases {
            XCTAssertEqual(HalfFloat.bfloat16ToFloat(bits), value, "0x\(String(bits, radix: 16))")
        }
        XCTAssertEqual(HalfFloat.bfloat16ToFloat(0x8000).bitPattern, 0x8000_0000)
        XCTAssertTrue(HalfFloat.bfloat16ToFloat(0x7FC0).isNaN)
    }

    func testDecodesHalfPrecisionAndIntegerTensors() throws {
        let header = """
        {"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},\
        "b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},\
        "i":{"dtype":"I16","shape":[1],"data_offsets":[14,16]},\
        "u":{"dtype":"U8","shape":[2],"data_offsets":[16,18]},\
        "t":{"dtype":"BOOL","shape":[2],"data_offsets":[18,20]},\
        "z":{"dtype":"F64","shape":[0,3],"data_offsets":[20,20]},\
        "s":{"dtype":"I64","shape":[],"data_offsets":[20,28]},\
        "__metadata__":{"k":"v"}}
        """
        var buffer = le([UInt16(0x3C00), 0xC000, 0x0001, 0x7C00])
        buffer += le([UInt16(0x3F80), 0xC040, 0x0001])
        buffer += le([Int16(-300)])
        buffer += [7, 255, 1, 0]
        buffer += le([Int64(-5)])
        let decoded = try SafetensorsFile.decode(file(header, buffer))
        XCTAssertEqual(decoded.tensors.map(\.name), ["h", "b", "i", "u", "t", "z", "s"])
        XCTAssertEqual(decoded.tensor("h"), NumericArray(shape: [2, 2], float32: [1, -2, 0x1p-24, .infinity]))
        XCTAssertEqual(decoded.tensor("b"), NumericArray(shape: [3], float32: [1, -3, 0x1p-133]))
        XCTAssertEqual(decoded.tensor("i"), NumericArray(shape: [1], storage: .int16([-300])))
        XCTAssertEqual(decoded.tensor("u"), NumericArray(shape: [2], storage: .uint8([7, 255])))
        XCTAssertEqual(decoded.tensor("t"), NumericArray(shape: [2], storage: .bool([true, false])))
        XCTAssertEqual(decoded.tensor("z"), NumericArray(shape: [0, 3], storage: .float64([])))
        XCTAssertEqual(decoded.tensor("s"), NumericArray(shape: [], storage: .int64([-5])))
        XCTAssertEqual(decoded.metadata, ["k": "v"])
    }

    // MARK: Writing

    func testRoundTripEveryWrittenDtype() throws {
        let tensors: [(name: String, array: NumericArray)] = [
            ("z.f32", NumericArray(shape: [2, 3], float32: [0, 1, -2, .infinity, .leastNonzeroMagnitude, 3.25])),
            ("a.f64", NumericArray(shape: [2], storage: .float64([.pi, -0.0]))),
            ("u8", NumericArray(shape: [3], storage: .uint8([0, 128, 255]))),
            ("i8", NumericArray(shape: [2], storage: .int8([-128, 127]))),
            ("u16", NumericArray(shape: [1], storage: .uint16([0xBEEF]))),
            ("i16", NumericArray(shape: [1], storage: .int16([-2]))),
            ("u32", NumericArray(shape: [1], storage: .uint32([0xDEAD_BEEF]))),
            ("i32", NumericArray(shape: [2], storage: .int32([.min, .max]))),
            ("u64", NumericArray(shape: [1], storage: .uint64([.max]))),
            ("i64", NumericArray(shape: [1, 1], storage: .int64([.min]))),
            ("bool", NumericArray(shape: [3], storage: .bool([true, false, true]))),
            ("empty", NumericArray(shape: [0], storage: .float32([]))),
            ("scalar", NumericArray(shape: [], storage: .float64([7]))),
            ("quote\"back\\slash\nnewline ü", NumericArray(shape: [1], float32: [1])),
        ]
        let metadata = ["zeta": "last", "alpha": "first \"quoted\"", "mid": "ü\t"]
        let bytes = SafetensorsFile.encode(tensors, metadata: metadata)
        XCTAssertEqual(SafetensorsFile.encode(tensors, metadata: metadata), bytes, "deterministic")
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        XCTAssertEqual(headerLength % 8, 0)
        let header = String(decoding: bytes[8 ..< 8 + headerLength], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix(#"{"__metadata__":{"alpha":"first \"quoted\"","mid":"ü\t","zeta":"last"},"z.f32":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#), header)
        let decoded = try SafetensorsFile.decode(bytes)
        XCTAssertEqual(decoded.tensors.map(\.name), tensors.map(\.name))
        XCTAssertEqual(decoded.tensors.map(\.array), tensors.map(\.array))
        XCTAssertEqual(decoded.metadata, metadata)
        // No metadata, no tensors.
        XCTAssertEqual(try SafetensorsFile.decode(SafetensorsFile.encode([])).tensors.count, 0)
    }

    // MARK: Hostile input

    func testMalformedFilesAreRejected() {
        let tensor = #""t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
        let eight = [UInt8](repeating: 0, count: 8)
        expectFormatError(["empty input"]) { _ = try SafetensorsFile.decode([]) }
        expectFormatError(["truncated"]) { _ = try SafetensorsFile.decode([1, 0, 0]) }
        var huge = [UInt8](); huge.appendLE(UInt64(1) << 63); huge += Array("{}".utf8)
        expectFormatError(["header length 9223372036854775808"]) { _ = try SafetensorsFile.decode(huge) }
        var longer = [UInt8](); longer.appendLE(UInt64(100)); longer += Array("{}".utf8)
        expectFormatError(["truncated", "100"]) { _ = try SafetensorsFile.decode(longer) }
        var over = [UInt8](); over.appendLE(UInt64(100_000_001))
        expectFormatError(["exceeds"]) { _ = try SafetensorsFile.decode(over) }

        let cases: [(String, [UInt8], [String])] = [
            ("[1, 2]", [], ["starting with '{'"]),
            ("{\"t\": }", [], ["not valid JSON"]),
            ("{\(tensor)}", Array(eight.prefix(4)), ["outside the 4-byte buffer"]),
            ("{\(tensor)}", eight + [0], ["unindexed trailing bytes"]),
            (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, eight, ["data_offsets [8, 0]"]),
            (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, eight, ["outside"]),
            (#"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, eight, ["needs 12 bytes"]),
            (#"{"t":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,8]}}"#, eight, ["1099511627776", "more than the"]),
            (#"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, eight, ["negative dimension"]),
            (#"{"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, eight, ["'shape' list of integers"]),
            (#"{"t":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}}"#, eight, ["'shape' list of integers"]),
            (#"{"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, eight, ["'shape' list of integers"]),
            (#"{"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#, eight, ["'shape' list of integers"]),
            (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}"#, eight, ["two integers"]),
            (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,1e30]}}"#, eight, ["two integers"]),
            (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}"#, eight, ["two integers"]),
            (#"{"t":{"dtype":"F32","shape":[2]}}"#, eight, ["data_offsets"]),
            (#"{"t":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}"#, eight, ["unsupported dtype 'F8_E4M3'", "F32, F64, F16, BF16"]),
            (#"{"t":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}"#, eight, ["string 'dtype'"]),
            (#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}"#, eight, ["unexpected field 'extra'"]),
            (#"{"t":[1]}"#, eight, ["JSON object"]),
            (#"{"__metadata__":{"k":1}}"#, [], ["'k' must be a string"]),
            (#"{"__metadata__":["k"]}"#, [], ["__metadata__ must be an object"]),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight, ["overlaps"]),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight, ["gap"]),
        ]
        for (header, buffer, fragments) in cases {
            expectFormatError(fragments) { _ = try SafetensorsFile.decode(file(header, buffer)) }
        }
        var badUTF8 = file(#"{"t\#u{e9}":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, eight)
        badUTF8[11] = 0xFF
        expectFormatError(["UTF-8"]) { _ = try SafetensorsFile.decode(badUTF8) }
    }

    func testTruncationsAndSeededCorruptionNeverCrash() throws {
        let sample = SafetensorsFile.encode([
            ("w", NumericArray(shape: [2, 3], float32: [1, 2, 3, 4, 5, 6])),
            ("b", NumericArray(shape: [3], storage: .int64([1, 2, 3]))),
        ], metadata: ["arch": "test"])
        for length in 0 ..< sample.count {
            expectFormatError { _ = try SafetensorsFile.decode(Array(sample[0 ..< length])) }
        }
        var rng = SeededGenerator(seed: 0x5AFE_7E45)
        let headerEnd = 8 + Int(sample[0]) + Int(sample[1]) << 8
        for round in 0 ..< 300 {
            var mutated = sample
            for _ in 0 ..< Int.random(in: 1 ... 3, using: &rng) {
                let index = Int.random(in: 0 ..< headerEnd, using: &rng)
                switch Int.random(in: 0 ..< 3, using: &rng) {
                case 0: mutated[index] = UInt8.random(in: 0 ... 255, using: &rng)
                case 1: mutated[index] ^= 1 << UInt8.random(in: 0 ..< 8, using: &rng)
                default: mutated[index] = Array("{}[],:\"0123456789-.e ".utf8).randomElement(using: &rng)!
                }
            }
            do {
                _ = try SafetensorsFile.decode(mutated)
            } catch let error as FormatError {
                XCTAssertFalse(error.message.isEmpty)
            } catch {
                XCTFail("round \(round): unexpected error type \(error)")
            }
        }
        // A real file's header, corrupted.
        let real = try SharedData.bytes("fixtures/revsci_color_nb2/weights.safetensors")
        for round in 0 ..< 40 {
            var mutated = real
            mutated[8 + Int.random(in: 0 ..< 2700, using: &rng)] = Array("{}[],:\"0123456789".utf8).randomElement(using: &rng)!
            do { _ = try SafetensorsFile.decode(mutated) } catch is FormatError {} catch { XCTFail("real round \(round): \(error)") }
        }
    }
}
