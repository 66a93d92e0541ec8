/// Reader for PyTorch `.pth` checkpoints, without Python and without running any pickled code.
///
/// Two containers are read:
/// - zip (torch.save since 1.6): `<folder>/data.pkl` is the pickle, `<folder>/data/<key>` hold the
///   storages (raw little-endian), `<folder>/byteorder` (if present) must say "little";
/// - legacy (`_use_new_zipfile_serialization=False`): five pickles in a row (magic number,
///   protocol version 1001, sys_info, the object, the list of storage keys), then for each key an
///   int64 little-endian element count followed by the raw little-endian elements.
///
/// The pickle is decoded by `Unpickler`, which only accepts tensors, plain containers and inert
/// torch.nn / RevSCI module objects; see there for what is refused.
public enum PyTorchCheckpoint {
    static let format = "pth"
    /// How deep a pickled module tree may nest.
    static let maxModuleDepth = 64
    /// How many module nodes a module-tree walk may visit (a shared submodule counts once per path).
    static let maxModuleVisits = 1 << 16
    /// 0x1950a86a20f9469cfc6c, the legacy format's magic number, little-endian.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let legacyProtocolVersion: Int64 = 1001

    /// Reads a .pth: zip format (data.pkl + data/<key> entries under one top folder) or the legacy
    /// format (magic-number pickle, protocol pickle, sys_info pickle, the object pickle, the
    /// storage-key list pickle, then per key: int64 LE element count + raw LE bytes). Returns the
    /// state dict: parameter name -> float32 NumericArray with the tensor's shape (storage offset
    /// and strides applied), in file order.
    ///
    /// Accepted top-level objects: a state dict (OrderedDict/dict of name -> tensor), a dict holding
    /// "model_state_dict" or "state_dict" (other keys ignored), or a whole pickled nn.Module (the
    /// original RevSCI-net `models.re_3dcnn`, saved with torch.save(model)), whose module tree is
    /// walked to produce the names `model.state_dict()` would give. float64, float16 and bfloat16
    /// tensors are converted to float32; integer tensors are refused.
    public static func loadStateDict(_ bytes: [UInt8], limits: DecodeLimits = .default) throws -> [(name: String, array: NumericArray)] {
        guard bytes.count >= 4 else {
            throw FormatError(format, "a \(bytes.count)-byte file is not a PyTorch checkpoint")
        }
        var checkpoint: Loaded
        if bytes[0] == 0x50, bytes[1] == 0x4B, bytes[2] == 0x03 || bytes[2] == 0x05, bytes[3] == 0x04 || bytes[3] == 0x06 {
            checkpoint = try loadZip(bytes, limits: limits)
        } else if bytes[0] == 0x80 {
            checkpoint = try loadLegacy(bytes, limits: limits)
        } else {
            throw FormatError(format, "not a PyTorch checkpoint: expected a zip archive (torch.save) or a legacy pickle stream")
        }
        let entries = try stateDictEntries(checkpoint.pickle, root: checkpoint.root)
        var result = [(name: String, array: NumericArray)]()
        result.reserveCapacity(entries.count)
        var totalElements = 0
        for (name, tensorIndex) in entries {
            let tensor = checkpoint.pickle.tensors[tensorIndex]
            totalElements += tensor.count
            guard totalElements <= limits.maxElements else {
                throw FormatError(format, "the checkpoint's tensors hold more than the \(limits.maxElements) elements accepted in total")
            }
            result.append((name, try materialize(tensor, name: name, in: &checkpoint)))
        }
        return result
    }

    // MARK: - Containers

    /// Where a root storage's elements lie.
    struct StorageBytes {
        let buffer: [UInt8]
        /// Byte offset of element 0 in `buffer`.
        let start: Int
        let byteCount: Int
    }

    struct Loaded {
        var pickle: Unpickler
        var root: PickleValue
        /// Root storage key -> its bytes.
        var storages: [String: StorageBytes]
    }

    private static func loadZip(_ bytes: [UInt8], limits: DecodeLimits) throws -> Loaded {
        let archive: ZipArchive
        do {
            archive = try ZipArchive(bytes, limits: limits)
        } catch let error as FormatError {
            throw FormatError(format, "the checkpoint's zip container is unreadable: \(error.message)")
        }
        var byName = [String: ZipArchive.Entry]()
        for entry in archive.entries where byName[entry.name] == nil { byName[entry.name] = entry }
        guard let pickleEntry = archive.entries.first(where: { entry in
            let parts = entry.name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && parts[1] == "data.pkl"
        }) else {
            throw FormatError(format, "the zip archive has no '<folder>/data.pkl' entry: not a PyTorch checkpoint")
        }
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))

        func entryData(_ entry: ZipArchive.Entry) throws -> StorageBytes {
            do {
                if entry.method == 0 {
                    let range = try archive.dataRange(for: entry)
                    return StorageBytes(buffer: archive.bytes, start: range.lowerBound, byteCount: range.count)
                }
                let data = try archive.data(for: entry)
                return StorageBytes(buffer: data, start: 0, byteCount: data.count)
            } catch let error as FormatError {
                throw FormatError(format, "the checkpoint's zip container is unreadable: \(error.message)")
            }
        }

        if let order = byName[prefix + "byteorder"] {
            let data = try entryData(order)
            let text = String(decoding: data.buffer[data.start ..< data.start + data.byteCount], as: UTF8.self)
                .trimmingASCIIWhitespace()
            guard text == "little" else {
                if text == "big" { throw FormatError(format, "big-endian checkpoints are not supported") }
                throw FormatError(format, "the byteorder entry says '\(text.prefix(20))', not 'little'")
            }
        }

        let pickleData = try entryData(pickleEntry)
        let pickleBytes = pickleData.start == 0 && pickleData.byteCount == pickleData.buffer.count
            ? pickleData.buffer
            : Array(pickleData.buffer[pickleData.start ..< pickleData.start + pickleData.byteCount])
        var pickle = Unpickler(pickleBytes, limits: limits)
        let root = try pickle.load()

        // Every storage the pickle names must be present with the size its persistent id declares.
        var storages = [String: StorageBytes]()
        for storage in pickle.storages {
            let data: StorageBytes
            if let known = storages[storage.key] {
                data = known
            } else {
                guard let entry = byName[prefix + "data/" + storage.key] else {
                    throw FormatError(format, "the pickle refers to storage '\(storage.key)', but the archive has no entry '\(prefix)data/\(storage.key)'")
                }
                data = try entryData(entry)
                storages[storage.key] = data
            }
            let (needed, overflow) = storage.numel.multipliedReportingOverflow(by: storage.dtype.size)
            guard !overflow, needed == data.byteCount else {
                throw FormatError(format, "storage '\(storage.key)' holds \(data.byteCount) bytes, but its persistent id declares \(storage.numel) \(storage.dtype.name) elements")
            }
        }
        return Loaded(pickle: pickle, root: root, storages: storages)
    }

    private static func loadLegacy(_ bytes: [UInt8], limits: DecodeLimits) throws -> Loaded {
        var offset = 0
        /// Runs the next pickle of the stream.
        func next(_ what: String) throws -> (pickle: Unpickler, value: PickleValue) {
            var pickle = Unpickler(bytes, offset: offset, limits: limits)
            let value: PickleValue
            do {
                value = try pickle.load()
            } catch let error as FormatError {
                throw FormatError(format, "legacy checkpoint, \(what): \(error.message)")
            }
            offset = pickle.offset
            return (pickle, value)
        }
        guard let magic = try? next("magic number"), case .bigInt(let value) = magic.value, value == legacyMagic else {
            throw FormatError(format, "not a PyTorch checkpoint: the file starts with a pickle but not with the legacy magic number")
        }
        let version = try next("protocol version").value
        guard case .int(let protocolVersion) = version, protocolVersion == legacyProtocolVersion else {
            let found: String
            if case .int(let v) = version { found = String(v) } else { found = "a " + version.typeName }
            throw FormatError(format, "legacy checkpoint with protocol version \(found); only \(legacyProtocolVersion) is supported")
        }
        let info = try next("sys_info")
        if case .dict(let index) = info.value, case .bool(false)? = info.pickle.dictValue(index, forKey: "little_endian") {
            throw FormatError(format, "big-endian checkpoints are not supported")
        }
        let (pickle, root) = try next("object pickle")
        let keys = try next("storage key list")
        guard case .list(let listIndex) = keys.value else {
            throw FormatError(format, "legacy checkpoint: the storage key list is a \(keys.value.typeName), not a list")
        }

        // Element type and count of every root storage, from the persistent ids.
        var declared = [String: (dtype: TorchElementType, numel: Int)]()
        for storage in pickle.storages {
            if let known = declared[storage.key] {
                guard known.dtype == storage.dtype, known.numel == storage.numel else {
                    throw FormatError(format, "storage '\(storage.key)' is declared both as \(known.numel) \(known.dtype.name) and \(storage.numel) \(storage.dtype.name) elements")
                }
            } else {
                declared[storage.key] = (storage.dtype, storage.numel)
            }
        }

        var storages = [String: StorageBytes]()
        var reader = ByteReader(bytes, format: format, offset: offset)
        for item in keys.pickle.lists[listIndex] {
            guard case .string(let key) = item else {
                throw FormatError(format, "legacy checkpoint: a storage key is a \(item.typeName), not a string")
            }
            guard let info = declared[key] else {
                throw FormatError(format, "legacy checkpoint: storage '\(key)' is listed but no tensor uses it, so its element size is unknown")
            }
            guard storages[key] == nil else {
                throw FormatError(format, "legacy checkpoint: storage '\(key)' is listed twice")
            }
            let count = try reader.readLE(Int64.self, "element count of storage '\(key)'")
            guard count == Int64(info.numel) else {
                throw FormatError(format, "legacy checkpoint: storage '\(key)' holds \(count) elements, but its persistent id declares \(info.numel)")
            }
            let byteCount = info.numel * info.dtype.size
            let start = reader.offset
            try reader.skip(byteCount, "the \(byteCount) bytes of storage '\(key)'")
            storages[key] = StorageBytes(buffer: bytes, start: start, byteCount: byteCount)
        }
        for key in declared.keys where storages[key] == nil {
            throw FormatError(format, "legacy checkpoint: the pickle refers to storage '\(key)', which the file does not hold")
        }
        return Loaded(pickle: pickle, root: root, storages: storages)
    }

    // MARK: - Interpreting the pickled object

    /// (name, tensor index) pairs in state-dict order.
    static func stateDictEntries(_ pickle: Unpickler, root: PickleValue) throws -> [(String, Int)] {
        switch root {
        case .dict(let index):
            let dict = pickle.dicts[index]
            let hasTensor = dict.values.contains { if case .tensor = $0 { return true } else { return false } }
            if !hasTensor {
                for key in ["model_state_dict", "state_dict"] {
                    guard let inner = pickle.dictValue(index, forKey: key) else { continue }
                    switch inner {
                    case .dict(let innerIndex): return try tensorDictEntries(pickle, innerIndex, what: "'\(key)'")
                    case .object(let object) where pickle.objects[object].isModule:
                        return try moduleEntries(pickle, root: object)
                    default:
                        throw FormatError(format, "the checkpoint's '\(key)' is a \(inner.typeName), not a state dict")
                    }
                }
                if !dict.keys.isEmpty {
                    let names = dict.keys.prefix(8).map { key -> String in
                        if case .string(let s) = key { return "'\(s.prefix(40))'" }
                        return key.typeName
                    }
                    throw FormatError(format, "the checkpoint is a dict without tensors and without a 'model_state_dict' or 'state_dict' entry (keys: \(names.joined(separator: ", "))\(dict.keys.count > 8 ? ", ..." : ""))")
                }
            }
            return try tensorDictEntries(pickle, index, what: "the state dict")
        case .object(let index) where pickle.objects[index].isModule:
            return try moduleEntries(pickle, root: index)
        default:
            throw FormatError(format, "the checkpoint holds a \(root.typeName), not a state dict, a dict with 'model_state_dict', or a module")
        }
    }

    private static func tensorDictEntries(_ pickle: Unpickler, _ index: Int, what: String) throws -> [(String, Int)] {
        let dict = pickle.dicts[index]
        var entries = [(String, Int)]()
        entries.reserveCapacity(dict.keys.count)
        for (key, value) in zip(dict.keys, dict.values) {
            guard case .string(let name) = key else {
                throw FormatError(format, "\(what) has a \(key.typeName) key; parameter names must be strings")
            }
            guard case .tensor(let tensor) = value else {
                throw FormatError(format, "entry '\(name.prefix(80))' of \(what) is a \(value.typeName), not a tensor")
            }
            entries.append((name, tensor))
        }
        return entries
    }

    /// The names `module.state_dict()` would give: at each module its non-None parameters, then
    /// its persistent non-None buffers, then each child module under "<child>.".
    private static func moduleEntries(_ pickle: Unpickler, root: Int) throws -> [(String, Int)] {
        var entries = [(String, Int)]()
        var visits = 0

        func dict(_ state: Int, _ key: String, of className: String) throws -> Int? {
            guard let value = pickle.dictValue(state, forKey: key) else { return nil }
            switch value {
            case .dict(let index): return index
            case .none: return nil
            default: throw FormatError(format, "'\(key)' of module \(className) is a \(value.typeName), not a dict")
            }
        }

        func walk(_ objectIndex: Int, prefix: String, depth: Int) throws {
            guard depth <= maxModuleDepth else {
                throw FormatError(format, "the module tree nests deeper than \(maxModuleDepth) levels (at '\(prefix.prefix(200))')")
            }
            visits += 1
            guard visits <= maxModuleVisits else {
                throw FormatError(format, "the module tree has more than \(maxModuleVisits) module nodes")
            }
            let object = pickle.objects[objectIndex]
            let label = prefix.isEmpty ? object.className : "'\(prefix.dropLast())' (\(object.className))"
            var stateValue = object.state
            if case .tuple(let t)? = stateValue, let first = pickle.tuples[t].first { stateValue = first }
            guard case .dict(let state)? = stateValue else {
                throw FormatError(format, "module \(label) has no attribute dict (no BUILD state)")
            }
            if let parameters = try dict(state, "_parameters", of: label) {
                let d = pickle.dicts[parameters]
                for (key, value) in zip(d.keys, d.values) {
                    guard case .string(let name) = key else { throw FormatError(format, "module \(label) has a non-string parameter name") }
                    switch value {
                    case .tensor(let tensor): entries.append((prefix + name, tensor))
                    case .none: continue
                    default: throw FormatError(format, "parameter '\(prefix)\(name)' is a \(value.typeName), not a tensor")
                    }
                }
            }
            if let buffers = try dict(state, "_buffers", of: label) {
                var nonPersistent = Set<String>()
                if case .set(let s)? = pickle.dictValue(state, forKey: "_non_persistent_buffers_set") {
                    for case .string(let name) in pickle.sets[s] { nonPersistent.insert(name) }
                }
                let d = pickle.dicts[buffers]
                for (key, value) in zip(d.keys, d.values) {
                    guard case .string(let name) = key else { throw FormatError(format, "module \(label) has a non-string buffer name") }
                    if nonPersistent.contains(name) { continue }
                    switch value {
                    case .tensor(let tensor): entries.append((prefix + name, tensor))
                    case .none: continue
                    default: throw FormatError(format, "buffer '\(prefix)\(name)' is a \(value.typeName), not a tensor")
                    }
                }
            }
            if let modules = try dict(state, "_modules", of: label) {
                let d = pickle.dicts[modules]
                for (key, value) in zip(d.keys, d.values) {
                    guard case .string(let name) = key else { throw FormatError(format, "module \(label) has a non-string submodule name") }
                    switch value {
                    case .object(let child) where pickle.objects[child].isModule:
                        try walk(child, prefix: prefix + name + ".", depth: depth + 1)
                    case .none: continue
                    default: throw FormatError(format, "submodule '\(prefix)\(name)' is a \(value.typeName), not a module")
                    }
                }
            }
        }

        try walk(root, prefix: "", depth: 0)
        return entries
    }

    // MARK: - Tensor data

    private static func materialize(_ tensor: PickledTensor, name: String, in checkpoint: inout Loaded) throws -> NumericArray {
        let storage = checkpoint.pickle.storages[tensor.storage]
        guard storage.dtype.isFloatingPoint else {
            throw FormatError(format, "tensor '\(name)' holds \(storage.dtype.name) values; only floating-point tensors are supported")
        }
        guard let source = checkpoint.storages[storage.key] else {
            throw FormatError(format, "tensor '\(name)': storage '\(storage.key)' is missing")
        }
        // Bounds were checked when the tensor was rebuilt (against the persistent id) and when the
        // storage was located (persistent id against the stored bytes); check once more here.
        let size = storage.dtype.size
        let base = storage.viewOffset + tensor.offset
        if tensor.count > 0 {
            var last = base
            for (n, s) in zip(tensor.shape, tensor.stride) { last += (n - 1) * s }
            guard last < storage.viewOffset + storage.viewCount, (last + 1) * size <= source.byteCount else {
                throw FormatError(format, "tensor '\(name)' reaches beyond its storage '\(storage.key)'")
            }
        }
        let values = gather(source, base: base, dtype: storage.dtype, shape: tensor.shape, stride: tensor.stride, count: tensor.count)
        return NumericArray(shape: tensor.shape, float32: values)
    }

    /// The tensor's elements in C order, converted to Float. `base` is the storage element of
    /// index (0, 0, ...); the caller has checked that every addressed element lies in `source`.
    static func gather(_ source: StorageBytes, base: Int, dtype: TorchElementType, shape: [Int], stride: [Int], count: Int) -> [Float] {
        if count == 0 { return [] }
        let size = dtype.size
        // Contiguous when each stride equals the product of the later extents (size-1 axes aside).
        var contiguous = true
        var expected = 1
        for axis in stride.indices.reversed() {
            if shape[axis] != 1, stride[axis] != expected { contiguous = false; break }
            expected *= shape[axis]
        }
        return source.buffer.withUnsafeBytes { raw -> [Float] in
            let origin = source.start + base * size
            #if _endian(little)
            if contiguous, dtype == .float32 {
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: raw[origin ..< origin + count * 4]))
                    initialized = count
                }
            }
            #endif
            func element(_ index: Int) -> Float {
                let at = origin + index * size
                switch dtype {
                case .float32:
                    return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                case .float64:
                    return Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))))
                case .float16:
                    return halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
                case .bfloat16:
                    return Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) << 16)
                default:
                    return 0 // integer storages are refused before this point
                }
            }
            var out = [Float]()
            out.reserveCapacity(count)
            if contiguous {
                for i in 0 ..< count { out.append(element(i)) }
                return out
            }
            // General strides: walk the C-order index, keeping the storage position in step.
            // Wrapping arithmetic: a size-1 axis may carry any stride, and stepping past it is
            // undone at once; every position actually read was bounds-checked.
            let rank = shape.count
            var index = [Int](repeating: 0, count: rank)
            var position = 0
            for _ in 0 ..< count {
                out.append(element(position))
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    position &+= stride[axis]
                    if index[axis] < shape[axis] { break }
                    position &-= stride[axis] &* shape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
            return out
        }
    }

    /// IEEE 754 binary16 to Float (exact).
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            let magnitude = Float(mantissa) * 0x1p-24 // zero or subnormal
            return sign != 0 ? -magnitude : magnitude
        case 31:
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        default:
            return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
        }
    }
}

extension String {
    fileprivate func trimmingASCIIWhitespace() -> String {
        let scalars = unicodeScalars
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[first ... last])
    }
}
