import XCTest
import SCICore
@testable import Formats

/// Helpers on the shared deterministic generator, so every run sees the same "random" data.
private typealias SeededRandom = SeededGenerator

extension SeededGenerator {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

/// Builds PNG files by hand, independently of the encoder under test: reference filters
/// written straight from the specification, zlib from `Zlib.deflate`, chunks assembled here.
private enum Build {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let t = Array(type.utf8)
        return be32(UInt32(data.count)) + t + data + be32(Zlib.crc32(t + data))
    }

    static func ihdr(width: UInt32, height: UInt32, depth: UInt8, colorType: UInt8,
                     compression: UInt8 = 0, filter: UInt8 = 0, interlace: UInt8 = 0) -> [UInt8] {
        chunk("IHDR", be32(width) + be32(height) + [depth, colorType, compression, filter, interlace])
    }

    static func paethRef(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
        if pa <= pb && pa <= pc { return a }
        if pb <= pc { return b }
        return c
    }

    /// Filters one scanline with filter type `f` (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth).
    static func filterRow(_ f: UInt8, _ cur: [UInt8], prev: [UInt8], bpp: Int) -> [UInt8] {
        var out = [UInt8]()
        for i in 0 ..< cur.count {
            let a = i >= bpp ? Int(cur[i - bpp]) : 0
            let b = Int(prev[i])
            let c = i >= bpp ? Int(prev[i - bpp]) : 0
            let predictor: Int
            switch f {
            case 0: predictor = 0
            case 1: predictor = a
            case 2: predictor = b
            case 3: predictor = (a + b) / 2
            default: predictor = paethRef(a, b, c)
            }
            out.append(UInt8((Int(cur[i]) - predictor) & 0xFF))
        }
        return out
    }

    /// The filtered, uncompressed image data: each row led by its filter byte.
    static func filtered(rows: [[UInt8]], filters: [UInt8], bpp: Int) -> [UInt8] {
        var data = [UInt8]()
        var prev = [UInt8](repeating: 0, count: rows.first?.count ?? 0)
        for (r, row) in rows.enumerated() {
            let f = filters[r % filters.count]
            data.append(f)
            data += filterRow(f, row, prev: prev, bpp: bpp)
            prev = row
        }
        return data
    }

    /// A complete PNG: signature, IHDR, `extra` chunks, the image data in IDAT chunks of at most
    /// `idatSplit` bytes, IEND.
    static func png(width: Int, height: Int, depth: UInt8, colorType: UInt8, rows: [[UInt8]],
                    filters: [UInt8], bpp: Int, extra: [[UInt8]] = [], idatSplit: Int = 1 << 20) -> [UInt8] {
        let z = Zlib.deflate(filtered(rows: rows, filters: filters, bpp: bpp)[...])
        var out = signature + ihdr(width: UInt32(width), height: UInt32(height), depth: depth, colorType: colorType)
        for c in extra { out += c }
        var start = 0
        repeat {
            let end = min(start + idatSplit, z.count)
            out += chunk("IDAT", Array(z[start ..< end]))
            start = end
        } while start < z.count
        return out + chunk("IEND", [])
    }

    /// Splits a file into its chunks as (type, data) pairs (for tests that rebuild files).
    static func chunks(_ file: [UInt8]) -> [(String, [UInt8])] {
        var result = [(String, [UInt8])]()
        var o = 8
        while o + 12 <= file.count {
            let len = Int(file[o]) << 24 | Int(file[o + 1]) << 16 | Int(file[o + 2]) << 8 | Int(file[o + 3])
            let type = String(decoding: file[o + 4 ..< o + 8], as: UTF8.self)
            result.append((type, Array(file[o + 8 ..< o + 8 + len])))
            o += 12 + len
        }
        return result
    }

    static func assemble(_ chunks: [(String, [UInt8])]) -> [UInt8] {
        chunks.reduce(signature) { $0 + chunk($1.0, $1.1) }
    }
}

final class PNGTests: XCTestCase {
    private let sizes = [(1, 1), (3, 7), (7, 3), (64, 33)]

    private func assertFormatError(_ bytes: [UInt8], limits: DecodeLimits = .default, contains needle: String? = nil,
                                   file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try PNG.decode(bytes, limits: limits)
            XCTFail("decode succeeded but should have thrown", file: file, line: line)
        } catch let error as FormatError {
            XCTAssertEqual(error.format, "png", file: file, line: line)
            XCTAssertFalse(error.message.isEmpty, file: file, line: line)
            if let needle {
                XCTAssertTrue(error.message.contains(needle), "message '\(error.message)' lacks '\(needle)'", file: file, line: line)
            }
        } catch {
            XCTFail("unexpected error type \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    /// Random bytes with the extremes (0 and max) guaranteed to appear.
    private func randomBytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRandom(seed: seed)
        var v = (0 ..< n).map { _ in rng.byte() }
        if n >= 2 { v[0] = 0; v[n - 1] = 255 }
        return v
    }

    /// Half smooth gradient, half noise, so the adaptive filter has real choices to make.
    private func mixedBytes(width: Int, height: Int, channels: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRandom(seed: seed)
        var v = [UInt8]()
        for y in 0 ..< height {
            for x in 0 ..< width {
                for c in 0 ..< channels {
                    v.append(y < height / 2 ? UInt8((x * 3 + y * 5 + c * 40) & 0xFF) : rng.byte())
                }
            }
        }
        if v.count >= 2 { v[0] = 0; v[v.count - 1] = 255 }
        return v
    }

    private func rowsOf(_ bytes: [UInt8], rowBytes: Int) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: rowBytes).map { Array(bytes[$0 ..< $0 + rowBytes]) }
    }

    private func bigEndianBytes(_ v: [UInt16]) -> [UInt8] { v.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } }

    // MARK: Round trips through the encoders

    func testRoundTripGray8() throws {
        for (i, (w, h)) in sizes.enumerated() {
            for pixels in [randomBytes(w * h, seed: UInt64(i)), mixedBytes(width: w, height: h, channels: 1, seed: UInt64(i))] {
                let file = PNG.encodeGray8(width: w, height: h, pixels: pixels)
                let a = try PNG.decode(file)
                XCTAssertEqual(a.shape, [h, w])
                XCTAssertEqual(a.storage, .uint8(pixels))
            }
        }
        let all = (0 ..< 256).map { UInt8($0) }
        XCTAssertEqual(try PNG.decode(PNG.encodeGray8(width: 16, height: 16, pixels: all)).storage, .uint8(all))
    }

    func testRoundTripGray16() throws {
        for (i, (w, h)) in sizes.enumerated() {
            var rng = SeededRandom(seed: 100 + UInt64(i))
            var noise = (0 ..< w * h).map { _ in UInt16(truncatingIfNeeded: rng.next()) }
            if noise.count >= 2 { noise[0] = 0; noise[noise.count - 1] = 65535 }
            let smooth = (0 ..< w * h).map { UInt16(truncatingIfNeeded: $0 * 1021 + ($0 % 7) * 50000) }
            for pixels in [noise, smooth] {
                let file = PNG.encodeGray16(width: w, height: h, pixels: pixels)
                let a = try PNG.decode(file)
                XCTAssertEqual(a.shape, [h, w])
                XCTAssertEqual(a.storage, .uint16(pixels))
            }
        }
        let edges: [UInt16] = [0, 1, 255, 256, 32767, 32768, 65534, 65535]
        XCTAssertEqual(try PNG.decode(PNG.encodeGray16(width: 4, height: 2, pixels: edges)).storage, .uint16(edges))
    }

    func testRoundTripRGB8() throws {
        for (i, (w, h)) in sizes.enumerated() {
            for pixels in [randomBytes(w * h * 3, seed: 200 + UInt64(i)),
                           mixedBytes(width: w, height: h, channels: 3, seed: 200 + UInt64(i))] {
                let file = PNG.encodeRGB8(width: w, height: h, pixels: pixels)
                let a = try PNG.decode(file)
                XCTAssertEqual(a.shape, [h, w, 3])
                XCTAssertEqual(a.storage, .uint8(pixels))
            }
        }
    }

    func testEncoderOutputStructure() throws {
        let w = 64, h = 33
        let pixels = mixedBytes(width: w, height: h, channels: 3, seed: 7)
        let file = PNG.encodeRGB8(width: w, height: h, pixels: pixels)
        let chunks = Build.chunks(file)
        XCTAssertEqual(Array(file.prefix(8)), Build.signature)
        XCTAssertEqual(chunks.map(\.0), ["IHDR", "IDAT", "IEND"])
        XCTAssertEqual(chunks[0].1, Build.be32(64) + Build.be32(33) + [8, 2, 0, 0, 0])
        // The filter bytes are valid, and the heuristic picks more than one filter for this image.
        let raw = try Zlib.inflate(chunks[1].1[...], maxOutput: 1 << 20, format: "test")
        XCTAssertEqual(raw.count, h * (1 + w * 3))
        let filters = Set((0 ..< h).map { raw[$0 * (1 + w * 3)] })
        XCTAssertTrue(filters.isSubset(of: [0, 1, 2, 3, 4]))
        XCTAssertGreaterThan(filters.count, 1, "filters used: \(filters)")
        // A smooth gradient compresses far below its raw size.
        let gradient: [UInt8] = (0 ..< 65536).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i % 256 + i / 256) }
        XCTAssertLessThan(PNG.encodeGray8(width: 256, height: 256, pixels: gradient).count, 4000)
    }

    // MARK: The decoder on hand-built files

    /// Every filter type, alone for the whole image and mixed row by row, at 8 and 16 bits,
    /// gray and RGB: filter strides of 1, 2, 3 and 6 bytes.
    func testDecodeEachFilterType() throws {
        let cases: [(depth: UInt8, colorType: UInt8, channels: Int)] = [(8, 0, 1), (16, 0, 1), (8, 2, 3), (16, 2, 3)]
        for (k, c) in cases.enumerated() {
            let bpp = c.channels * Int(c.depth) / 8
            let w = 5, h = 10
            let rowBytes = w * bpp
            let bytes = randomBytes(rowBytes * h, seed: 300 + UInt64(k))
            let rows = rowsOf(bytes, rowBytes: rowBytes)
            let filterSets: [[UInt8]] = [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
            for filters in filterSets {
                let file = Build.png(width: w, height: h, depth: c.depth, colorType: c.colorType, rows: rows,
                                     filters: filters, bpp: bpp)
                let a = try PNG.decode(file)
                XCTAssertEqual(a.shape, c.channels == 1 ? [h, w] : [h, w, 3], "filters \(filters)")
                if c.depth == 8 {
                    XCTAssertEqual(a.storage, .uint8(bytes), "depth 8 type \(c.colorType) filters \(filters)")
                } else {
                    let expected = (0 ..< bytes.count / 2).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
                    XCTAssertEqual(a.storage, .uint16(expected), "depth 16 type \(c.colorType) filters \(filters)")
                }
            }
        }
    }

    func testDecodeDropsAlpha() throws {
        let w = 4, h = 3
        for (colorType, channels) in [(UInt8(4), 2), (UInt8(6), 4)] {
            let outChannels = channels == 2 ? 1 : 3
            for depth in [UInt8(8), 16] {
                let bps = Int(depth) / 8
                let bpp = channels * bps
                let bytes = randomBytes(w * h * bpp, seed: 400 + UInt64(colorType) + UInt64(depth))
                let file = Build.png(width: w, height: h, depth: depth, colorType: colorType,
                                     rows: rowsOf(bytes, rowBytes: w * bpp), filters: [0, 1, 2, 3, 4], bpp: bpp)
                let a = try PNG.decode(file)
                XCTAssertEqual(a.shape, outChannels == 1 ? [h, w] : [h, w, 3])
                var expected8 = [UInt8](), expected16 = [UInt16]()
                for p in 0 ..< w * h {
                    for ch in 0 ..< outChannels {
                        let o = p * bpp + ch * bps
                        if depth == 8 { expected8.append(bytes[o]) } else { expected16.append(UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1])) }
                    }
                }
                XCTAssertEqual(a.storage, depth == 8 ? .uint8(expected8) : .uint16(expected16))
            }
        }
    }

    /// Packs samples of `depth` bits into rows, most significant bits first, rows padded.
    private func pack(_ samples: [Int], width: Int, depth: Int) -> [[UInt8]] {
        let rowBytes = (width * depth + 7) / 8
        return stride(from: 0, to: samples.count, by: width).map { start in
            var row = [UInt8](repeating: 0, count: rowBytes)
            for x in 0 ..< width {
                let bit = x * depth
                row[bit / 8] |= UInt8(samples[start + x] << (8 - depth - bit % 8))
            }
            return row
        }
    }

    func testDecodeLowBitGray() throws {
        for depth in [1, 2, 4] {
            for w in [1, 3, 5, 11] {
                let h = 4
                var rng = SeededRandom(seed: UInt64(500 + depth * 10 + w))
                var samples = (0 ..< w * h).map { _ in rng.below(1 << depth) }
                samples[0] = (1 << depth) - 1
                let file = Build.png(width: w, height: h, depth: UInt8(depth), colorType: 0,
                                     rows: pack(samples, width: w, depth: depth), filters: [0, 1, 2, 3, 4], bpp: 1)
                let a = try PNG.decode(file)
                XCTAssertEqual(a.shape, [h, w])
                XCTAssertEqual(a.storage, .uint8(samples.map { UInt8($0) }), "depth \(depth) width \(w)")
            }
        }
    }

    func testDecodePalette() throws {
        var rng = SeededRandom(seed: 600)
        let palette = (0 ..< 256 * 3).map { _ in rng.byte() }
        for depth in [1, 2, 4, 8] {
            let entries = 1 << depth
            let w = 7, h = 5
            let samples = (0 ..< w * h).map { _ in rng.below(entries) }
            let plte = Build.chunk("PLTE", Array(palette[0 ..< 3 * entries]))
            let file = Build.png(width: w, height: h, depth: UInt8(depth), colorType: 3,
                                 rows: pack(samples, width: w, depth: depth), filters: [0, 1, 2, 3, 4], bpp: 1,
                                 extra: [plte, Build.chunk("tRNS", [0, 128])])
            let a = try PNG.decode(file)
            XCTAssertEqual(a.shape, [h, w, 3])
            XCTAssertEqual(a.storage, .uint8(samples.flatMap { Array(palette[3 * $0 ..< 3 * $0 + 3]) }), "depth \(depth)")
        }
        // An index past the end of a short palette.
        let short = Build.chunk("PLTE", [1, 2, 3, 4, 5, 6])
        let bad = Build.png(width: 2, height: 1, depth: 8, colorType: 3, rows: [[1, 2]], filters: [0], bpp: 1, extra: [short])
        assertFormatError(bad, contains: "palette index 2")
        // No PLTE at all.
        assertFormatError(Build.png(width: 2, height: 1, depth: 8, colorType: 3, rows: [[0, 0]], filters: [0], bpp: 1),
                          contains: "PLTE")
        // PLTE in a grayscale image, PLTE of a bad length.
        assertFormatError(Build.png(width: 2, height: 1, depth: 8, colorType: 0, rows: [[0, 0]], filters: [0], bpp: 1,
                                    extra: [short]), contains: "PLTE")
        assertFormatError(Build.png(width: 2, height: 1, depth: 8, colorType: 3, rows: [[0, 0]], filters: [0], bpp: 1,
                                    extra: [Build.chunk("PLTE", [1, 2, 3, 4])]), contains: "PLTE")
    }

    func testAncillaryChunksAndSplitIDAT() throws {
        let w = 9, h = 6
        let bytes = randomBytes(w * h * 3, seed: 700)
        let extra = [Build.chunk("gAMA", Build.be32(45455)), Build.chunk("tEXt", Array("Comment\0hello".utf8)),
                     Build.chunk("PLTE", [0, 0, 0]), Build.chunk("zzZz", [1, 2, 3])]
        for split in [1, 7, 1 << 20] {
            let file = Build.png(width: w, height: h, depth: 8, colorType: 2, rows: rowsOf(bytes, rowBytes: w * 3),
                                 filters: [2, 4], bpp: 3, extra: extra, idatSplit: split)
            XCTAssertEqual(try PNG.decode(file).storage, .uint8(bytes), "split \(split)")
        }
        // An empty IDAT chunk among the others, an ancillary chunk after the data, bytes after IEND.
        var chunks = Build.chunks(PNG.encodeRGB8(width: w, height: h, pixels: bytes))
        chunks.insert(("IDAT", []), at: 1)
        chunks.insert(("tIME", [7, 232, 1, 1, 0, 0, 0]), at: chunks.count - 1)
        XCTAssertEqual(try PNG.decode(Build.assemble(chunks) + [1, 2, 3]).storage, .uint8(bytes))
    }

    // MARK: Hostile and malformed input

    private var sample: [UInt8] {
        PNG.encodeRGB8(width: 6, height: 5, pixels: mixedBytes(width: 6, height: 5, channels: 3, seed: 9))
    }

    func testEmptyAndNotPNG() {
        assertFormatError([], contains: "empty")
        assertFormatError([0x89, 0x50, 0x4E], contains: "signature")
        assertFormatError(Array("GIF89a and more bytes".utf8), contains: "signature")
        assertFormatError(Build.signature, contains: "IHDR")
    }

    func testTruncationAtEveryOffset() {
        let file = sample
        for n in 0 ..< file.count { assertFormatError(Array(file.prefix(n))) }
    }

    func testRandomByteFlipsWithCRCsKept() throws {
        let file = sample
        var rng = SeededRandom(seed: 800)
        for _ in 0 ..< 300 {
            var bad = file
            for _ in 0 ..< 1 + rng.below(3) {
                let at = rng.below(bad.count)
                bad[at] ^= UInt8(1 + rng.below(255))
            }
            // Every byte is covered by the signature, a length, a CRC or data under a CRC.
            assertFormatError(bad)
        }
    }

    /// Corrupts chunk contents and then recomputes the CRCs, so the corruption reaches the
    /// header checks, inflate, the filters and the conversion.
    func testRandomCorruptionWithCRCsFixed() throws {
        let files = [sample,
                     PNG.encodeGray16(width: 5, height: 4, pixels: (0 ..< 20).map { UInt16($0 * 3000) }),
                     Build.png(width: 7, height: 3, depth: 4, colorType: 3, rows: pack((0 ..< 21).map { $0 % 16 }, width: 7, depth: 4),
                               filters: [0, 1, 4], bpp: 1, extra: [Build.chunk("PLTE", (0 ..< 48).map { UInt8($0) })])]
        var rng = SeededRandom(seed: 900)
        var threw = 0, decoded = 0
        for i in 0 ..< 300 {
            var chunks = Build.chunks(files[i % files.count])
            let target = rng.below(chunks.count)
            var data = chunks[target].1
            switch rng.below(4) {
            case 0 where !data.isEmpty: // flip bytes
                for _ in 0 ..< 1 + rng.below(3) { data[rng.below(data.count)] ^= UInt8(1 + rng.below(255)) }
            case 1 where !data.isEmpty: // cut
                data.removeLast(1 + rng.below(data.count))
            case 2: // append junk
                data += (0 ..< 1 + rng.below(8)).map { _ in rng.byte() }
            default: // overwrite the tail of the data (or IHDR fields) with random bytes
                if !data.isEmpty { data[data.count - 1 - rng.below(min(data.count, 4))] = rng.byte() }
            }
            chunks[target].1 = data
            do {
                let a = try PNG.decode(Build.assemble(chunks))
                XCTAssertEqual(a.shape.reduce(1, *), a.count)
                decoded += 1
            } catch let error as FormatError {
                XCTAssertFalse(error.message.isEmpty)
                threw += 1
            } catch {
                XCTFail("unexpected error \(error)")
            }
        }
        XCTAssertGreaterThan(threw, 100)
        _ = decoded // some corruptions (for example inside a palette) still give a valid image
    }

    func testCRCCorruption() {
        let file = sample
        let chunks = Build.chunks(file)
        var offset = 8
        for (type, data) in chunks {
            var bad = file
            bad[offset + 8 + data.count + 3] ^= 0x01 // last CRC byte
            assertFormatError(bad, contains: "CRC mismatch in \(type)")
            offset += 12 + data.count
        }
    }

    func testHugeDimensionsAndLimits() {
        let tinyIDAT = Build.chunk("IDAT", Zlib.deflate([0, 0][...]))
        let iend = Build.chunk("IEND", [])
        let huge = Build.signature + Build.ihdr(width: 0x7FFF_FFFF, height: 0x7FFF_FFFF, depth: 16, colorType: 6) + tinyIDAT + iend
        assertFormatError(huge, contains: "elements")
        let over = Build.signature + Build.ihdr(width: 0x8000_0000, height: 1, depth: 8, colorType: 0) + tinyIDAT + iend
        assertFormatError(over, contains: "width")
        // Within the element limit but with a tiny IDAT: refused without allocating the image.
        let big = Build.signature + Build.ihdr(width: 16384, height: 16384, depth: 8, colorType: 0) + tinyIDAT + iend
        assertFormatError(big, contains: "needs exactly")
        // Caller's limits.
        let small = PNG.encodeGray8(width: 20, height: 20, pixels: [UInt8](repeating: 1, count: 400))
        assertFormatError(small, limits: DecodeLimits(maxElements: 399), contains: "elements")
        assertFormatError(small, limits: DecodeLimits(maxInflatedBytes: 400), contains: "inflated bytes")
        XCTAssertNoThrow(try PNG.decode(small, limits: DecodeLimits(maxElements: 400, maxInflatedBytes: 420)))
    }

    func testZlibBomb() {
        // A 4x4 image whose IDAT inflates to 8 MiB.
        let bomb = Zlib.deflate([UInt8](repeating: 0, count: 8 << 20)[...])
        let file = Build.signature + Build.ihdr(width: 4, height: 4, depth: 8, colorType: 0)
            + Build.chunk("IDAT", bomb) + Build.chunk("IEND", [])
        assertFormatError(file, contains: "inflates to more than")
    }

    func testWrongInflatedLengthAndBadFilter() {
        let rows: [[UInt8]] = [[1, 2, 3], [4, 5, 6]]
        func file(_ raw: [UInt8], width: UInt32 = 3, height: UInt32 = 2) -> [UInt8] {
            Build.signature + Build.ihdr(width: width, height: height, depth: 8, colorType: 0)
                + Build.chunk("IDAT", Zlib.deflate(raw[...])) + Build.chunk("IEND", [])
        }
        let good = Build.filtered(rows: rows, filters: [0], bpp: 1)
        XCTAssertEqual(try? PNG.decode(file(good)).storage, .uint8([1, 2, 3, 4, 5, 6]))
        assertFormatError(file(Array(good.dropLast())), contains: "needs exactly")
        assertFormatError(file(good + [0]), contains: "inflates to more than 8 bytes")
        var badFilter = good
        badFilter[4] = 5
        assertFormatError(file(badFilter), contains: "filter type 5")
        badFilter[4] = 255
        assertFormatError(file(badFilter), contains: "filter type 255")
        // Corrupt and truncated zlib streams.
        let z = Zlib.deflate(good[...])
        let truncated = Build.signature + Build.ihdr(width: 3, height: 2, depth: 8, colorType: 0)
            + Build.chunk("IDAT", Array(z.dropLast(3))) + Build.chunk("IEND", [])
        assertFormatError(truncated)
        let garbage = Build.signature + Build.ihdr(width: 3, height: 2, depth: 8, colorType: 0)
            + Build.chunk("IDAT", [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF]) + Build.chunk("IEND", [])
        assertFormatError(garbage, contains: "image data")
    }

    func testBadHeaderFields() {
        let idat = Build.chunk("IDAT", Zlib.deflate([0, 0, 0, 0][...]))
        let iend = Build.chunk("IEND", [])
        func file(_ ihdr: [UInt8]) -> [UInt8] { Build.signature + ihdr + idat + iend }
        assertFormatError(file(Build.ihdr(width: 0, height: 1, depth: 8, colorType: 0)), contains: "width 0")
        assertFormatError(file(Build.ihdr(width: 1, height: 0, depth: 8, colorType: 0)), contains: "height 0")
        for (depth, colorType) in [(3, 0), (16, 3), (4, 2), (1, 6), (2, 4), (32, 0), (0, 0)] as [(UInt8, UInt8)] {
            assertFormatError(file(Build.ihdr(width: 1, height: 1, depth: depth, colorType: colorType)),
                              contains: "bit depth \(depth)")
        }
        for colorType in [1, 5, 7, 255] as [UInt8] {
            assertFormatError(file(Build.ihdr(width: 1, height: 1, depth: 8, colorType: colorType)), contains: "colour type")
        }
        assertFormatError(file(Build.ihdr(width: 1, height: 1, depth: 8, colorType: 0, compression: 1)), contains: "compression")
        assertFormatError(file(Build.ihdr(width: 1, height: 1, depth: 8, colorType: 0, filter: 1)), contains: "filter method")
        assertFormatError(file(Build.ihdr(width: 1, height: 1, depth: 8, colorType: 0, interlace: 2)), contains: "interlace")
        assertFormatError(file(Build.ihdr(width: 1, height: 1, depth: 8, colorType: 0, interlace: 1)),
                          contains: "interlaced PNG is not supported: save without interlacing")
        assertFormatError(file(Build.chunk("IHDR", Build.be32(1) + Build.be32(1) + [8, 0, 0, 0])), contains: "13")
    }

    func testChunkStructureErrors() {
        let good = Build.chunks(sample)  // IHDR, IDAT, IEND
        let ihdr = good[0], idat = good[1], iend = good[2]
        assertFormatError(Build.assemble([ihdr, iend]), contains: "IDAT")                 // missing IDAT
        assertFormatError(Build.assemble([ihdr]), contains: "IDAT")                       // neither
        assertFormatError(Build.assemble([ihdr, idat]), contains: "IEND")                 // missing IEND
        assertFormatError(Build.assemble([idat, ihdr, iend]), contains: "must start with IHDR")
        assertFormatError(Build.assemble([("tEXt", Array("a\0b".utf8)), ihdr, idat, iend]), contains: "must start with IHDR")
        assertFormatError(Build.assemble([ihdr, ihdr, idat, iend]), contains: "more than one IHDR")
        assertFormatError(Build.assemble([ihdr, ("XyZw", [1]), idat, iend]), contains: "unknown critical chunk XyZw")
        assertFormatError(Build.assemble([ihdr, ("IDAT", Array(idat.1.prefix(5))), ("tEXt", [0x61, 0, 0x62]),
                                          ("IDAT", Array(idat.1.dropFirst(5))), iend]), contains: "not consecutive")
        assertFormatError(Build.assemble([ihdr, idat, ("IEND", [0])]), contains: "IEND")
        assertFormatError(Build.assemble([ihdr, idat, ("PLTE", [0, 0, 0]), iend]), contains: "PLTE")
        // A chunk type with non-letter bytes, and a length past 2^31-1.
        var badType = sample
        badType[8 + 25 + 4] = 0x31
        assertFormatError(badType, contains: "chunk type")
        var badLength = sample
        badLength[8 + 25] = 0x80
        assertFormatError(badLength, contains: "2^31-1")
    }
}
