/// A restricted Python unpickler for PyTorch checkpoints (pickle protocols 0-5).
///
/// It is a data reader, not a Python: it builds values from a closed set (None, bool, int, float,
/// str, bytes, tuple, list, dict, set, and inert objects), resolves globals only against a
/// fixed allowlist (see `PickleGlobal.resolve`) and never runs anything. Every other global is
/// refused with a `FormatError` that names it.
///
/// Containers live in the unpickler's arena and values refer to them by index. Memo references
/// therefore share one container (as Python's do), reference cycles cost nothing, and no value is
/// a deep Swift structure whose copy or release could recurse without bound.
///
/// Bounds: stack depth, MARK depth, memo entries and created objects are capped; every declared
/// length is checked against the bytes that remain before anything is read; total work
/// (opcodes, items moved, dictionary-key bytes hashed) is bounded by a multiple of the input size.

/// A value on the unpickler's stack. Container cases hold an index into the unpickler's arena.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer beyond 64 bits: minimal little-endian two's complement (only compared, never used).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(Int)
    case list(Int)
    case dict(Int)
    /// A set or frozenset.
    case set(Int)
    case global(PickleGlobal)
    /// An instance of an allowlisted class (an inert module node, or a torch.device).
    case object(Int)
    case storage(Int)
    case tensor(Int)

    /// The Python type name, for messages.
    var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .set: return "set"
        case .global(let g): return "global '\(g.qualifiedName)'"
        case .object: return "object"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

/// Element types of torch storages (`torch.FloatStorage`, ...).
enum TorchElementType: Sendable, Equatable {
    case float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool

    init?(storageName: String) {
        switch storageName {
        case "FloatStorage": self = .float32
        case "DoubleStorage": self = .float64
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage": self = .uint8
        case "BoolStorage": self = .bool
        default: return nil
        }
    }

    var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    var name: String {
        switch self {
        case .float32: return "float32"
        case .float64: return "float64"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .int64: return "int64"
        case .int32: return "int32"
        case .int16: return "int16"
        case .int8: return "int8"
        case .uint8: return "uint8"
        case .bool: return "bool"
        }
    }

    var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: return true
        default: return false
        }
    }
}

/// A global that passed the allowlist, with what the unpickler may do with it.
struct PickleGlobal {
    enum Role {
        case orderedDict
        case set
        case frozenset
        case rebuildTensorV2
        /// The older `_rebuild_tensor(storage, offset, size, stride)` of legacy checkpoints.
        case rebuildTensor
        case rebuildParameter
        case rebuildParameterWithState
        case storageType(TorchElementType)
        /// A torch.nn or RevSCI module class: NEWOBJ/OBJ make an inert node holding its BUILD state.
        case moduleClass
        case device
    }

    let module: String
    let name: String
    let role: Role

    var qualifiedName: String { module + "." + name }

    /// The allowlist. Everything not matched here is refused.
    static func resolve(module: String, name: String) throws -> PickleGlobal {
        func make(_ role: Role) -> PickleGlobal { PickleGlobal(module: module, name: name, role: role) }
        switch (module, name) {
        case ("collections", "OrderedDict"): return make(.orderedDict)
        case ("builtins", "set"), ("__builtin__", "set"): return make(.set)
        case ("builtins", "frozenset"), ("__builtin__", "frozenset"): return make(.frozenset)
        case ("torch._utils", "_rebuild_tensor_v2"): return make(.rebuildTensorV2)
        case ("torch._utils", "_rebuild_tensor"): return make(.rebuildTensor)
        case ("torch._utils", "_rebuild_parameter"): return make(.rebuildParameter)
        case ("torch._utils", "_rebuild_parameter_with_state"): return make(.rebuildParameterWithState)
        case ("torch", "device"): return make(.device)
        default: break
        }
        if module == "torch" || module == "torch.cuda", let type = TorchElementType(storageName: name) {
            return make(.storageType(type))
        }
        if isIdentifier(name), isDottedIdentifier(module) {
            if module.hasPrefix("torch.nn.modules.") || module == "my_tools" || module.hasPrefix("my_tools.") {
                return make(.moduleClass)
            }
            if module == "models", name == "re_3dcnn" || name == "re_3dcnn1" {
                return make(.moduleClass)
            }
        }
        throw FormatError(Unpickler.format, "refusing to load '\(displayName(module, name))': checkpoints may only hold tensors, containers and RevSCI/torch module classes; convert it to safetensors in a trusted Python environment (torch.load it there, then safetensors.torch.save_file(model.state_dict(), 'weights.safetensors'))")
    }

    /// `module.name` with control and non-ASCII characters escaped, at most 120 characters.
    static func displayName(_ module: String, _ name: String) -> String {
        var out = ""
        for scalar in (module + "." + name).unicodeScalars {
            if out.count >= 120 { out += "..."; break }
            if scalar.value >= 0x20, scalar.value < 0x7F { out.unicodeScalars.append(scalar) } else {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            }
        }
        return out
    }

    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
        }
    }

    static func isDottedIdentifier(_ text: String) -> Bool {
        text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isIdentifier(String($0)) }
    }
}

/// A dict (or OrderedDict): insertion-ordered keys and values, with a hash index.
struct PickleDict {
    var ordered: Bool
    var keys: [PickleValue] = []
    var values: [PickleValue] = []
    var index: [PickleKey: Int] = [:]
}

/// The hashable form of a dictionary key.
indirect enum PickleKey: Hashable {
    case none
    case int(Int64)
    case bigInt([UInt8])
    case float(UInt64)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleKey])
    /// Objects hashed by identity: (kind, arena index).
    case identity(Int, Int)
    case global(String)
}

/// An instance of an allowlisted class.
struct PickleObject {
    let className: String
    let isModule: Bool
    var state: PickleValue?
}

/// A storage from a persistent id: elements [viewOffset, viewOffset + viewCount) of the root
/// storage `key`, which holds `numel` elements of `dtype`.
struct PickledStorage {
    let dtype: TorchElementType
    let key: String
    let location: String
    let numel: Int
    let viewOffset: Int
    let viewCount: Int
}

/// A tensor view: element (i0, i1, ...) is storage element offset + sum(ik * stride[k]).
struct PickledTensor {
    let storage: Int
    let offset: Int
    let shape: [Int]
    let stride: [Int]
    let count: Int
}

/// The restricted unpickler. One instance reads one pickle (call `load()` once).
struct Unpickler {
    static let format = "pth"
    static let maxStack = 1 << 18
    static let maxMarks = 1 << 14
    static let maxMemo = 1 << 22
    static let maxObjects = 1 << 22
    static let maxKeyDepth = 32
    static let maxIntegerBytes = 32
    static let maxGlobalNameBytes = 1024

    private var reader: ByteReader
    let limits: DecodeLimits
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private(set) var tuples: [[PickleValue]] = []
    private(set) var lists: [[PickleValue]] = []
    private(set) var dicts: [PickleDict] = []
    private(set) var sets: [[PickleValue]] = []
    private(set) var objects: [PickleObject] = []
    private(set) var storages: [PickledStorage] = []
    private(set) var tensors: [PickledTensor] = []
    private var objectCount = 0
    private var work = 0
    private let workLimit: Int

    /// Reads the pickle that starts at `offset` in `bytes`.
    init(_ bytes: [UInt8], offset: Int = 0, limits: DecodeLimits = .default) {
        reader = ByteReader(bytes, format: Self.format, offset: offset)
        self.limits = limits
        workLimit = 1_000_000 + 64 * max(bytes.count - offset, 0)
    }

    /// Where the reader stands: just after STOP once `load()` has returned.
    var offset: Int { reader.offset }

    /// Runs the pickle to its STOP opcode and returns the value it leaves.
    mutating func load() throws -> PickleValue {
        while true {
            let start = reader.offset
            guard !reader.isAtEnd else {
                throw FormatError(Self.format, "the pickle stream ends at byte \(start) without a STOP opcode: the file is truncated")
            }
            let op = try reader.readUInt8("pickle opcode")
            do {
                try charge(1)
                if let result = try execute(op) { return result }
            } catch let error as FormatError {
                throw FormatError(Self.format, "pickle opcode \(Self.opcodeName(op)) at byte \(start): \(error.message)")
            }
        }
    }

    // MARK: - Arena access

    func dictValue(_ index: Int, forKey key: String) -> PickleValue? {
        dicts[index].index[.string(key)].map { dicts[index].values[$0] }
    }

    // MARK: - Opcodes

    private static func opcodeName(_ op: UInt8) -> String {
        switch op {
        case 0x28: return "MARK"
        case 0x29: return "EMPTY_TUPLE"
        case 0x2E: return "STOP"
        case 0x30: return "POP"
        case 0x31: return "POP_MARK"
        case 0x32: return "DUP"
        case 0x42: return "BINBYTES"
        case 0x43: return "SHORT_BINBYTES"
        case 0x46: return "FLOAT"
        case 0x47: return "BINFLOAT"
        case 0x49: return "INT"
        case 0x4A: return "BININT"
        case 0x4B: return "BININT1"
        case 0x4C: return "LONG"
        case 0x4D: return "BININT2"
        case 0x4E: return "NONE"
        case 0x50: return "PERSID"
        case 0x51: return "BINPERSID"
        case 0x52: return "REDUCE"
        case 0x53: return "STRING"
        case 0x54: return "BINSTRING"
        case 0x55: return "SHORT_BINSTRING"
        case 0x56: return "UNICODE"
        case 0x58: return "BINUNICODE"
        case 0x5D: return "EMPTY_LIST"
        case 0x61: return "APPEND"
        case 0x62: return "BUILD"
        case 0x63: return "GLOBAL"
        case 0x64: return "DICT"
        case 0x65: return "APPENDS"
        case 0x67: return "GET"
        case 0x68: return "BINGET"
        case 0x69: return "INST"
        case 0x6A: return "LONG_BINGET"
        case 0x6C: return "LIST"
        case 0x6F: return "OBJ"
        case 0x70: return "PUT"
        case 0x71: return "BINPUT"
        case 0x72: return "LONG_BINPUT"
        case 0x73: return "SETITEM"
        case 0x74: return "TUPLE"
        case 0x75: return "SETITEMS"
        case 0x7D: return "EMPTY_DICT"
        case 0x80: return "PROTO"
        case 0x81: return "NEWOBJ"
        case 0x82: return "EXT1"
        case 0x83: return "EXT2"
        case 0x84: return "EXT4"
        case 0x85: return "TUPLE1"
        case 0x86: return "TUPLE2"
        case 0x87: return "TUPLE3"
        case 0x88: return "NEWTRUE"
        case 0x89: return "NEWFALSE"
        case 0x8A: return "LONG1"
        case 0x8B: return "LONG4"
        case 0x8C: return "SHORT_BINUNICODE"
        case 0x8D: return "BINUNICODE8"
        case 0x8E: return "BINBYTES8"
        case 0x8F: return "EMPTY_SET"
        case 0x90: return "ADDITEMS"
        case 0x91: return "FROZENSET"
        case 0x92: return "NEWOBJ_EX"
        case 0x93: return "STACK_GLOBAL"
        case 0x94: return "MEMOIZE"
        case 0x95: return "FRAME"
        case 0x96: return "BYTEARRAY8"
        case 0x97: return "NEXT_BUFFER"
        case 0x98: return "READONLY_BUFFER"
        default: return "0x" + (op < 16 ? "0" : "") + String(op, radix: 16)
        }
    }

    /// Executes one opcode; returns the result at STOP.
    private mutating func execute(_ op: UInt8) throws -> PickleValue? {
        switch op {
        // Framing and protocol
        case 0x80: // PROTO
            let version = try reader.readUInt8("protocol number")
            guard version <= 5 else { throw error("pickle protocol \(version) is not supported (0 to 5 are)") }
        case 0x95: // FRAME: a length hint; the opcodes that follow are read as usual
            let length = try reader.readLE(UInt64.self, "frame length")
            guard length <= UInt64(reader.remaining) else {
                throw error("a frame of \(length) bytes is declared but only \(reader.remaining) remain: the file is truncated")
            }
        case 0x2E: // STOP
            return try pop()

        // Stack manipulation
        case 0x28: // MARK
            guard marks.count < Self.maxMarks else { throw error("more than \(Self.maxMarks) nested MARKs") }
            marks.append(stack.count)
        case 0x30: // POP: with nothing above the last MARK, Python discards the MARK
            if stack.count > markBase { stack.removeLast() } else if !marks.isEmpty { marks.removeLast() } else {
                throw error("POP on an empty stack")
            }
        case 0x31: // POP_MARK
            _ = try popMark()
        case 0x32: // DUP
            try push(try top())

        // Constants and numbers
        case 0x4E: try push(.none)
        case 0x88: try push(.bool(true))
        case 0x89: try push(.bool(false))
        case 0x4A: try push(.int(Int64(try reader.readLE(Int32.self, "BININT argument"))))
        case 0x4B: try push(.int(Int64(try reader.readUInt8("BININT1 argument"))))
        case 0x4D: try push(.int(Int64(try reader.readLE(UInt16.self, "BININT2 argument"))))
        case 0x8A: // LONG1
            let n = Int(try reader.readUInt8("LONG1 length"))
            try push(try readLong(n))
        case 0x8B: // LONG4
            let n = Int(try reader.readLE(Int32.self, "LONG4 length"))
            guard n >= 0 else { throw error("negative LONG4 length \(n)") }
            try push(try readLong(n))
        case 0x47: // BINFLOAT: big-endian IEEE double
            try push(.float(Double(bitPattern: try reader.readBE(UInt64.self, "BINFLOAT argument"))))
        case 0x49: // INT (text); "00"/"01" are False/True
            let text = try readTextLine("INT argument")
            if text == "00" { try push(.bool(false)) } else if text == "01" { try push(.bool(true)) } else {
                try push(.int(try parseInteger(text)))
            }
        case 0x4C: // LONG (text), optional trailing L
            var text = try readTextLine("LONG argument")
            if text.hasSuffix("L") { text.removeLast() }
            try push(.int(try parseInteger(text)))
        case 0x46: // FLOAT (text)
            let text = try readTextLine("FLOAT argument")
            guard let value = Double(text) else { throw error("'\(text.prefix(40))' is not a float") }
            try push(.float(value))

        // Strings and bytes
        case 0x58: // BINUNICODE
            let n = Int(try reader.readLE(UInt32.self, "BINUNICODE length"))
            try push(.string(try readUTF8(n)))
        case 0x8C: // SHORT_BINUNICODE
            let n = Int(try reader.readUInt8("SHORT_BINUNICODE length"))
            try push(.string(try readUTF8(n)))
        case 0x8D: // BINUNICODE8
            let n = try readLength64("BINUNICODE8")
            try push(.string(try readUTF8(n)))
        case 0x54: // BINSTRING: signed 32-bit length
            let n = Int(try reader.readLE(Int32.self, "BINSTRING length"))
            guard n >= 0 else { throw error("negative BINSTRING length \(n)") }
            try push(.string(Self.decodeByteString(try reader.readBytes(n, "BINSTRING data"))))
        case 0x55: // SHORT_BINSTRING
            let n = Int(try reader.readUInt8("SHORT_BINSTRING length"))
            try push(.string(Self.decodeByteString(try reader.readBytes(n, "SHORT_BINSTRING data"))))
        case 0x42: // BINBYTES
            let n = Int(try reader.readLE(UInt32.self, "BINBYTES length"))
            try push(.bytes(Array(try reader.readBytes(n, "BINBYTES data"))))
        case 0x43: // SHORT_BINBYTES
            let n = Int(try reader.readUInt8("SHORT_BINBYTES length"))
            try push(.bytes(Array(try reader.readBytes(n, "SHORT_BINBYTES data"))))
        case 0x8E, 0x96: // BINBYTES8, BYTEARRAY8
            let n = try readLength64(Self.opcodeName(op))
            try push(.bytes(Array(try reader.readBytes(n, "\(Self.opcodeName(op)) data"))))
        case 0x53: // STRING (text): a quoted Python bytes repr
            let line = try readLine("STRING argument")
            try push(.string(Self.decodeByteString(try Self.unescapeQuoted(line))))
        case 0x56: // UNICODE (text): raw-unicode-escape
            let line = try readLine("UNICODE argument")
            try push(.string(try Self.decodeRawUnicodeEscape(line)))

        // Containers
        case 0x29: try push(try newTuple([]))
        case 0x85:
            let a = try pop()
            try push(try newTuple([a]))
        case 0x86:
            let b = try pop(), a = try pop()
            try push(try newTuple([a, b]))
        case 0x87:
            let c = try pop(), b = try pop(), a = try pop()
            try push(try newTuple([a, b, c]))
        case 0x74: try push(try newTuple(try popMark()))
        case 0x5D: try push(try newList([]))
        case 0x6C: try push(try newList(try popMark()))
        case 0x7D: try push(try newDict(ordered: false))
        case 0x64: // DICT
            let items = try popMark()
            let dict = try newDict(ordered: false)
            try setItems(dict, items)
            try push(dict)
        case 0x8F: try push(try newSet([]))
        case 0x91: try push(try newSet(try popMark()))
        case 0x61: // APPEND
            let item = try pop()
            guard case .list(let index) = try top() else { throw error("APPEND to a \(try top().typeName), not a list") }
            lists[index].append(item)
        case 0x65: // APPENDS
            let items = try popMark()
            guard case .list(let index) = try top() else { throw error("APPENDS to a \(try top().typeName), not a list") }
            lists[index].append(contentsOf: items)
        case 0x73: // SETITEM
            let value = try pop(), key = try pop()
            try setItems(try top(), [key, value])
        case 0x75: // SETITEMS
            let items = try popMark()
            try setItems(try top(), items)
        case 0x90: // ADDITEMS
            let items = try popMark()
            guard case .set(let index) = try top() else { throw error("ADDITEMS to a \(try top().typeName), not a set") }
            sets[index].append(contentsOf: items)

        // Memo
        case 0x71: try memoize(Int(try reader.readUInt8("BINPUT index")))
        case 0x72: try memoize(Int(try reader.readLE(UInt32.self, "LONG_BINPUT index")))
        case 0x70: try memoize(try parseIndex(try readTextLine("PUT index")))
        case 0x94: try memoize(memo.count)
        case 0x68: try push(try recall(Int(try reader.readUInt8("BINGET index"))))
        case 0x6A: try push(try recall(Int(try reader.readLE(UInt32.self, "LONG_BINGET index"))))
        case 0x67: try push(try recall(try parseIndex(try readTextLine("GET index"))))

        // Globals, calls and objects
        case 0x63: // GLOBAL
            let module = try readGlobalLine("GLOBAL module")
            let name = try readGlobalLine("GLOBAL name")
            try push(.global(try PickleGlobal.resolve(module: module, name: name)))
        case 0x93: // STACK_GLOBAL
            let name = try pop(), module = try pop()
            guard case .string(let m) = module, case .string(let n) = name else {
                throw error("STACK_GLOBAL needs two strings, found \(module.typeName) and \(name.typeName)")
            }
            try push(.global(try PickleGlobal.resolve(module: m, name: n)))
        case 0x52: // REDUCE
            let args = try pop(), callable = try pop()
            try push(try reduce(callable, args))
        case 0x81: // NEWOBJ
            let args = try pop(), cls = try pop()
            guard case .tuple = args else { throw error("NEWOBJ arguments must be a tuple, found \(args.typeName)") }
            try push(try instantiate(cls))
        case 0x92: // NEWOBJ_EX
            let kwargs = try pop(), args = try pop(), cls = try pop()
            guard case .tuple = args, case .dict = kwargs else {
                throw error("NEWOBJ_EX needs a tuple and a dict, found \(args.typeName) and \(kwargs.typeName)")
            }
            try push(try instantiate(cls))
        case 0x6F: // OBJ: MARK cls args...
            let items = try popMark()
            guard let cls = items.first else { throw error("OBJ without a class") }
            try push(try instantiate(cls))
        case 0x69: // INST: module and name lines, then MARK args...
            let module = try readGlobalLine("INST module")
            let name = try readGlobalLine("INST name")
            let cls = PickleValue.global(try PickleGlobal.resolve(module: module, name: name))
            _ = try popMark()
            try push(try instantiate(cls))
        case 0x62: // BUILD
            let state = try pop()
            switch try top() {
            case .object(let index) where objects[index].isModule:
                objects[index].state = state
            case .dict:
                break // an OrderedDict's attributes (`_metadata` of a state dict): not needed
            case let other:
                throw error("BUILD (setting the state of) a \(other.typeName) is not supported")
            }
        case 0x51: // BINPERSID
            let pid = try pop()
            try push(try persistentLoad(pid))
        case 0x50: // PERSID (text id)
            let text = try readTextLine("PERSID argument")
            try push(try persistentLoad(.string(text)))

        case 0x82, 0x83, 0x84:
            throw error("the extension registry (copyreg) is not supported")
        case 0x97, 0x98:
            throw error("out-of-band pickle buffers are not supported")
        default:
            throw error("unknown opcode byte: the data is not a pickle stream or is corrupt")
        }
        return nil
    }

    // MARK: - Stack, marks and memo

    private func error(_ message: String) -> FormatError { FormatError(Self.format, message) }

    private mutating func charge(_ amount: Int) throws {
        work += amount
        guard work <= workLimit else {
            throw error("the pickle needs more work than its size allows (\(workLimit) steps): refusing a possible decompression-bomb pattern")
        }
    }

    private var markBase: Int { marks.last ?? 0 }

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maxStack else { throw error("the pickle stack exceeds \(Self.maxStack) entries") }
        stack.append(value)
    }

    private mutating func pop() throws -> PickleValue {
        guard stack.count > markBase else {
            throw error(marks.isEmpty ? "stack underflow: the pickle is malformed" : "stack underflow past a MARK: the pickle is malformed")
        }
        return stack.removeLast()
    }

    private func top() throws -> PickleValue {
        guard stack.count > markBase, let value = stack.last else {
            throw error("stack underflow: the pickle is malformed")
        }
        return value
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw error("no MARK on the stack") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        try charge(items.count)
        return items
    }

    private mutating func memoize(_ index: Int) throws {
        let value = try top()
        if memo[index] == nil, memo.count >= Self.maxMemo {
            throw error("more than \(Self.maxMemo) memo entries")
        }
        memo[index] = value
    }

    private func recall(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw error("memo entry \(index) was never set") }
        return value
    }

    private mutating func countObject() throws {
        objectCount += 1
        guard objectCount <= Self.maxObjects else { throw error("the pickle creates more than \(Self.maxObjects) objects") }
    }

    private mutating func newTuple(_ items: [PickleValue]) throws -> PickleValue {
        try countObject()
        tuples.append(items)
        return .tuple(tuples.count - 1)
    }

    private mutating func newList(_ items: [PickleValue]) throws -> PickleValue {
        try countObject()
        lists.append(items)
        return .list(lists.count - 1)
    }

    private mutating func newSet(_ items: [PickleValue]) throws -> PickleValue {
        try countObject()
        sets.append(items)
        return .set(sets.count - 1)
    }

    private mutating func newDict(ordered: Bool) throws -> PickleValue {
        try countObject()
        dicts.append(PickleDict(ordered: ordered))
        return .dict(dicts.count - 1)
    }

    /// Sets key/value pairs (`items` alternates keys and values) in the dict `target`.
    private mutating func setItems(_ target: PickleValue, _ items: [PickleValue]) throws {
        guard case .dict(let index) = target else { throw error("setting items of a \(target.typeName), not a dict") }
        guard items.count % 2 == 0 else { throw error("an odd number of items (\(items.count)) for key/value pairs") }
        var i = 0
        while i < items.count {
            let key = try hashKey(items[i], depth: 0)
            if let position = dicts[index].index[key] {
                dicts[index].values[position] = items[i + 1]
            } else {
                dicts[index].index[key] = dicts[index].keys.count
                dicts[index].keys.append(items[i])
                dicts[index].values.append(items[i + 1])
            }
            i += 2
        }
    }

    /// The hashable form of a value used as a dictionary key; charges the bytes it hashes.
    private mutating func hashKey(_ value: PickleValue, depth: Int) throws -> PickleKey {
        try charge(1)
        switch value {
        case .none: return .none
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let v): return .int(v)
        case .bigInt(let b):
            try charge(b.count)
            return .bigInt(b)
        case .float(let d):
            if d == d.rounded(), abs(d) < 9.0e18 { return .int(Int64(d)) }
            return .float(d.bitPattern)
        case .string(let s):
            try charge(s.utf8.count / 8)
            return .string(s)
        case .bytes(let b):
            try charge(b.count / 8)
            return .bytes(b)
        case .tuple(let index):
            guard depth < Self.maxKeyDepth else { throw error("a dictionary key nests tuples more than \(Self.maxKeyDepth) deep") }
            var parts = [PickleKey]()
            parts.reserveCapacity(tuples[index].count)
            for item in tuples[index] { parts.append(try hashKey(item, depth: depth + 1)) }
            return .tuple(parts)
        case .global(let g): return .global(g.qualifiedName)
        case .object(let index): return .identity(0, index)
        case .storage(let index): return .identity(1, index)
        case .tensor(let index): return .identity(2, index)
        case .list, .dict, .set:
            throw error("unhashable \(value.typeName) used as a dictionary key")
        }
    }

    // MARK: - Reading arguments

    /// A 64-bit length that must fit in the bytes that remain.
    private mutating func readLength64(_ what: String) throws -> Int {
        let length = try reader.readLE(UInt64.self, "\(what) length")
        guard length <= UInt64(reader.remaining) else {
            throw error("\(what) declares \(length) bytes but only \(reader.remaining) remain: the file is truncated or corrupt")
        }
        return Int(length)
    }

    private mutating func readUTF8(_ count: Int) throws -> String {
        let data = try reader.readBytes(count, "string data")
        guard let text = strictUTF8(data) else { throw error("a string is not valid UTF-8") }
        return text
    }

    /// An `n`-byte little-endian two's complement integer (LONG1/LONG4).
    private mutating func readLong(_ n: Int) throws -> PickleValue {
        var data = Array(try reader.readBytes(n, "long integer data"))
        if data.isEmpty { return .int(0) }
        // Drop redundant sign-extension bytes.
        while data.count > 1 {
            let last = data[data.count - 1], next = data[data.count - 2]
            if (last == 0 && next & 0x80 == 0) || (last == 0xFF && next & 0x80 != 0) { data.removeLast() } else { break }
        }
        if data.count <= 8 {
            var value: UInt64 = data[data.count - 1] & 0x80 != 0 ? ~0 : 0
            for (i, byte) in data.enumerated() {
                value &= ~(UInt64(0xFF) << (8 * UInt64(i)))
                value |= UInt64(byte) << (8 * UInt64(i))
            }
            return .int(Int64(bitPattern: value))
        }
        guard data.count <= Self.maxIntegerBytes else {
            throw error("an integer of \(data.count) bytes is larger than any checkpoint needs")
        }
        return .bigInt(data)
    }

    /// A text line (protocol 0 argument) without its newline.
    private mutating func readLine(_ what: String) throws -> ArraySlice<UInt8> {
        let bytes = reader.bytes
        let start = reader.offset
        guard let end = bytes[start...].firstIndex(of: 0x0A) else {
            throw error("\(what): no end of line before the end of the data (truncated)")
        }
        try reader.skip(end - start + 1, what)
        return bytes[start ..< end]
    }

    private mutating func readTextLine(_ what: String) throws -> String {
        let line = try readLine(what)
        guard line.count <= 4096, let text = strictUTF8(line) else {
            throw error("\(what) is not a short text line")
        }
        return text
    }

    private mutating func readGlobalLine(_ what: String) throws -> String {
        let line = try readLine(what)
        guard line.count <= Self.maxGlobalNameBytes else { throw error("\(what) is longer than \(Self.maxGlobalNameBytes) bytes") }
        guard let text = strictUTF8(line) else { throw error("\(what) is not valid UTF-8") }
        return text
    }

    private func parseInteger(_ text: String) throws -> Int64 {
        let trimmed = text.hasPrefix("+") ? String(text.dropFirst()) : text
        guard let value = Int64(trimmed) else {
            throw error("'\(text.prefix(40))' is not an integer within 64 bits")
        }
        return value
    }

    private func parseIndex(_ text: String) throws -> Int {
        guard let value = Int(text), value >= 0 else { throw error("'\(text.prefix(40))' is not a memo index") }
        return value
    }

    /// Python 2 byte strings: UTF-8 when valid, else Latin-1.
    static func decodeByteString(_ bytes: some Collection<UInt8>) -> String {
        if let text = strictUTF8(bytes) { return text }
        var out = ""
        out.unicodeScalars.append(contentsOf: bytes.map { Unicode.Scalar($0) })
        return out
    }

    /// The bytes of a quoted Python 2 string repr ('...' or "..."), escapes decoded.
    static func unescapeQuoted(_ line: ArraySlice<UInt8>) throws -> [UInt8] {
        guard line.count >= 2, let first = line.first, first == line.last, first == 0x27 || first == 0x22 else {
            throw FormatError(format, "the STRING argument must be quoted")
        }
        let body = Array(line.dropFirst().dropLast())
        var out = [UInt8]()
        out.reserveCapacity(body.count)
        var i = 0
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30 ... 0x39: return c - 0x30
            case 0x41 ... 0x46: return c - 0x41 + 10
            case 0x61 ... 0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        while i < body.count {
            let c = body[i]
            guard c == 0x5C, i + 1 < body.count else { out.append(c); i += 1; continue }
            let e = body[i + 1]
            i += 2
            switch e {
            case 0x6E: out.append(0x0A) // \n
            case 0x72: out.append(0x0D) // \r
            case 0x74: out.append(0x09) // \t
            case 0x61: out.append(0x07) // \a
            case 0x62: out.append(0x08) // \b
            case 0x66: out.append(0x0C) // \f
            case 0x76: out.append(0x0B) // \v
            case 0x5C, 0x27, 0x22: out.append(e)
            case 0x0A: break // line continuation
            case 0x78: // \xhh
                guard i + 1 < body.count, let h = hexValue(body[i]), let l = hexValue(body[i + 1]) else {
                    throw FormatError(format, "invalid \\x escape in a STRING argument")
                }
                out.append(h << 4 | l)
                i += 2
            case 0x30 ... 0x37: // octal, up to three digits
                var value = Int(e - 0x30)
                var digits = 1
                while digits < 3, i < body.count, body[i] >= 0x30, body[i] <= 0x37 {
                    value = value * 8 + Int(body[i] - 0x30)
                    i += 1
                    digits += 1
                }
                out.append(UInt8(truncatingIfNeeded: value))
            default:
                out.append(0x5C)
                out.append(e)
            }
        }
        return out
    }

    /// Python's raw-unicode-escape: bytes are Latin-1 code points, except \uXXXX and \UXXXXXXXX.
    static func decodeRawUnicodeEscape(_ line: ArraySlice<UInt8>) throws -> String {
        let bytes = Array(line)
        var out = ""
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x5C, i + 1 < bytes.count, bytes[i + 1] == 0x75 || bytes[i + 1] == 0x55 {
                let digits = bytes[i + 1] == 0x75 ? 4 : 8
                guard i + 2 + digits <= bytes.count,
                      let value = UInt32(String(decoding: bytes[(i + 2) ..< (i + 2 + digits)], as: UTF8.self), radix: 16),
                      let scalar = Unicode.Scalar(value) else {
                    throw FormatError(format, "invalid \\u escape in a UNICODE argument")
                }
                out.unicodeScalars.append(scalar)
                i += 2 + digits
            } else {
                out.unicodeScalars.append(Unicode.Scalar(c))
                i += 1
            }
        }
        return out
    }

    // MARK: - Calls

    private func tupleItems(_ value: PickleValue, _ what: String) throws -> [PickleValue] {
        guard case .tuple(let index) = value else { throw error("\(what) must be a tuple, found \(value.typeName)") }
        return tuples[index]
    }

    private func sequenceItems(_ value: PickleValue) -> [PickleValue]? {
        switch value {
        case .tuple(let index): return tuples[index]
        case .list(let index): return lists[index]
        case .set(let index): return sets[index]
        default: return nil
        }
    }

    private func integer(_ value: PickleValue, _ what: String) throws -> Int {
        switch value {
        case .int(let v):
            guard let result = Int(exactly: v) else { throw error("\(what) \(v) is out of range") }
            return result
        case .bool(let b): return b ? 1 : 0
        default: throw error("\(what) must be an int, found \(value.typeName)")
        }
    }

    private func integers(_ value: PickleValue, _ what: String) throws -> [Int] {
        guard let items = sequenceItems(value) else { throw error("\(what) must be a tuple of ints, found \(value.typeName)") }
        guard items.count <= limits.maxRank else {
            throw error("\(what) has \(items.count) dimensions; at most \(limits.maxRank) are accepted")
        }
        return try items.map { try integer($0, what) }
    }

    private mutating func reduce(_ callable: PickleValue, _ argsValue: PickleValue) throws -> PickleValue {
        guard case .global(let g) = callable else {
            throw error("REDUCE can only call an allowlisted global, not a \(callable.typeName)")
        }
        let args = try tupleItems(argsValue, "the arguments of '\(g.qualifiedName)'")
        switch g.role {
        case .orderedDict:
            let dict = try newDict(ordered: true)
            if args.isEmpty { return dict }
            guard args.count == 1, let pairs = sequenceItems(args[0]) else {
                throw error("OrderedDict takes no argument or one sequence of pairs")
            }
            try charge(pairs.count)
            var flat = [PickleValue]()
            for pair in pairs {
                guard let kv = sequenceItems(pair), kv.count == 2 else { throw error("OrderedDict items must be pairs") }
                flat += kv
            }
            try setItems(dict, flat)
            return dict
        case .set, .frozenset:
            if args.isEmpty { return try newSet([]) }
            guard args.count == 1, let items = sequenceItems(args[0]) else {
                throw error("\(g.name) takes no argument or one sequence")
            }
            try charge(items.count)
            return try newSet(items)
        case .rebuildTensorV2:
            guard args.count == 6 || args.count == 7 else {
                throw error("_rebuild_tensor_v2 takes 6 or 7 arguments, not \(args.count)")
            }
            return try rebuildTensor(args)
        case .rebuildTensor:
            guard args.count == 4 else { throw error("_rebuild_tensor takes 4 arguments, not \(args.count)") }
            return try rebuildTensor(args)
        case .rebuildParameter, .rebuildParameterWithState:
            let expected = g.name == "_rebuild_parameter" ? 3 : 4
            guard args.count == expected else { throw error("\(g.name) takes \(expected) arguments, not \(args.count)") }
            guard case .tensor = args[0] else { throw error("\(g.name) needs a tensor, found \(args[0].typeName)") }
            return args[0]
        case .device:
            guard (1 ... 2).contains(args.count), case .string = args[0] else {
                throw error("torch.device takes a device string (and an index)")
            }
            try countObject()
            objects.append(PickleObject(className: g.qualifiedName, isModule: false, state: nil))
            return .object(objects.count - 1)
        case .storageType, .moduleClass:
            throw error("calling '\(g.qualifiedName)' is not supported (only tensor rebuilds, OrderedDict and set are called; module classes are only instantiated without running code)")
        }
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`
    /// and `_rebuild_tensor(storage, storage_offset, size, stride)`: the first four decide the tensor.
    private mutating func rebuildTensor(_ args: [PickleValue]) throws -> PickleValue {
        guard args.count >= 4 else { throw error("a tensor rebuild takes at least 4 arguments, not \(args.count)") }
        guard case .storage(let storageIndex) = args[0] else {
            throw error("_rebuild_tensor_v2 needs a storage (persistent id) first, found \(args[0].typeName)")
        }
        let offset = try integer(args[1], "the storage offset")
        let shape = try integers(args[2], "the tensor size")
        let stride = try integers(args[3], "the tensor stride")
        guard offset >= 0 else { throw error("negative storage offset \(offset)") }
        guard stride.count == shape.count else {
            throw error("size \(shape) and stride \(stride) have different lengths")
        }
        guard stride.allSatisfy({ $0 >= 0 }) else { throw error("negative stride in \(stride)") }
        let count = try limits.checkShape(shape, format: Self.format)
        let storage = storages[storageIndex]
        if count > 0 {
            var last = offset
            for (n, s) in zip(shape, stride) {
                let (step, o1) = (n - 1).multipliedReportingOverflow(by: s)
                let (sum, o2) = last.addingReportingOverflow(step)
                guard !o1, !o2 else { throw error("size \(shape) with stride \(stride) overflows") }
                last = sum
            }
            guard last < storage.viewCount else {
                throw error("a tensor of size \(shape), stride \(stride) at offset \(offset) reaches element \(last), beyond its storage '\(storage.key)' of \(storage.viewCount) elements")
            }
        } else {
            guard offset <= storage.viewCount else {
                throw error("storage offset \(offset) lies beyond storage '\(storage.key)' of \(storage.viewCount) elements")
            }
        }
        try countObject()
        tensors.append(PickledTensor(storage: storageIndex, offset: offset, shape: shape, stride: stride, count: count))
        return .tensor(tensors.count - 1)
    }

    private mutating func instantiate(_ cls: PickleValue) throws -> PickleValue {
        guard case .global(let g) = cls else { throw error("cannot instantiate a \(cls.typeName)") }
        switch g.role {
        case .moduleClass:
            try countObject()
            objects.append(PickleObject(className: g.qualifiedName, isModule: true, state: nil))
            return .object(objects.count - 1)
        case .orderedDict:
            return try newDict(ordered: true)
        default:
            throw error("cannot instantiate '\(g.qualifiedName)'")
        }
    }

    /// `('storage', StorageType, key, location, numel[, view_metadata])`.
    private mutating func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        guard case .tuple(let index) = pid else {
            throw error("persistent id must be a tuple ('storage', type, key, location, numel), found \(pid.typeName)")
        }
        let items = tuples[index]
        guard let first = items.first, case .string(let typename) = first else {
            throw error("persistent id must start with the string 'storage'")
        }
        guard typename == "storage" else { throw error("unsupported persistent id kind '\(typename.prefix(40))'") }
        guard items.count == 5 || items.count == 6 else {
            throw error("a storage persistent id has 5 or 6 fields, not \(items.count)")
        }
        guard case .global(let g) = items[1], case .storageType(let dtype) = g.role else {
            throw error("the storage type must be a torch storage class such as torch.FloatStorage, found \(items[1].typeName)")
        }
        let key: String
        switch items[2] {
        case .string(let s): key = s
        case .int(let v): key = String(v)
        default: throw error("the storage key must be a string, found \(items[2].typeName)")
        }
        guard !key.isEmpty, key.utf8.count <= 256 else { throw error("storage key of \(key.utf8.count) bytes") }
        guard case .string(let location) = items[3] else {
            throw error("the storage location must be a string such as 'cpu' or 'cuda:0', found \(items[3].typeName)")
        }
        let numel = try integer(items[4], "the storage element count")
        guard numel >= 0, numel <= Int.max / 16 else { throw error("impossible storage element count \(numel)") }
        var viewOffset = 0, viewCount = numel
        if items.count == 6 {
            switch items[5] {
            case .none:
                break
            case .tuple(let viewIndex):
                // Legacy storage view: (view_key, offset, size) into the root storage.
                let view = tuples[viewIndex]
                guard view.count == 3 else { throw error("storage view metadata must be (key, offset, size)") }
                viewOffset = try integer(view[1], "the storage view offset")
                viewCount = try integer(view[2], "the storage view size")
                guard viewOffset >= 0, viewCount >= 0, viewOffset <= numel, viewCount <= numel - viewOffset else {
                    throw error("storage view [\(viewOffset), +\(viewCount)) lies outside storage '\(key)' of \(numel) elements")
                }
            default:
                throw error("storage view metadata must be None or a tuple, found \(items[5].typeName)")
            }
        }
        try countObject()
        storages.append(PickledStorage(dtype: dtype, key: key, location: location, numel: numel,
                                       viewOffset: viewOffset, viewCount: viewCount))
        return .storage(storages.count - 1)
    }
}
