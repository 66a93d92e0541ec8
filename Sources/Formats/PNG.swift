/// PNG images (W3C PNG specification, RFC 2083), read into and written from `NumericArray`s.
///
/// Reading (`decode`) accepts non-interlaced images of every standard colour type:
/// - grayscale (type 0) at 8 or 16 bits -> shape `[H, W]`, `.uint8` / `.uint16`;
///   at 1, 2 or 4 bits -> `[H, W]`, `.uint8` holding the raw sample values 0 ..< 2^depth;
/// - RGB (type 2) at 8 or 16 bits -> `[H, W, 3]`, `.uint8` / `.uint16`;
/// - gray + alpha (type 4) and RGBA (type 6) -> as gray / RGB, the alpha channel dropped;
/// - palette (type 3) at 1, 2, 4 or 8 bits -> `[H, W, 3]` `.uint8`, expanded through `PLTE`.
/// Adam7-interlaced images are refused with a message saying so. Every chunk CRC is checked,
/// unknown critical chunks are refused, ancillary chunks (gamma, text, transparency, ...) are
/// skipped. Sizes are checked against `DecodeLimits` before anything is allocated, and the image
/// data is inflated with a cap of exactly the size the header implies.
///
/// Writing produces 8-bit gray, 16-bit gray and 8-bit RGB images, choosing a filter per row by
/// the minimum-sum-of-absolute-differences heuristic and deflating at zlib level 6.
public enum PNG {
    static let format = "png"

    /// The 8-byte PNG file signature.
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The largest value the specification allows for a width, height or chunk length.
    static let maxUInt31 = 0x7FFF_FFFF

    /// PNG colour types (IHDR byte 9).
    enum ColorType: UInt8 {
        case gray = 0
        case rgb = 2
        case palette = 3
        case grayAlpha = 4
        case rgba = 6

        /// Samples stored per pixel in the file.
        var samplesPerPixel: Int {
            switch self {
            case .gray, .palette: return 1
            case .grayAlpha: return 2
            case .rgb: return 3
            case .rgba: return 4
            }
        }

        /// Bit depths the specification allows for this colour type.
        var allowedBitDepths: [UInt8] {
            switch self {
            case .gray: return [1, 2, 4, 8, 16]
            case .palette: return [1, 2, 4, 8]
            case .rgb, .grayAlpha, .rgba: return [8, 16]
            }
        }

        var name: String {
            switch self {
            case .gray: return "grayscale"
            case .rgb: return "RGB"
            case .palette: return "palette"
            case .grayAlpha: return "grayscale+alpha"
            case .rgba: return "RGBA"
            }
        }
    }

    /// Appends one chunk (length, type, data, CRC-32 over type and data) to `out`.
    static func appendChunk(_ type: String, _ data: ArraySlice<UInt8>, to out: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        precondition(typeBytes.count == 4 && data.count <= maxUInt31)
        out.appendBE(UInt32(data.count))
        out.append(contentsOf: typeBytes)
        out.append(contentsOf: data)
        let crc = Zlib.crc32(data, initial: Zlib.crc32(typeBytes))
        out.appendBE(crc)
    }
}
