/// Percent-decoding of request targets (RFC 3986 §2.1) and parsing of
/// `application/x-www-form-urlencoded` style query strings.
public enum PercentEncoding {
    /// Decodes `%XX` escapes; with `plusAsSpace`, `+` becomes a space (query strings).
    ///
    /// Returns `nil` when an escape is malformed (`%` not followed by two hex digits) or the
    /// decoded bytes are not valid UTF-8.
    public static func decode<S: StringProtocol>(_ string: S, plusAsSpace: Bool = false) -> String? {
        let utf8 = Array(string.utf8)
        guard utf8.contains(UInt8(ascii: "%")) || (plusAsSpace && utf8.contains(UInt8(ascii: "+"))) else {
            return String(string)
        }
        guard let out = decodeBytes(string, plusAsSpace: plusAsSpace) else { return nil }
        let decoded = String(decoding: out, as: UTF8.self)
        return decoded.utf8.elementsEqual(out) ? decoded : nil
    }

    /// Decodes `%XX` escapes to raw bytes; `nil` when an escape is malformed.
    public static func decodeBytes<S: StringProtocol>(_ string: S, plusAsSpace: Bool = false) -> [UInt8]? {
        let utf8 = Array(string.utf8)
        var out = [UInt8]()
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let byte = utf8[i]
            if byte == UInt8(ascii: "%") {
                guard i + 2 < utf8.count, let hi = hexValue(utf8[i + 1]), let lo = hexValue(utf8[i + 2]) else {
                    return nil
                }
                out.append(hi << 4 | lo)
                i += 3
            } else if plusAsSpace && byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
                i += 1
            } else {
                out.append(byte)
                i += 1
            }
        }
        return out
    }

    /// Splits a query string (without the `?`) into items: pairs separated by `&`, name and
    /// value separated by the first `=`, `+` read as space, escapes decoded. Empty pairs are
    /// skipped; a pair whose escapes are malformed keeps its raw text.
    public static func parseQuery<S: StringProtocol>(_ query: S) -> [HTTPQueryItem] {
        query.split(separator: "&", omittingEmptySubsequences: true).map { element in
            let pair = Substring(element)
            let name: Substring
            let value: Substring
            if let eq = pair.firstIndex(of: "=") {
                name = pair[..<eq]
                value = pair[pair.index(after: eq)...]
            } else {
                name = pair
                value = ""
            }
            return HTTPQueryItem(name: decode(name, plusAsSpace: true) ?? String(name),
                                 value: decode(value, plusAsSpace: true) ?? String(value))
        }
    }

    /// Encodes every byte outside RFC 3986 `unreserved` as `%XX` (for building path segments
    /// and query values).
    public static func encode<S: StringProtocol>(_ string: S) -> String {
        var out = ""
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(digits[Int(byte >> 4)])
                out.unicodeScalars.append(digits[Int(byte & 0xF)])
            }
        }
        return out
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
