import Foundation
import XCTest
import Formats
import SCICore
import TestSupport


/// Asserts that `body` throws a FormatError of `format` whose description contains every fragment.
private func expectFormatError(_ format: String = "zip", _ fragments: [String] = [], file: StaticString = #filePath,
                               line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a FormatError", file: file, line: line)
    } catch let error as FormatError {
        XCTAssertEqual(error.format, format, "\(error)", file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "'\(error.description)' lacks '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Opens an archive and reads every entry; passes when that works or throws a FormatError.
private func readAllOrFormatError(_ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    do {
        let archive = try ZipArchive(bytes, limits: DecodeLimits(maxInflatedBytes: 1 << 20))
        for entry in archive.entries {
            do {
                _ = try archive.data(for: entry)
                if entry.method == 0 { _ = try archive.dataRange(for: entry) }
            } catch let error as FormatError {
                XCTAssertFalse(error.message.isEmpty, what, file: file, line: line)
            }
        }
    } catch let error as FormatError {
        XCTAssertFalse(error.message.isEmpty, what, file: file, line: line)
    } catch {
        XCTFail("\(what): unexpected error type \(error)", file: file, line: line)
    }
}

private func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
private func u32(_ b: [UInt8], _ at: Int) -> Int { u16(b, at) | u16(b, at + 2) << 16 }
private func put16(_ b: inout [UInt8], _ at: Int, _ v: Int) { b[at] = UInt8(v & 0xFF); b[at + 1] = UInt8((v >> 8) & 0xFF) }
private func put32(_ b: inout [UInt8], _ at: Int, _ v: Int) { put16(&b, at, v & 0xFFFF); put16(&b, at + 2, (v >> 16) & 0xFFFF) }

/// Offsets inside an archive written by ZipWriter (no comment, no extra fields).
private struct Layout {
    let end: Int
    let directory: Int
    var central: [Int] // offset of each central header
    init(_ b: [UInt8]) {
        end = b.count - 22
        directory = u32(b, end + 16)
        central = []
        var p = directory
        while p < end {
            central.append(p)
            p += 46 + u16(b, p + 28) + u16(b, p + 30) + u16(b, p + 32)
        }
    }
}

private let compressible = (0 ..< 10_000).map { UInt8(truncatingIfNeeded: $0 % 97 + $0 / 1000) }

private func sampleArchive() throws -> [UInt8] {
    var writer = ZipWriter()
    try writer.add(name: "stored.bin", data: Array("hello, zip".utf8), compress: false)
    try writer.add(name: "deflated.bin", data: compressible, compress: true)
    try writer.add(name: "empty", data: [], compress: true)
    return writer.finish()
}

final class ZipTests: XCTestCase {
    // MARK: PyTorch checkpoints (fixtures)

    func testPyTorchCheckpointsOpenAndListTheirEntries() throws {
        let metaData = try Data(contentsOf: SharedData.url("fixtures/checkpoints/meta.json"))
        let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: metaData) as? [String: Any])
        let files = try XCTUnwrap(meta["files"] as? [String: Any])
        var opened = 0
        for name in ["cacti_nb2_state_dict.pth", "cacti_nb2_wrapped.pth", "paper_g2_nb2_module.pth"] {
            let info = try XCTUnwrap(files[name] as? [String: Any])
            let listed = try XCTUnwrap(info["zip_entries"] as? [[Any]]).map { ($0[0] as! String, ($0[1] as! NSNumber).intValue) }
            let bytes = try SharedData.bytes("fixtures/checkpoints/" + name)
            XCTAssertEqual(bytes.count, (info["bytes"] as! NSNumber).intValue)
            let archive = try ZipArchive(bytes)
            XCTAssertEqual(archive.entries.map(\.name), listed.map(\.0), name)
            for (entry, (_, size)) in zip(archive.entries, listed) {
                XCTAssertEqual(entry.method, 0)
                XCTAssertEqual(entry.uncompressedSize, size)
                XCTAssertEqual(try archive.data(for: entry).count, size, entry.name)
                let range = try archive.dataRange(for: entry)
                XCTAssertEqual(range.count, size)
                if entry.name.contains("/data/") {
                    XCTAssertEqual(range.lowerBound % 64, 0, "PyTorch aligns tensor data to 64 bytes")
                }
            }
            let stem = String(name.dropLast(4))
            XCTAssertNotNil(archive.entry(named: stem + "/data.pkl"))
            XCTAssertNotNil(archive.entry(named: stem + "/data/0"))
            XCTAssertNil(archive.entry(named: stem + "/data/999"))
            let byteorder = try archive.data(for: XCTUnwrap(archive.entry(named: stem + "/byteorder")))
            XCTAssertEqual(String(decoding: byteorder, as: UTF8.self), "little")
            let pickle = try archive.data(for: XCTUnwrap(archive.entry(named: stem + "/data.pkl")))
            XCTAssertEqual(Array(pickle.prefix(2)), [0x80, 0x02], "pickle protocol 2")
            opened += 1
        }
        XCTAssertEqual(opened, 3)
        // The state-dict storages hold the safetensors weights: data/0 is conv1.0.weight (16*125 floats).
        let archive = try ZipArchive(SharedData.bytes("fixtures/checkpoints/cacti_nb2_state_dict.pth"))
        XCTAssertEqual(try archive.data(for: XCTUnwrap(archive.entry(named: "cacti_nb2_state_dict/data/0"))).count, 8000)
    }

    func testLegacyCheckpointIsNotAZip() throws {
        let legacy = try SharedData.bytes("fixtures/checkpoints/cacti_nb2_legacy.pth")
        expectFormatError("zip", ["not a zip archive"]) { _ = try ZipArchive(legacy) }
    }

    // MARK: Writer

    func testWriterRoundTrip() throws {
        var writer = ZipWriter()
        let big = (0 ..< 70_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try writer.add(name: "a/stored.bin", data: Array("hello".utf8), compress: false)
        try writer.add(name: "a/deflated.bin", data: compressible, compress: true)
        try writer.add(name: "noise.bin", data: big, compress: true)
        try writer.add(name: "empty-stored", data: [], compress: false)
        try writer.add(name: "empty-deflated", data: [], compress: true)
        try writer.add(name: "größe/ü.txt", data: Array("utf-8 name".utf8), compress: false)
        let bytes = writer.finish()
        XCTAssertEqual(writer.finish(), bytes, "finish is repeatable")

        let archive = try ZipArchive(bytes)
        XCTAssertEqual(archive.entries.map(\.name), ["a/stored.bin", "a/deflated.bin", "noise.bin", "empty-stored", "empty-deflated", "größe/ü.txt"])
        XCTAssertEqual(try archive.data(for: archive.entries[0]), Array("hello".utf8))
        XCTAssertEqual(try archive.data(for: archive.entries[1]), compressible)
        XCTAssertLessThan(archive.entries[1].compressedSize, compressible.count / 5)
        XCTAssertEqual(archive.entries[1].method, 8)
        XCTAssertEqual(try archive.data(for: archive.entries[2]), big)
        XCTAssertEqual(try archive.data(for: archive.entries[3]), [])
        XCTAssertEqual(try archive.data(for: archive.entries[4]), [])
        XCTAssertEqual(try archive.data(for: XCTUnwrap(archive.entry(named: "größe/ü.txt"))), Array("utf-8 name".utf8))
        XCTAssertEqual(archive.entries[0].crc32, 0x3610_A686) // CRC-32 of "hello"
        let range = try archive.dataRange(for: archive.entries[0])
        XCTAssertEqual(Array(bytes[range]), Array("hello".utf8))
        expectFormatError("zip", ["compressed"]) { _ = try archive.dataRange(for: archive.entries[1]) }

        // Same input, same bytes (fixed timestamps); the DOS date is 1980-01-01.
        var again = ZipWriter()
        try again.add(name: "x", data: [1, 2, 3], compress: true)
        var third = ZipWriter()
        try third.add(name: "x", data: [1, 2, 3], compress: true)
        XCTAssertEqual(again.finish(), third.finish())
        XCTAssertEqual(u16(again.finish(), 10), 0)          // time 00:00:00
        XCTAssertEqual(u16(again.finish(), 12), 0x0021)     // date 1980-01-01
        XCTAssertEqual(try ZipArchive(ZipWriter().finish()).entries.count, 0)
    }

    func testCommentAndZip64Records() throws {
        // An archive comment (with a decoy signature inside) before which the end record sits.
        var commented = try sampleArchive()
        let comment = Array("comment PK\u{5}\u{6} with a decoy end signature".utf8)
        put16(&commented, commented.count - 2, comment.count)
        commented += comment
        XCTAssertEqual(try ZipArchive(commented).entries.count, 3)
        var longComment = try sampleArchive()
        put16(&longComment, longComment.count - 2, 65535)
        longComment += [UInt8](repeating: 0x41, count: 65535)
        XCTAssertEqual(try ZipArchive(longComment).entries.count, 3)

        // A ZIP64 archive built by hand: saturated 32-bit fields, ZIP64 extra fields in both
        // headers, a ZIP64 end record and its locator.
        let payload = Array("zip64 payload".utf8)
        let name = Array("big/entry".utf8)
        let crc = Zlib.crc32(payload)
        var b = [UInt8]()
        b.appendLE(UInt32(0x0403_4B50)); b.appendLE(UInt16(45)); b.appendLE(UInt16(0)); b.appendLE(UInt16(0))
        b.appendLE(UInt32(0x0021_0000)); b.appendLE(crc); b.appendLE(UInt32.max); b.appendLE(UInt32.max)
        b.appendLE(UInt16(name.count)); b.appendLE(UInt16(20)); b += name
        b.appendLE(UInt16(1)); b.appendLE(UInt16(16)); b.appendLE(UInt64(payload.count)); b.appendLE(UInt64(payload.count))
        b += payload
        let directory = b.count
        b.appendLE(UInt32(0x0201_4B50)); b.appendLE(UInt16(45)); b.appendLE(UInt16(45)); b.appendLE(UInt16(0)); b.appendLE(UInt16(0))
        b.appendLE(UInt32(0x0021_0000)); b.appendLE(crc); b.appendLE(UInt32.max); b.appendLE(UInt32.max)
        b.appendLE(UInt16(name.count)); b.appendLE(UInt16(4 + 24 + 8)); b.appendLE(UInt16(0)); b.appendLE(UInt16(0))
        b.appendLE(UInt16(0)); b.appendLE(UInt32(0)); b.appendLE(UInt32.max); b += name
        b.appendLE(UInt16(0x5455)); b.appendLE(UInt16(4)); b.appendLE(UInt32(0)) // an unrelated extra field first
        b.appendLE(UInt16(1)); b.appendLE(UInt16(24)); b.appendLE(UInt64(payload.count)); b.appendLE(UInt64(payload.count)); b.appendLE(UInt64(0))
        let directorySize = b.count - directory
        let record = b.count
        b.appendLE(UInt32(0x0606_4B50)); b.appendLE(UInt64(44)); b.appendLE(UInt16(45)); b.appendLE(UInt16(45))
        b.appendLE(UInt32(0)); b.appendLE(UInt32(0)); b.appendLE(UInt64(1)); b.appendLE(UInt64(1))
        b.appendLE(UInt64(directorySize)); b.appendLE(UInt64(directory))
        b.appendLE(UInt32(0x0706_4B50)); b.appendLE(UInt32(0)); b.appendLE(UInt64(record)); b.appendLE(UInt32(1))
        b.appendLE(UInt32(0x0605_4B50)); b += [UInt8](repeating: 0xFF, count: 16); b.appendLE(UInt16(0))
        let archive = try ZipArchive(b)
        XCTAssertEqual(archive.entries.map(\.name), ["big/entry"])
        XCTAssertEqual(archive.entries[0].compressedSize, payload.count)
        XCTAssertEqual(try archive.data(for: archive.entries[0]), payload)

        // Locator pointing past the end; record with a bad signature; missing ZIP64 extra.
        var badLocator = b
        put32(&badLocator, b.count - 22 - 20 + 8, 0x7FFF_0000)
        expectFormatError("zip", ["ZIP64 end record offset"]) { _ = try ZipArchive(badLocator) }
        var badRecord = b
        badRecord[record] = 0
        expectFormatError("zip", ["no ZIP64 end-of-central-directory record"]) { _ = try ZipArchive(badRecord) }
        var noExtra = b
        put16(&noExtra, directory + 30, 8) // keep only the unrelated field
        put16(&noExtra, directory + 46 + name.count + 8, 0x5456)
        expectFormatError("zip") { _ = try ZipArchive(noExtra) }
        // Saturated end record without a locator.
        var noLocator = try sampleArchive()
        put32(&noLocator, noLocator.count - 22 + 16, 0xFFFF_FFFF)
        expectFormatError("zip", ["ZIP64"]) { _ = try ZipArchive(noLocator) }
    }

    // MARK: NPZ

    func testNPZWrittenByNumpy() throws {
        // base64 of np.savez / np.savez_compressed(a=np.arange(6, dtype='<i4').reshape(2, 3),
        // b=np.array([1.5, -2.0], dtype='>f8'), c=np.array(True)), numpy 2.4. numpy writes ZIP64
        // extra fields with saturated sizes in the local headers.
        let savez = "UEsDBC0AAAAAAAAAIQBQtE2E//////////8FABQAYS5ucHkBABAAmAAAAAAAAACYAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpNCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCAzKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAEAAAACAAAAAwAAAAQAAAAFAAAAUEsDBC0AAAAAAAAAIQBXA5Uf//////////8FABQAYi5ucHkBABAAkAAAAAAAAACQAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJz5mOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgyLCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKP/gAAAAAAADAAAAAAAAAAFBLAwQtAAAAAAAAACEAgi340///////////BQAUAGMubnB5AQAQAIEAAAAAAAAAgQAAAAAAAACTTlVNUFkBAHYAeydkZXNjcic6ICd8YjEnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgCgFQSwECLQMtAAAAAAAAACEAULRNhJgAAACYAAAABQAAAAAAAAAAAAAAgAEAAAAAYS5ucHlQSwECLQMtAAAAAAAAACEAVwOVH5AAAACQAAAABQAAAAAAAAAAAAAAgAHPAAAAYi5ucHlQSwECLQMtAAAAAAAAACEAgi3404EAAACBAAAABQAAAAAAAAAAAAAAgAGWAQAAYy5ucHlQSwUGAAAAAAMAAwCZAAAATgIAAAAA"
        let compressed = "UEsDBC0AAAAIAAAAIQBQtE2E//////////8FABQAYS5ucHkBABAAmAAAAAAAAABVAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CsaaOgq1CmQDLgYgYARiJiBmBmIWIGYFYgBQSwMELQAAAAgAAAAhAFcDlR///////////wUAFABiLm5weQEAEACQAAAAAAAAAE0AAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbpdmoa6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaRjqaOgq1ChQALvsfDGBwAEIxAABQSwMELQAAAAgAAAAhAIIt+NP//////////wUAFABjLm5weQEAEACBAAAAAAAAAEMAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgXpNkqK6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkamjoKtQoUAS5GAFBLAQItAy0AAAAIAAAAIQBQtE2EVQAAAJgAAAAFAAAAAAAAAAAAAACAAQAAAABhLm5weVBLAQItAy0AAAAIAAAAIQBXA5UfTQAAAJAAAAAFAAAAAAAAAAAAAACAAYwAAABiLm5weVBLAQItAy0AAAAIAAAAIQCCLfjTQwAAAIEAAAAFAAAAAAAAAAAAAACAARABAABjLm5weVBLBQYAAAAAAwADAJkAAACKAQAAAAA="
        for text in [savez, compressed] {
            let arrays = try NPZ.decode([UInt8](XCTUnwrap(Data(base64Encoded: text))))
            XCTAssertEqual(arrays.map(\.name), ["a", "b", "c"])
            XCTAssertEqual(arrays[0].array, NumericArray(shape: [2, 3], storage: .int32([0, 1, 2, 3, 4, 5])))
            XCTAssertEqual(arrays[1].array, NumericArray(shape: [2], storage: .float64([1.5, -2.0])))
            XCTAssertEqual(arrays[2].array, NumericArray(shape: [], storage: .bool([true])))
        }
    }

    func testNPZRoundTrip() throws {
        let arrays: [(name: String, array: NumericArray)] = [
            ("weights", NumericArray(shape: [2, 2], float32: [1, -2, 3.5, 0])),
            ("mask", NumericArray(shape: [3], storage: .bool([true, false, true]))),
            ("counts", NumericArray(shape: [], storage: .int64([42]))),
            ("empty", NumericArray(shape: [0, 4], storage: .uint16([]))),
        ]
        for compressed in [false, true] {
            let bytes = try NPZ.encode(arrays, compressed: compressed)
            let archive = try ZipArchive(bytes)
            XCTAssertEqual(archive.entries.map(\.name), ["weights.npy", "mask.npy", "counts.npy", "empty.npy"])
            XCTAssertEqual(archive.entries.map(\.method), Array(repeating: compressed ? 8 : 0, count: 4))
            let back = try NPZ.decode(bytes)
            XCTAssertEqual(back.map(\.name), arrays.map(\.name))
            XCTAssertEqual(back.map(\.array), arrays.map(\.array))
        }
        XCTAssertEqual(try NPZ.decode(try NPZ.encode([], compressed: false)).count, 0)
    }

    func testNPZRejections() throws {
        var notNPY = ZipWriter()
        try notNPY.add(name: "readme.txt", data: Array("hi".utf8), compress: false)
        expectFormatError("npz", ["readme.txt", "not a .npy"]) { _ = try NPZ.decode(notNPY.finish()) }
        var twice = ZipWriter()
        let npy = NPY.encode(NumericArray(shape: [1], float32: [1]))
        try twice.add(name: "x.npy", data: npy, compress: false)
        try twice.add(name: "x.npy", data: npy, compress: true)
        expectFormatError("npz", ["'x' appears twice"]) { _ = try NPZ.decode(twice.finish()) }
        var broken = ZipWriter()
        try broken.add(name: "bad.npy", data: Array(npy.dropLast()), compress: true)
        expectFormatError("npz", ["array 'bad'", "npy", "truncated"]) { _ = try NPZ.decode(broken.finish()) }
        expectFormatError("npz", ["not a readable zip archive"]) { _ = try NPZ.decode(npy) }
        expectFormatError("npz", ["empty input"]) { _ = try NPZ.decode([]) }
        // The deflated members share one inflation budget.
        let two = try NPZ.encode([("a", NumericArray(shape: [100], float32: .init(repeating: 0, count: 100))),
                              ("b", NumericArray(shape: [100], float32: .init(repeating: 0, count: 100)))], compressed: true)
        expectFormatError("npz", ["inflate to more than the 600 bytes"]) { _ = try NPZ.decode(two, limits: DecodeLimits(maxInflatedBytes: 600)) }
        for seed in 0 ..< 60 {
            var rng = SeededGenerator(seed: UInt64(seed) &+ 0xAB)
            var mutated = try NPZ.encode([("a", NumericArray(shape: [3], float32: [1, 2, 3]))], compressed: seed % 2 == 0)
            for _ in 0 ..< 3 { mutated[Int.random(in: 0 ..< mutated.count, using: &rng)] ^= UInt8.random(in: 1 ... 255, using: &rng) }
            do { _ = try NPZ.decode(mutated) } catch is FormatError {} catch { XCTFail("\(error)") }
        }
    }

    // MARK: Hostile archives

    func testHostileArchivesThrowFormatErrors() throws {
        let good = try sampleArchive()
        let layout = Layout(good)
        XCTAssertEqual(layout.central.count, 3)
        let deflated = layout.central[1]
        let stored = layout.central[0]

        expectFormatError("zip", ["empty input"]) { _ = try ZipArchive([]) }
        expectFormatError("zip", ["not a zip archive"]) { _ = try ZipArchive(Array("PK\u{5}\u{6}".utf8)) }

        // Central directory offset past the end; entry count beyond what the directory holds.
        var pastEnd = good
        put32(&pastEnd, layout.end + 16, 0x7FFF_FFF0)
        expectFormatError("zip", ["central directory"]) { _ = try ZipArchive(pastEnd) }
        var manyEntries = good
        put16(&manyEntries, layout.end + 8, 0xFFFE)
        put16(&manyEntries, layout.end + 10, 0xFFFE)
        expectFormatError("zip", ["cannot fit"]) { _ = try ZipArchive(manyEntries) }
        var oneMore = good
        put16(&oneMore, layout.end + 8, 4)
        put16(&oneMore, layout.end + 10, 4)
        expectFormatError("zip") { _ = try ZipArchive(oneMore) }
        var bigDirectory = good
        put32(&bigDirectory, layout.end + 12, 0x00FF_FFFF)
        expectFormatError("zip", ["central directory"]) { _ = try ZipArchive(bigDirectory) }
        var split = good
        put16(&split, layout.end + 4, 1)
        expectFormatError("zip", ["multi-disk"]) { _ = try ZipArchive(split) }

        // Local header offsets beyond the file, onto the directory, and shared by two entries.
        var farOffset = good
        put32(&farOffset, stored + 42, 0x7FFF_0000)
        expectFormatError("zip", ["beyond"]) { _ = try ZipArchive(farOffset) }
        var intoDirectory = good
        put32(&intoDirectory, stored + 42, layout.directory)
        expectFormatError("zip", ["no local header"]) { _ = try ZipArchive(intoDirectory) }
        var same = ZipWriter()
        try same.add(name: "dup", data: [1, 2, 3], compress: false)
        try same.add(name: "dup", data: [1, 2, 3], compress: false)
        var overlapping = same.finish()
        let overlapLayout = Layout(overlapping)
        put32(&overlapping, overlapLayout.central[1] + 42, 0)
        expectFormatError("zip", ["overlaps"]) { _ = try ZipArchive(overlapping) }
        // Data sizes that run into the central directory or past the end.
        var longData = good
        put32(&longData, deflated + 20, layout.directory)
        expectFormatError("zip", ["run into the central directory"]) { _ = try ZipArchive(longData) }
        var storedMismatch = good
        put32(&storedMismatch, stored + 24, 11)
        expectFormatError("zip", ["stored entry"]) { _ = try ZipArchive(storedMismatch) }

        // Names: invalid UTF-8, and a local header that names another file.
        var badName = good
        badName[stored + 46] = 0xC3
        badName[stored + 47] = 0x28
        expectFormatError("zip", ["not valid UTF-8"]) { _ = try ZipArchive(badName) }
        var otherLocalName = good
        otherLocalName[30] = UInt8(ascii: "X")
        expectFormatError("zip", ["local header names it"]) { _ = try ZipArchive(otherLocalName) }
        var badExtraLength = good
        put16(&badExtraLength, stored + 30, 200)
        expectFormatError("zip", ["runs past the end of the directory"]) { _ = try ZipArchive(badExtraLength) }

        // Entry-level problems surface when the data are read.
        var encrypted = good
        put16(&encrypted, stored + 8, 1)
        let encryptedArchive = try ZipArchive(encrypted)
        expectFormatError("zip", ["encrypted"]) { _ = try encryptedArchive.data(for: encryptedArchive.entries[0]) }
        var bzip2 = good
        put16(&bzip2, stored + 10, 12)
        let bzip2Archive = try ZipArchive(bzip2)
        expectFormatError("zip", ["method 12", "bzip2"]) { _ = try bzip2Archive.data(for: bzip2Archive.entries[0]) }
        var corrupt = good
        corrupt[30 + "stored.bin".utf8.count] ^= 0x20
        let corruptArchive = try ZipArchive(corrupt)
        expectFormatError("zip", ["CRC-32"]) { _ = try corruptArchive.data(for: corruptArchive.entries[0]) }
        expectFormatError("zip", ["CRC-32"]) { _ = try corruptArchive.dataRange(for: corruptArchive.entries[0]) }

        // A deflate entry that inflates beyond (or short of) its declared size.
        var bomb = good
        put32(&bomb, deflated + 24, 100)
        let bombArchive = try ZipArchive(bomb)
        expectFormatError("zip", ["more than 100 bytes"]) { _ = try bombArchive.data(for: bombArchive.entries[1]) }
        var short = good
        put32(&short, deflated + 24, 20_000)
        let shortArchive = try ZipArchive(short)
        expectFormatError("zip", ["inflates to 10000 bytes, not the declared 20000"]) { _ = try shortArchive.data(for: shortArchive.entries[1]) }
        let limited = try ZipArchive(good, limits: DecodeLimits(maxInflatedBytes: 5000))
        expectFormatError("zip", ["more than the 5000 accepted"]) { _ = try limited.data(for: limited.entries[1]) }
        var truncatedStream = good
        put32(&truncatedStream, deflated + 20, u32(good, deflated + 20) / 2)
        let truncatedArchive = try ZipArchive(truncatedStream)
        expectFormatError("zip") { _ = try truncatedArchive.data(for: truncatedArchive.entries[1]) }
    }

    func testTruncationsAndSeededCorruptionNeverCrash() throws {
        let good = try sampleArchive()
        for length in 0 ..< good.count {
            expectFormatError("zip") { _ = try ZipArchive(Array(good[0 ..< length])) }
        }
        var rng = SeededGenerator(seed: 0x21F_0001)
        for round in 0 ..< 300 {
            var mutated = good
            for _ in 0 ..< Int.random(in: 1 ... 3, using: &rng) {
                // Aim most changes at the headers: the data are covered by CRC-32 anyway.
                let index = Bool.random(using: &rng) ? Int.random(in: mutated.count - 200 ..< mutated.count, using: &rng)
                                                      : Int.random(in: 0 ..< mutated.count, using: &rng)
                if Bool.random(using: &rng) {
                    mutated[index] = UInt8.random(in: 0 ... 255, using: &rng)
                } else {
                    mutated[index] = [0x00, 0xFF, 0x7F, 0x80].randomElement(using: &rng)!
                }
            }
            readAllOrFormatError(mutated, "round \(round)")
        }
    }
}
