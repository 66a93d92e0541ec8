extension PNG {
    /// Encodes an 8-bit grayscale image; `pixels` holds `width * height` samples, row-major.
    /// Width and height must be at least 1 and `pixels` must have exactly that many samples.
    public static func encodeGray8(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        checkArguments(width: width, height: height, count: pixels.count, channels: 1)
        return encode(width: width, height: height, bitDepth: 8, colorType: .gray, samples: pixels)
    }

    /// Encodes a 16-bit grayscale image; `pixels` holds `width * height` samples, row-major.
    public static func encodeGray16(width: Int, height: Int, pixels: [UInt16]) -> [UInt8] {
        checkArguments(width: width, height: height, count: pixels.count, channels: 1)
        // PNG stores 16-bit samples big-endian.
        let bytes = [UInt8](unsafeUninitializedCapacity: pixels.count * 2) { out, initialized in
            pixels.withUnsafeBufferPointer { src in
                for i in 0 ..< src.count {
                    let v = src[i]
                    out[2 * i] = UInt8(truncatingIfNeeded: v >> 8)
                    out[2 * i + 1] = UInt8(truncatingIfNeeded: v)
                }
            }
            initialized = pixels.count * 2
        }
        return encode(width: width, height: height, bitDepth: 16, colorType: .gray, samples: bytes)
    }

    /// Encodes an 8-bit RGB image; `pixels` holds `width * height * 3` samples, interleaved
    /// R, G, B, row-major.
    public static func encodeRGB8(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        checkArguments(width: width, height: height, count: pixels.count, channels: 3)
        return encode(width: width, height: height, bitDepth: 8, colorType: .rgb, samples: pixels)
    }

    private static func checkArguments(width: Int, height: Int, count: Int, channels: Int) {
        precondition(width >= 1 && width <= maxUInt31 && height >= 1 && height <= maxUInt31,
                     "PNG width and height must be 1 to 2^31-1, got \(width)x\(height)")
        let (pixels, o1) = width.multipliedReportingOverflow(by: height)
        let (expected, o2) = pixels.multipliedReportingOverflow(by: channels)
        precondition(!o1 && !o2 && expected == count,
                     "a \(width)x\(height) image with \(channels) channel(s) needs width*height*channels samples, got \(count)")
    }

    /// Filters, compresses and wraps `samples` (the raw scanlines, back to back, without
    /// filter bytes) as a PNG file.
    static func encode(width: Int, height: Int, bitDepth: Int, colorType: ColorType, samples: [UInt8]) -> [UInt8] {
        let bpp = colorType.samplesPerPixel * bitDepth / 8
        let rowBytes = width * bpp
        let filtered = filterRows(samples, rows: height, rowBytes: rowBytes, bpp: bpp)
        let compressed = Zlib.deflate(filtered[...], level: 6)

        var ihdr = [UInt8]()
        ihdr.reserveCapacity(13)
        ihdr.appendBE(UInt32(width))
        ihdr.appendBE(UInt32(height))
        ihdr.append(UInt8(bitDepth))
        ihdr.append(colorType.rawValue)
        ihdr.append(contentsOf: [0, 0, 0]) // deflate, adaptive filtering, no interlace

        let idatChunk = 1 << 20 // split the image data into IDAT chunks of at most 1 MiB
        let chunkCount = max(1, (compressed.count + idatChunk - 1) / idatChunk)
        var out = [UInt8]()
        out.reserveCapacity(signature.count + 25 + compressed.count + 12 * chunkCount + 12)
        out.append(contentsOf: signature)
        appendChunk("IHDR", ihdr[...], to: &out)
        var start = 0
        repeat {
            let end = min(start + idatChunk, compressed.count)
            appendChunk("IDAT", compressed[start ..< end], to: &out)
            start = end
        } while start < compressed.count
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// Applies to each row the filter (of the five) whose output has the smallest sum of
    /// absolute values, reading bytes as signed: the usual adaptive heuristic. Returns the rows
    /// each led by its filter-type byte.
    static func filterRows(_ samples: [UInt8], rows: Int, rowBytes n: Int, bpp: Int) -> [UInt8] {
        precondition(samples.count == rows * n && bpp >= 1 && n >= bpp)
        let stride = n + 1
        let total = rows * stride
        // Five candidate rows and a row of zeros standing in for the row above the first.
        var scratch = [UInt8](repeating: 0, count: 6 * n)
        return [UInt8](unsafeUninitializedCapacity: total) { outBuf, initialized in
            samples.withUnsafeBufferPointer { srcBuf in
                scratch.withUnsafeMutableBufferPointer { scratchBuf in
                    guard let src = srcBuf.baseAddress, let s = scratchBuf.baseAddress,
                          let out = outBuf.baseAddress else { return }
                    let zeroRow = UnsafePointer(s + 5 * n)
                    let f0 = s, f1 = s + n, f2 = s + 2 * n, f3 = s + 3 * n, f4 = s + 4 * n
                    for r in 0 ..< rows {
                        let cur = src + r * n
                        let prev = r == 0 ? zeroRow : src + (r - 1) * n
                        var sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0, sum4 = 0
                        var i = 0
                        // Left of the first pixel: a = c = 0.
                        while i < bpp {
                            let x = cur[i], b = prev[i]
                            let v0 = x, v1 = x, v2 = x &- b, v3 = x &- (b >> 1), v4 = x &- b
                            f0[i] = v0; f1[i] = v1; f2[i] = v2; f3[i] = v3; f4[i] = v4
                            sum0 &+= cost(v0); sum1 &+= cost(v1); sum2 &+= cost(v2)
                            sum3 &+= cost(v3); sum4 &+= cost(v4)
                            i += 1
                        }
                        while i < n {
                            let x = cur[i], a = cur[i - bpp], b = prev[i], c = prev[i - bpp]
                            let v0 = x
                            let v1 = x &- a
                            let v2 = x &- b
                            let v3 = x &- UInt8(truncatingIfNeeded: (UInt16(a) + UInt16(b)) >> 1)
                            let v4 = x &- paeth(a, b, c)
                            f0[i] = v0; f1[i] = v1; f2[i] = v2; f3[i] = v3; f4[i] = v4
                            sum0 &+= cost(v0); sum1 &+= cost(v1); sum2 &+= cost(v2)
                            sum3 &+= cost(v3); sum4 &+= cost(v4)
                            i += 1
                        }
                        var best = 0, bestSum = sum0
                        if sum1 < bestSum { best = 1; bestSum = sum1 }
                        if sum2 < bestSum { best = 2; bestSum = sum2 }
                        if sum3 < bestSum { best = 3; bestSum = sum3 }
                        if sum4 < bestSum { best = 4; bestSum = sum4 }
                        let line = out + r * stride
                        line.initialize(to: UInt8(best))
                        (line + 1).initialize(from: s + best * n, count: n)
                    }
                }
            }
            initialized = total
        }
    }

    /// A filtered byte's contribution to the heuristic: its magnitude read as a signed byte.
    @inline(__always)
    private static func cost(_ v: UInt8) -> Int {
        v < 128 ? Int(v) : 256 - Int(v)
    }
}
