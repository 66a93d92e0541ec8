import CZlib

/// zlib (RFC 1950) and raw deflate (RFC 1951) through the system library, with a hard cap on
/// the inflated size so that a small "zip bomb" cannot exhaust memory.
public enum Zlib {
    public enum Wrapping: Sendable {
        /// zlib header and Adler-32 trailer (PNG IDAT, MATLAB miCOMPRESSED).
        case zlib
        /// raw deflate, no header (zip entries).
        case raw
    }

    /// Inflates `input`. Throws when the stream is corrupt, ends early, or would produce more
    /// than `maxOutput` bytes. `expectedSize`, when known, sizes the first buffer.
    public static func inflate(_ input: ArraySlice<UInt8>, wrapping: Wrapping = .zlib, maxOutput: Int,
                               expectedSize: Int? = nil, format: String) throws -> [UInt8] {
        var stream = z_stream()
        let windowBits: Int32 = wrapping == .zlib ? 15 : -15
        guard inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatError(format, "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        let chunk = 1 << 16
        var capacity = min(max(expectedSize ?? input.count * 4, chunk), maxOutput + 1)
        output.reserveCapacity(capacity)
        var buffer = [UInt8](repeating: 0, count: chunk)
        var status: Int32 = Z_OK
        try input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            repeat {
                let produced: Int = buffer.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = UInt32(chunk)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return chunk - Int(stream.avail_out)
                }
                if status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR {
                    let reason = stream.msg.map { String(cString: $0) } ?? "code \(status)"
                    throw FormatError(format, "corrupt compressed data (\(reason))")
                }
                if output.count + produced > maxOutput {
                    throw FormatError(format, "compressed data inflates to more than \(maxOutput) bytes")
                }
                if output.count + produced > capacity {
                    capacity = min(capacity * 2, maxOutput + 1)
                    output.reserveCapacity(capacity)
                }
                output.append(contentsOf: buffer[0 ..< produced])
                if status == Z_BUF_ERROR && produced == 0 {
                    throw FormatError(format, "compressed data is truncated")
                }
            } while status != Z_STREAM_END
        }
        return output
    }

    /// The first `count` bytes `input` inflates to (fewer when the stream is shorter), without
    /// inflating the rest: enough to read a header that declares the full size.
    public static func inflatePrefix(_ input: ArraySlice<UInt8>, wrapping: Wrapping = .zlib, count: Int,
                                     format: String) throws -> [UInt8] {
        var stream = z_stream()
        let windowBits: Int32 = wrapping == .zlib ? 15 : -15
        guard inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatError(format, "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: max(count, 0))
        var produced = 0
        try input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(min(inBuf.count, Int(UInt32.max)))
            try output.withUnsafeMutableBufferPointer { outBuf in
                while produced < outBuf.count {
                    stream.next_out = outBuf.baseAddress! + produced
                    stream.avail_out = UInt32(outBuf.count - produced)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced = outBuf.count - Int(stream.avail_out)
                    if status == Z_STREAM_END { return }
                    if status == Z_BUF_ERROR { return }     // input exhausted: a short stream
                    if status != Z_OK {
                        let reason = stream.msg.map { String(cString: $0) } ?? "code \(status)"
                        throw FormatError(format, "corrupt compressed data (\(reason))")
                    }
                }
            }
        }
        return Array(output[0 ..< produced])
    }

    /// Deflates `input` (level 1-9; 6 is zlib's default balance of size and speed).
    public static func deflate(_ input: ArraySlice<UInt8>, wrapping: Wrapping = .zlib, level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        let windowBits: Int32 = wrapping == .zlib ? 15 : -15
        precondition(deflateInit2_(&stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY,
                                   ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        input.withUnsafeBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(bound)
                let status = CZlib.deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "deflate with a deflateBound-sized buffer must finish")
            }
        }
        output.removeLast(Int(stream.avail_out))
        return output
    }

    /// CRC-32 (PNG chunks, zip entries).
    public static func crc32<C: Collection>(_ bytes: C, initial: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        let result = bytes.withContiguousStorageIfAvailable { buf in
            CZlib.crc32(uLong(initial), buf.baseAddress, uInt(buf.count))
        } ?? Array(bytes).withUnsafeBufferPointer { buf in
            CZlib.crc32(uLong(initial), buf.baseAddress, uInt(buf.count))
        }
        return UInt32(truncatingIfNeeded: result)
    }
}
