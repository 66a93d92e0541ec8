import Foundation

/// A `.safetensors` file: an 8-byte little-endian header length N, N bytes of JSON header
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`, then
/// the byte buffer that the offsets index (little-endian, C order).
///
/// Read: F32 and F64 (as float32/float64), F16 and BF16 (widened to float32), I64, I32, I16, I8,
/// U64, U32, U16, U8 and BOOL. The tensors must cover the buffer exactly, without gaps or
/// overlaps, as the format requires. Written: the types of `NumericArray` (F32, F64, integers,
/// BOOL), tensors in the given order, metadata keys sorted, header padded with spaces to a
/// multiple of 8 bytes.
public struct SafetensorsFile: Sendable {
    static let format = "safetensors"
    /// Headers longer than this are rejected (the reference implementation uses the same bound).
    static let maxHeaderLength = 100_000_000
    static let supportedDtypes = "F32, F64, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL"

    /// Tensors in the order of their data offsets.
    public var tensors: [(name: String, array: NumericArray)]
    public var metadata: [String: String]

    public init(tensors: [(name: String, array: NumericArray)], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    public func tensor(_ name: String) -> NumericArray? {
        tensors.first { $0.name == name }?.array
    }

    public static func decode(_ bytes: [UInt8], limits: DecodeLimits = .default) throws -> SafetensorsFile {
        if bytes.isEmpty { throw FormatError(format, "empty input: not a .safetensors file") }
        var reader = ByteReader(bytes, format: format)
        let declared = try reader.readLE(UInt64.self, "header length")
        guard declared <= UInt64(maxHeaderLength) else {
            throw FormatError(format, "header length \(declared) exceeds the \(maxHeaderLength) bytes accepted")
        }
        let headerLength = Int(declared)
        guard headerLength <= reader.remaining else {
            throw FormatError(format, "truncated: the header declares \(headerLength) bytes but only \(reader.remaining) follow")
        }
        guard headerLength >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw FormatError(format, "the header must be a JSON object starting with '{'")
        }
        let headerBytes = try reader.readBytes(headerLength, "header")
        guard strictUTF8(headerBytes) != nil else {
            throw FormatError(format, "the header is not valid UTF-8")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            throw FormatError(format, "the header is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else {
            throw FormatError(format, "the header must be a JSON object")
        }

        let bufferStart = reader.offset
        let bufferLength = bytes.count - bufferStart
        var metadata = [String: String]()
        var entries = [(name: String, kind: ElementKind, shape: [Int], count: Int, begin: Int, end: Int)]()
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw FormatError(format, "__metadata__ must be an object of strings")
                }
                for (key, item) in map {
                    guard let text = jsonString(item) else {
                        throw FormatError(format, "__metadata__ value for '\(key)' must be a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw FormatError(format, "tensor '\(name)' must be described by a JSON object")
            }
            for key in info.keys where !["dtype", "shape", "data_offsets"].contains(key) {
                throw FormatError(format, "tensor '\(name)' has an unexpected field '\(key)'")
            }
            guard let dtype = info["dtype"].flatMap(jsonString) else {
                throw FormatError(format, "tensor '\(name)' needs a string 'dtype'")
            }
            guard let kind = elementKind(dtype) else {
                throw FormatError(format, "tensor '\(name)' has unsupported dtype '\(dtype.prefix(40))'; supported dtypes: \(supportedDtypes)")
            }
            guard let shapeList = info["shape"] as? [Any], let shape = jsonIntegers(shapeList) else {
                throw FormatError(format, "tensor '\(name)' needs a 'shape' list of integers")
            }
            guard let offsetList = info["data_offsets"] as? [Any], let offsets = jsonIntegers(offsetList),
                  offsets.count == 2 else {
                throw FormatError(format, "tensor '\(name)' needs 'data_offsets' as a list of two integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= bufferLength else {
                throw FormatError(format, "tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(bufferLength)-byte buffer")
            }
            let count = try limits.checkShape(shape, format: format)
            guard end - begin == count * kind.itemSize else {
                throw FormatError(format, "tensor '\(name)' of shape \(shape) \(dtype) needs \(count * kind.itemSize) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            entries.append((name, kind, shape, count, begin, end))
        }

        // The tensors must tile the buffer: sorted by offset, each starts where the last ended.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        for entry in entries {
            guard entry.begin == position else {
                let problem = entry.begin < position ? "overlaps the previous tensor" : "leaves a gap after byte \(position)"
                throw FormatError(format, "tensor '\(entry.name)' at data_offsets [\(entry.begin), \(entry.end)] \(problem)")
            }
            position = entry.end
        }
        guard position == bufferLength else {
            throw FormatError(format, "the tensors cover \(position) bytes but the buffer holds \(bufferLength): unindexed trailing bytes")
        }

        let tensors = entries.map { entry in
            let storage = entry.kind.decode(bytes, offset: bufferStart + entry.begin,
                                            count: entry.count, bigEndian: false)
            return (name: entry.name, array: NumericArray(shape: entry.shape, storage: storage))
        }
        return SafetensorsFile(tensors: tensors, metadata: metadata)
    }

    public static func encode(_ tensors: [(name: String, array: NumericArray)], metadata: [String: String] = [:]) -> [UInt8] {
        var header = "{"
        var fields = [String]()
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
            fields.append("\"__metadata__\":{" + items.joined(separator: ",") + "}")
        }
        var names = Set<String>()
        var offset = 0
        for (name, array) in tensors {
            precondition(name != "__metadata__" && names.insert(name).inserted, "duplicate or reserved tensor name '\(name)'")
            let size = array.count * ElementKind(of: array.storage).itemSize
            let shape = array.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonQuoted(name)):{\"dtype\":\"\(dtypeName(array.storage))\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        headerBytes += [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8)
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        out.appendLE(UInt64(headerBytes.count))
        out += headerBytes
        for (_, array) in tensors { out += RawElements.littleEndianBytes(array.storage) }
        return out
    }

    // MARK: - Internals

    static func elementKind(_ dtype: String) -> ElementKind? {
        switch dtype {
        case "F32": return .float32
        case "F64": return .float64
        case "F16": return .float16
        case "BF16": return .bfloat16
        case "I64": return .int64
        case "I32": return .int32
        case "I16": return .int16
        case "I8": return .int8
        case "U64": return .uint64
        case "U32": return .uint32
        case "U16": return .uint16
        case "U8": return .uint8
        case "BOOL": return .bool
        default: return nil
        }
    }

    static func dtypeName(_ storage: NumericArray.Storage) -> String {
        switch storage {
        case .float32: return "F32"
        case .float64: return "F64"
        case .uint8: return "U8"
        case .int8: return "I8"
        case .uint16: return "U16"
        case .int16: return "I16"
        case .uint32: return "U32"
        case .int32: return "I32"
        case .uint64: return "U64"
        case .int64: return "I64"
        case .bool: return "BOOL"
        }
    }

    /// A JSON string value (numbers and booleans are not accepted as strings).
    static func jsonString(_ value: Any) -> String? {
        if value is NSNumber { return nil }
        return value as? String
    }

    /// JSON numbers that are integers representable as Int; nil for floats, booleans, big
    /// numbers or anything else.
    static func jsonIntegers(_ values: [Any]) -> [Int]? {
        var result = [Int]()
        result.reserveCapacity(values.count)
        for value in values {
            guard let number = value as? NSNumber, !(value is NSDecimalNumber) else { return nil }
            switch String(cString: number.objCType) {
            case "c", "C", "B", "f", "d": return nil // booleans and floating-point numbers
            case "Q", "L", "I", "S":
                guard number.uint64Value <= UInt64(Int.max) else { return nil }
                result.append(Int(number.uint64Value))
            default:
                result.append(Int(truncatingIfNeeded: number.int64Value))
            }
        }
        return result
    }

    static func jsonQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
