/// NumPy `.npy` files (format versions 1.0, 2.0 and 3.0, see numpy.lib.format / NEP 1).
///
/// Layout: the magic `\x93NUMPY`, a major and a minor version byte, the header length
/// (UInt16 LE for 1.0, UInt32 LE for 2.0 and 3.0), then the header: a Python dict literal with
/// exactly the keys 'descr', 'fortran_order' and 'shape' (latin-1 text in 1.0/2.0, UTF-8 in 3.0),
/// padded with spaces and ended by a newline, and then the raw element data.
///
/// Read: dtypes f2 (widened to float32), f4, f8, u1, i1, u2, i2, u4, i4, u8, i8 and b1 in any byte
/// order ('<', '>', '|', '=' or none; big-endian data is converted), C or Fortran order (Fortran
/// is converted to C order), any shape including () for a scalar. The data must be exactly
/// count * itemsize bytes long.
/// Written: version 1.0 (2.0 when the header does not fit in 65535 bytes), little-endian, C order,
/// the header laid out byte for byte as numpy writes it.
public enum NPY {
    static let format = "npy"
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // "\x93NUMPY"
    static let supportedDtypes = "f2, f4, f8, u1, i1, u2, i2, u4, i4, u8, i8, b1 (byte order '<', '>', '|' or '=')"

    public static func decode(_ bytes: [UInt8], limits: DecodeLimits = .default) throws -> NumericArray {
        var reader = ByteReader(bytes, format: format)
        if bytes.isEmpty { throw FormatError(format, "empty input: not a .npy file") }
        guard bytes.count >= magic.count, Array(bytes[0 ..< magic.count]) == magic else {
            throw FormatError(format, "not a .npy file: it does not start with the magic string \\x93NUMPY")
        }
        try reader.skip(magic.count)
        let major = try reader.readUInt8("format version")
        let minor = try reader.readUInt8("format version")
        let headerLength: Int
        switch (major, minor) {
        case (1, 0): headerLength = Int(try reader.readLE(UInt16.self, "header length"))
        case (2, 0), (3, 0): headerLength = Int(try reader.readLE(UInt32.self, "header length"))
        default:
            throw FormatError(format, "unsupported .npy format version \(major).\(minor); versions 1.0, 2.0 and 3.0 are read")
        }
        let headerBytes = try reader.readBytes(headerLength, "header")
        if major == 3, strictUTF8(headerBytes) == nil {
            throw FormatError(format, "the version 3.0 header is not valid UTF-8")
        }
        var parser = HeaderParser(bytes: headerBytes, utf8: major == 3)
        let header = try parser.parseHeader()

        let count = try limits.checkShape(header.shape, format: format)
        let dataLength = count * header.kind.itemSize // count <= maxElements, itemSize <= 8: no overflow
        if reader.remaining < dataLength {
            throw FormatError(format, "truncated: shape \(header.shape) of '\(header.descr)' needs \(dataLength) data bytes but only \(reader.remaining) follow the header")
        }
        if reader.remaining > dataLength {
            throw FormatError(format, "\(reader.remaining - dataLength) unexpected bytes after the \(dataLength) data bytes of shape \(header.shape) '\(header.descr)'")
        }
        let storage = header.kind.decode(bytes, offset: reader.offset, count: count, bigEndian: header.bigEndian)
        let array = NumericArray(shape: header.shape, storage: storage)
        return header.fortranOrder && header.shape.count > 1 ? array.reorderedFromColumnMajor() : array
    }

    public static func encode(_ array: NumericArray) -> [UInt8] {
        let descr: String
        switch array.storage {
        case .float32: descr = "<f4"
        case .float64: descr = "<f8"
        case .uint8: descr = "|u1"
        case .int8: descr = "|i1"
        case .uint16: descr = "<u2"
        case .int16: descr = "<i2"
        case .uint32: descr = "<u4"
        case .int32: descr = "<i4"
        case .uint64: descr = "<u8"
        case .int64: descr = "<i8"
        case .bool: descr = "|b1"
        }
        let shapeText: String
        switch array.shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(array.shape[0]),)"
        default: shapeText = "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // numpy leaves room for the first axis to grow to 21 digits in place.
        if let first = array.shape.first {
            header += String(repeating: " ", count: max(0, 21 - String(first).count))
        }
        var text = Array(header.utf8)
        // Pad with spaces (at least one) so that the data starts on a 64-byte boundary.
        func padded(prefix: Int) -> [UInt8] {
            let padding = 64 - (prefix + text.count + 1) % 64
            return text + [UInt8](repeating: 0x20, count: padding) + [0x0A]
        }
        var out = magic
        let v1 = padded(prefix: magic.count + 2 + 2)
        if v1.count <= Int(UInt16.max) {
            out += [1, 0]
            out.appendLE(UInt16(v1.count))
            text = v1
        } else {
            let v2 = padded(prefix: magic.count + 2 + 4)
            precondition(v2.count <= Int(UInt32.max), "npy header too long")
            out += [2, 0]
            out.appendLE(UInt32(v2.count))
            text = v2
        }
        out += text
        out += RawElements.littleEndianBytes(array.storage)
        return out
    }
}

// MARK: - Header parsing

extension NPY {
    struct Header {
        var descr: String
        var kind: ElementKind
        var bigEndian: Bool
        var fortranOrder: Bool
        var shape: [Int]
    }

    /// The subset of Python literals a header may use.
    indirect enum Literal {
        case string(String)
        case bool(Bool)
        case int(Int)
        case none
        case tuple([Literal])
        case list([Literal], text: String)
        case dict([(String, Literal)], text: String)

        var typeName: String {
            switch self {
            case .string: return "a string"
            case .bool: return "a boolean"
            case .int: return "an integer"
            case .none: return "None"
            case .tuple: return "a tuple"
            case .list: return "a list"
            case .dict: return "a dict"
            }
        }
    }

    /// A strict parser for the header's dict literal: strings in single or double quotes without
    /// escapes, True/False/None, decimal integers (optionally with Python 2's 'L'), tuples, lists
    /// and dicts, nested at most 16 deep.
    struct HeaderParser {
        let bytes: ArraySlice<UInt8>
        let utf8: Bool
        var position: Int

        init(bytes: ArraySlice<UInt8>, utf8: Bool) {
            self.bytes = bytes
            self.utf8 = utf8
            self.position = bytes.startIndex
        }

        func fail(_ message: String) -> FormatError {
            FormatError(NPY.format, "malformed header (\(message)) at header byte \(position - bytes.startIndex): \(excerpt())")
        }

        func excerpt() -> String {
            let text = decodeText(bytes.prefix(120))
            return "\"" + text.replacingNewlines() + (bytes.count > 120 ? "..." : "") + "\""
        }

        func decodeText(_ slice: ArraySlice<UInt8>) -> String {
            if utf8 { return String(decoding: slice, as: UTF8.self) }
            return String(String.UnicodeScalarView(slice.map { Unicode.Scalar($0) })) // latin-1
        }

        mutating func skipWhitespace() {
            while position < bytes.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ byte: UInt8) throws {
            skipWhitespace()
            guard position < bytes.endIndex, bytes[position] == byte else {
                throw fail("expected '\(Character(Unicode.Scalar(byte)))'")
            }
            position += 1
        }

        mutating func parseHeader() throws -> Header {
            skipWhitespace()
            guard position < bytes.endIndex, bytes[position] == UInt8(ascii: "{") else {
                throw fail("the header must be a Python dict literal starting with '{'")
            }
            guard case .dict(let items, _) = try parseValue(depth: 0) else { throw fail("expected a dict") }
            skipWhitespace()
            guard position == bytes.endIndex else { throw fail("unexpected text after the dict") }

            var descr: Literal?, fortran: Literal?, shape: Literal?
            for (key, value) in items {
                switch key {
                case "descr" where descr == nil: descr = value
                case "fortran_order" where fortran == nil: fortran = value
                case "shape" where shape == nil: shape = value
                case "descr", "fortran_order", "shape": throw fail("key '\(key)' appears twice")
                default: throw fail("unexpected key '\(key)'; a header holds exactly 'descr', 'fortran_order' and 'shape'")
                }
            }
            guard let descr, let fortran, let shape else {
                let missing = [("descr", descr), ("fortran_order", fortran), ("shape", shape)].filter { $0.1 == nil }.map { "'\($0.0)'" }
                throw fail("missing key \(missing.joined(separator: ", "))")
            }

            let descrText: String
            switch descr {
            case .string(let s): descrText = s
            case .list(_, let text):
                throw FormatError(NPY.format, "structured dtype \(text.prefix(200)) is not supported; supported dtypes: \(NPY.supportedDtypes)")
            default:
                throw fail("'descr' must be a dtype string, not \(descr.typeName)")
            }
            let (kind, bigEndian) = try NPY.parseDescr(descrText)

            guard case .bool(let fortranOrder) = fortran else {
                throw fail("'fortran_order' must be True or False, not \(fortran.typeName)")
            }
            guard case .tuple(let dims) = shape else {
                throw fail("'shape' must be a tuple of integers, not \(shape.typeName)")
            }
            var extents = [Int]()
            for d in dims {
                guard case .int(let n) = d else { throw fail("'shape' must hold integers, not \(d.typeName)") }
                extents.append(n)
            }
            return Header(descr: descrText, kind: kind, bigEndian: bigEndian, fortranOrder: fortranOrder, shape: extents)
        }

        mutating func parseValue(depth: Int) throws -> Literal {
            guard depth < 16 else { throw fail("nested too deeply") }
            skipWhitespace()
            guard position < bytes.endIndex else { throw fail("unexpected end of header") }
            let start = position
            let c = bytes[position]
            switch c {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                return .string(try parseString())
            case UInt8(ascii: "("):
                position += 1
                var items = [Literal]()
                var sawComma = false
                while true {
                    skipWhitespace()
                    if position < bytes.endIndex, bytes[position] == UInt8(ascii: ")") { position += 1; break }
                    if !items.isEmpty && !sawComma { throw fail("expected ',' or ')' in a tuple") }
                    items.append(try parseValue(depth: depth + 1))
                    skipWhitespace()
                    sawComma = position < bytes.endIndex && bytes[position] == UInt8(ascii: ",")
                    if sawComma { position += 1 }
                }
                // "(3)" is the integer 3 in Python, not a tuple.
                if items.count == 1 && !sawComma { throw fail("a one-element tuple needs a trailing comma, as in (3,)") }
                return .tuple(items)
            case UInt8(ascii: "["):
                position += 1
                var items = [Literal]()
                while true {
                    skipWhitespace()
                    if position < bytes.endIndex, bytes[position] == UInt8(ascii: "]") { position += 1; break }
                    items.append(try parseValue(depth: depth + 1))
                    skipWhitespace()
                    if position < bytes.endIndex, bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    break
                }
                return .list(items, text: decodeText(bytes[start ..< position]))
            case UInt8(ascii: "{"):
                position += 1
                var items = [(String, Literal)]()
                while true {
                    skipWhitespace()
                    if position < bytes.endIndex, bytes[position] == UInt8(ascii: "}") { position += 1; break }
                    guard case .string(let key) = try parseValue(depth: depth + 1) else {
                        throw fail("dict keys must be strings")
                    }
                    try expect(UInt8(ascii: ":"))
                    items.append((key, try parseValue(depth: depth + 1)))
                    skipWhitespace()
                    if position < bytes.endIndex, bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    break
                }
                return .dict(items, text: decodeText(bytes[start ..< position]))
            case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"):
                return .int(try parseInteger())
            default:
                for (word, value) in [("True", Literal.bool(true)), ("False", .bool(false)), ("None", .none)] {
                    let w = Array(word.utf8)
                    if bytes.endIndex - position >= w.count, Array(bytes[position ..< position + w.count]) == w {
                        let after = position + w.count
                        if after == bytes.endIndex || !Self.isIdentifierByte(bytes[after]) {
                            position = after
                            return value
                        }
                    }
                }
                throw fail("unexpected character '\(decodeText(bytes[position ..< position + 1]).replacingNewlines())'")
            }
        }

        static func isIdentifierByte(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b >= 0x80
        }

        mutating func parseString() throws -> String {
            let quote = bytes[position]
            position += 1
            let start = position
            while position < bytes.endIndex, bytes[position] != quote {
                switch bytes[position] {
                case UInt8(ascii: "\\"): throw fail("escape sequences in strings are not supported")
                case 0x0A, 0x0D: throw fail("unterminated string")
                default: position += 1
                }
            }
            guard position < bytes.endIndex else { throw fail("unterminated string") }
            let text = decodeText(bytes[start ..< position])
            position += 1
            return text
        }

        mutating func parseInteger() throws -> Int {
            var negative = false
            if bytes[position] == UInt8(ascii: "-") {
                negative = true
                position += 1
            }
            let start = position
            var value = 0
            while position < bytes.endIndex, bytes[position] >= 0x30, bytes[position] <= 0x39 {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(Int(bytes[position] - 0x30))
                guard !o1, !o2 else { throw fail("integer too large") }
                value = s
                position += 1
            }
            guard position > start else { throw fail("expected digits") }
            if position < bytes.endIndex, bytes[position] == UInt8(ascii: "L") { position += 1 } // Python 2 long
            if position < bytes.endIndex, Self.isIdentifierByte(bytes[position]) || bytes[position] == UInt8(ascii: ".") {
                throw fail("only decimal integers are accepted")
            }
            return negative ? -value : value
        }
    }

    /// Parses a dtype string such as '<f4', '>i2', '|u1', '|b1' or '=f8'.
    static func parseDescr(_ descr: String) throws -> (ElementKind, bigEndian: Bool) {
        var chars = Array(descr.unicodeScalars)
        var bigEndian = RawElements.hostIsBigEndian
        if let first = chars.first, "<>|=".unicodeScalars.contains(first) {
            if first == "<" { bigEndian = false }
            if first == ">" { bigEndian = true }
            chars.removeFirst()
        }
        let code = String(String.UnicodeScalarView(chars))
        let kind: ElementKind
        switch code {
        case "f2": kind = .float16
        case "f4": kind = .float32
        case "f8": kind = .float64
        case "u1": kind = .uint8
        case "i1": kind = .int8
        case "u2": kind = .uint16
        case "i2": kind = .int16
        case "u4": kind = .uint32
        case "i4": kind = .int32
        case "u8": kind = .uint64
        case "i8": kind = .int64
        case "b1": kind = .bool
        default:
            var hint = ""
            switch code.first {
            case "O": hint = " (object arrays hold pickled Python objects)"
            case "U", "S", "a": hint = " (string arrays)"
            case "c": hint = " (complex numbers)"
            case "M", "m": hint = " (dates and time deltas)"
            case "V": hint = " (raw void/structured data)"
            default: break
            }
            let shown = descr.count > 40 ? String(descr.prefix(40)) + "..." : descr
            throw FormatError(NPY.format, "unsupported dtype '\(shown)'\(hint); supported dtypes: \(NPY.supportedDtypes)")
        }
        return (kind, bigEndian)
    }
}

fileprivate extension String {
    /// The string with line breaks shown as \n, for one-line error messages.
    func replacingNewlines() -> String {
        var out = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\0": out += "\\0"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
