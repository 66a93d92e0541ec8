extension PNG {
    /// The fields of an IHDR chunk, validated, with the sizes they imply.
    struct Header {
        let width: Int
        let height: Int
        let bitDepth: Int
        let colorType: ColorType
        /// Bytes of one unfiltered scanline (without its filter-type byte).
        let rowBytes: Int
        /// Bytes the inflated IDAT stream must hold: `height * (1 + rowBytes)`.
        let inflatedSize: Int
        /// Shape of the decoded array.
        let outputShape: [Int]

        /// Distance in bytes to the corresponding byte of the previous pixel (at least 1).
        var filterStride: Int { max(1, colorType.samplesPerPixel * bitDepth / 8) }
    }

    /// Decodes a non-interlaced PNG. Gray -> NumericArray shape [H, W]; RGB -> [H, W, 3];
    /// storage .uint8 for bit depth 8, .uint16 for 16 (16-bit samples are big-endian in the file).
    /// Gray+alpha and RGBA lose their alpha channel; palette images are expanded to RGB; gray at
    /// 1, 2 or 4 bits gives `.uint8` samples 0 ..< 2^depth. Throws `FormatError` on anything else.
    public static func decode(_ bytes: [UInt8], limits: DecodeLimits = .default) throws -> NumericArray {
        guard !bytes.isEmpty else { throw FormatError(format, "empty input: expected a PNG file") }
        guard bytes.count >= signature.count, bytes[0 ..< signature.count].elementsEqual(signature) else {
            throw FormatError(format, "not a PNG file: the 8-byte PNG signature is missing")
        }
        var reader = ByteReader(bytes, format: format, offset: signature.count)
        var header: Header?
        var palette: [UInt8]?
        var idat = [UInt8]()
        var sawIDAT = false
        var idatEnded = false
        var sawIEND = false

        while !sawIEND {
            if reader.isAtEnd {
                if header == nil { throw FormatError(format, "no IHDR chunk: the file ends after the signature") }
                if !sawIDAT { throw FormatError(format, "no IDAT chunk (image data) before the end of the file") }
                throw FormatError(format, "missing IEND chunk: the file is truncated")
            }
            let length = Int(try reader.readBE(UInt32.self, "chunk length"))
            guard length <= maxUInt31 else {
                throw FormatError(format, "chunk length \(length) at offset \(reader.offset - 4) exceeds the PNG maximum of 2^31-1")
            }
            let typeBytes = try reader.readBytes(4, "chunk type")
            guard typeBytes.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) else {
                let hex = typeBytes.map { String($0, radix: 16) }.joined(separator: " ")
                throw FormatError(format, "invalid chunk type bytes [\(hex)] at offset \(reader.offset - 4): the file is corrupt")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            let data = try reader.readBytes(length, "\(type) chunk data")
            let storedCRC = try reader.readBE(UInt32.self, "\(type) chunk CRC")
            let crc = Zlib.crc32(data, initial: Zlib.crc32(typeBytes))
            guard crc == storedCRC else {
                throw FormatError(format, "CRC mismatch in \(type) chunk (stored \(hex32(storedCRC)), computed \(hex32(crc))): the file is corrupt")
            }
            if header == nil && type != "IHDR" {
                throw FormatError(format, "the first chunk is \(type); a PNG must start with IHDR")
            }
            if sawIDAT && type != "IDAT" { idatEnded = true }

            switch type {
            case "IHDR":
                guard header == nil else { throw FormatError(format, "more than one IHDR chunk") }
                header = try parseHeader(data, limits: limits)
            case "PLTE":
                guard let h = header else { break }
                guard !sawIDAT else { throw FormatError(format, "PLTE chunk after the image data (IDAT)") }
                guard palette == nil else { throw FormatError(format, "more than one PLTE chunk") }
                switch h.colorType {
                case .gray, .grayAlpha:
                    throw FormatError(format, "PLTE chunk in a \(h.colorType.name) image, where none is allowed")
                case .palette:
                    guard length % 3 == 0, length >= 3, length / 3 <= (1 << h.bitDepth) else {
                        throw FormatError(format, "PLTE chunk of \(length) bytes: expected 1 to \(1 << h.bitDepth) RGB entries of 3 bytes")
                    }
                    palette = Array(data)
                case .rgb, .rgba:
                    break // a suggested palette for truecolour images; not needed
                }
            case "IDAT":
                guard !idatEnded else {
                    throw FormatError(format, "IDAT chunks are not consecutive: the image data is split by another chunk")
                }
                if !sawIDAT, let h = header, h.colorType == .palette, palette == nil {
                    throw FormatError(format, "palette image without a PLTE chunk before its image data")
                }
                sawIDAT = true
                idat.append(contentsOf: data)
            case "IEND":
                guard length == 0 else { throw FormatError(format, "IEND chunk carries \(length) bytes; it must be empty") }
                guard sawIDAT else { throw FormatError(format, "no IDAT chunk (image data) before IEND") }
                sawIEND = true
            default:
                // Bit 5 of the first type byte clear: critical, must be understood to decode.
                if typeBytes[typeBytes.startIndex] & 0x20 == 0 {
                    throw FormatError(format, "unknown critical chunk \(type): this PNG needs a feature this reader does not have")
                }
            }
        }
        // `header` is set: the loop refuses any chunk before IHDR and ends only at IEND.
        guard let h = header else { throw FormatError(format, "no IHDR chunk") }

        var raw: [UInt8]
        do {
            // Reserve no more than the compressed data could possibly produce (deflate data inflates
            // at most about 1032:1), so a tiny file declaring a huge image allocates little.
            let (bound, overflow) = idat.count.multipliedReportingOverflow(by: 1040)
            let reserve = overflow ? h.inflatedSize : min(h.inflatedSize, bound + 1024)
            raw = try Zlib.inflate(idat[...], maxOutput: h.inflatedSize, expectedSize: reserve, format: format)
        } catch let error as FormatError {
            throw FormatError(format, "image data (IDAT): \(error.message); a \(h.width)x\(h.height) \(h.bitDepth)-bit \(h.colorType.name) image needs exactly \(h.inflatedSize) bytes")
        }
        guard raw.count == h.inflatedSize else {
            throw FormatError(format, "image data inflates to \(raw.count) bytes but a \(h.width)x\(h.height) \(h.bitDepth)-bit \(h.colorType.name) image needs exactly \(h.inflatedSize) bytes")
        }
        try unfilter(&raw, rows: h.height, rowBytes: h.rowBytes, bpp: h.filterStride)
        return try convert(raw, header: h, palette: palette ?? [])
    }

    private static func hex32(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Validates IHDR and computes, with overflow checks and against `limits`, the sizes it
    /// implies, so nothing is allocated for a header that declares an absurd image.
    static func parseHeader(_ data: ArraySlice<UInt8>, limits: DecodeLimits) throws -> Header {
        guard data.count == 13 else { throw FormatError(format, "IHDR chunk has \(data.count) bytes; it must have 13") }
        var r = ByteReader(Array(data), format: format)
        let width = Int(try r.readBE(UInt32.self, "IHDR width"))
        let height = Int(try r.readBE(UInt32.self, "IHDR height"))
        let depth = try r.readUInt8("IHDR bit depth")
        let colorByte = try r.readUInt8("IHDR colour type")
        let compression = try r.readUInt8("IHDR compression method")
        let filterMethod = try r.readUInt8("IHDR filter method")
        let interlace = try r.readUInt8("IHDR interlace method")

        guard width >= 1, width <= maxUInt31 else {
            throw FormatError(format, "IHDR width \(width) is invalid: it must be 1 to 2^31-1")
        }
        guard height >= 1, height <= maxUInt31 else {
            throw FormatError(format, "IHDR height \(height) is invalid: it must be 1 to 2^31-1")
        }
        guard let colorType = ColorType(rawValue: colorByte) else {
            throw FormatError(format, "IHDR colour type \(colorByte) is invalid: it must be 0, 2, 3, 4 or 6")
        }
        guard colorType.allowedBitDepths.contains(depth) else {
            let allowed = colorType.allowedBitDepths.map(String.init).joined(separator: ", ")
            throw FormatError(format, "bit depth \(depth) is invalid for a \(colorType.name) image (colour type \(colorByte)): allowed are \(allowed)")
        }
        guard compression == 0 else { throw FormatError(format, "IHDR compression method \(compression) is unknown: only 0 (deflate) exists") }
        guard filterMethod == 0 else { throw FormatError(format, "IHDR filter method \(filterMethod) is unknown: only 0 exists") }
        guard interlace <= 1 else { throw FormatError(format, "IHDR interlace method \(interlace) is unknown: only 0 and 1 exist") }
        guard interlace == 0 else {
            throw FormatError(format, "interlaced PNG is not supported: save without interlacing")
        }

        let outChannels: Int
        switch colorType {
        case .gray, .grayAlpha: outChannels = 1
        case .rgb, .rgba, .palette: outChannels = 3
        }
        let outputShape = outChannels == 1 ? [height, width] : [height, width, outChannels]
        _ = try limits.checkShape(outputShape, format: format)

        let bitsPerPixel = colorType.samplesPerPixel * Int(depth)
        let (rowBits, o1) = width.multipliedReportingOverflow(by: bitsPerPixel)
        let rowBytes = rowBits / 8 + (rowBits % 8 == 0 ? 0 : 1)
        let (total, o2) = height.multipliedReportingOverflow(by: rowBytes + 1)
        guard !o1, !o2, total < Int.max, total <= limits.maxInflatedBytes else {
            throw FormatError(format, "a \(width)x\(height) \(depth)-bit \(colorType.name) image needs more than the \(limits.maxInflatedBytes) inflated bytes accepted")
        }
        return Header(width: width, height: height, bitDepth: Int(depth), colorType: colorType,
                      rowBytes: rowBytes, inflatedSize: total, outputShape: outputShape)
    }

    /// Reverses the per-scanline filters in place. Each of the `rows` lines is one filter-type
    /// byte followed by `rowBytes` filtered bytes; `bpp` is the byte distance to the previous
    /// pixel. The filter-type bytes are left in place.
    static func unfilter(_ data: inout [UInt8], rows: Int, rowBytes: Int, bpp: Int) throws {
        precondition(data.count == rows * (rowBytes + 1) && bpp >= 1)
        let zeros = [UInt8](repeating: 0, count: rowBytes)
        try zeros.withUnsafeBufferPointer { zeroBuf in
            try data.withUnsafeMutableBufferPointer { buf in
                guard let base = buf.baseAddress, let zeroRow = zeroBuf.baseAddress else { return }
                let stride = rowBytes + 1
                let n = rowBytes
                let lead = min(bpp, n) // bytes with no pixel to their left
                for r in 0 ..< rows {
                    let line = base + r * stride
                    let cur = line + 1
                    let prev = r == 0 ? UnsafePointer(zeroRow) : UnsafePointer(line - stride + 1)
                    switch line[0] {
                    case 0:
                        break
                    case 1: // Sub
                        var i = bpp
                        while i < n { cur[i] &+= cur[i - bpp]; i += 1 }
                    case 2: // Up
                        var i = 0
                        while i < n { cur[i] &+= prev[i]; i += 1 }
                    case 3: // Average
                        var i = 0
                        while i < lead { cur[i] &+= prev[i] >> 1; i += 1 }
                        while i < n {
                            cur[i] &+= UInt8(truncatingIfNeeded: (UInt16(cur[i - bpp]) + UInt16(prev[i])) >> 1)
                            i += 1
                        }
                    case 4: // Paeth
                        var i = 0
                        while i < lead { cur[i] &+= prev[i]; i += 1 } // a = c = 0: predictor is b
                        while i < n {
                            cur[i] &+= paeth(cur[i - bpp], prev[i], prev[i - bpp])
                            i += 1
                        }
                    default:
                        throw FormatError(format, "scanline \(r) has filter type \(line[0]); only 0 to 4 exist: the image data is corrupt")
                    }
                }
            }
        }
    }

    /// The Paeth predictor: whichever of left, above and upper-left is closest to left+above-upper-left.
    @inline(__always)
    static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let ia = Int(a), ib = Int(b), ic = Int(c)
        let pa = abs(ib - ic)          // |p - a| with p = a + b - c
        let pb = abs(ia - ic)          // |p - b|
        let pc = abs(ia + ib - 2 * ic) // |p - c|
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    /// Turns unfiltered scanlines (each still led by its filter byte) into the output array.
    static func convert(_ raw: [UInt8], header h: Header, palette: [UInt8]) throws -> NumericArray {
        let width = h.width, height = h.height, stride = h.rowBytes + 1
        let spp = h.colorType.samplesPerPixel
        let outChannels = h.outputShape.count == 2 ? 1 : 3
        let count = width * height * outChannels

        return try raw.withUnsafeBufferPointer { rawBuf -> NumericArray in
            guard let src = rawBuf.baseAddress else { throw FormatError(format, "empty image data") }
            switch (h.bitDepth, h.colorType) {
            case (16, _):
                let values = [UInt16](unsafeUninitializedCapacity: count) { out, initialized in
                    var o = 0
                    for y in 0 ..< height {
                        let row = src + y * stride + 1
                        for x in 0 ..< width {
                            let p = row + x * spp * 2
                            for c in 0 ..< outChannels {
                                out[o] = UInt16(p[2 * c]) << 8 | UInt16(p[2 * c + 1])
                                o += 1
                            }
                        }
                    }
                    initialized = count
                }
                return NumericArray(shape: h.outputShape, storage: .uint16(values))
            case (_, .palette):
                let entries = palette.count / 3
                let depth = h.bitDepth
                let mask = (1 << depth) - 1
                var badIndex = -1
                let values = palette.withUnsafeBufferPointer { pal in
                    [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                        var o = 0
                        rows: for y in 0 ..< height {
                            let row = src + y * stride + 1
                            for x in 0 ..< width {
                                let index: Int
                                if depth == 8 {
                                    index = Int(row[x])
                                } else {
                                    let bit = x * depth
                                    index = Int(row[bit >> 3] >> (8 - depth - (bit & 7))) & mask
                                }
                                if index >= entries { badIndex = index; break rows }
                                out[o] = pal[3 * index]
                                out[o + 1] = pal[3 * index + 1]
                                out[o + 2] = pal[3 * index + 2]
                                o += 3
                            }
                        }
                        if badIndex >= 0 {
                            // Fill the rest so the buffer is fully initialised before it is dropped.
                            while o < count { out[o] = 0; o += 1 }
                        }
                        initialized = count
                    }
                }
                if badIndex >= 0 {
                    throw FormatError(format, "palette index \(badIndex) is out of range: the PLTE chunk has \(entries) entries")
                }
                return NumericArray(shape: h.outputShape, storage: .uint8(values))
            case (8, _):
                let values = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                    guard let dst = out.baseAddress else { initialized = 0; return }
                    for y in 0 ..< height {
                        let row = src + y * stride + 1
                        let outRow = dst + y * width * outChannels
                        if spp == outChannels {
                            outRow.initialize(from: row, count: width * outChannels)
                        } else {
                            for x in 0 ..< width {
                                for c in 0 ..< outChannels { outRow[x * outChannels + c] = row[x * spp + c] }
                            }
                        }
                    }
                    initialized = count
                }
                return NumericArray(shape: h.outputShape, storage: .uint8(values))
            default: // gray at 1, 2 or 4 bits
                let depth = h.bitDepth
                let mask = UInt8((1 << depth) - 1)
                let values = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                    var o = 0
                    for y in 0 ..< height {
                        let row = src + y * stride + 1
                        for x in 0 ..< width {
                            let bit = x * depth
                            out[o] = (row[bit >> 3] >> UInt8(8 - depth - (bit & 7))) & mask
                            o += 1
                        }
                    }
                    initialized = count
                }
                return NumericArray(shape: h.outputShape, storage: .uint8(values))
            }
        }
    }
}
