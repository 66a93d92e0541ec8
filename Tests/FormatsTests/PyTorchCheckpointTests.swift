import XCTest
import Formats
import SCICore
import TestSupport


/// Asserts that `body` throws a pth FormatError with a non-empty message containing every fragment.
private func expectPTHError(_ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line,
                            _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a FormatError", file: file, line: line)
    } catch let error as FormatError {
        XCTAssertEqual(error.format, "pth", error.description, file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(error.message.contains(fragment), "'\(error.message)' lacks '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// Assembles pickle opcodes by hand.
private struct PickleBuilder {
    var bytes: [UInt8]
    /// Protocol 4 style: SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE after pushes.
    let modern: Bool

    init(protocol version: UInt8 = 2) {
        bytes = [0x80, version]
        modern = version >= 4
    }

    mutating func op(_ codes: UInt8...) { bytes += codes }
    mutating func memoize() { if modern { op(0x94) } }

    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        if modern, utf8.count < 256 {
            op(0x8C, UInt8(utf8.count))
        } else {
            op(0x58)
            bytes.appendLE(UInt32(utf8.count))
        }
        bytes += utf8
        memoize()
    }

    mutating func global(_ module: String, _ name: String) {
        if modern {
            string(module)
            string(name)
            op(0x93)
        } else {
            op(0x63)
            bytes += Array("\(module)\n\(name)\n".utf8)
        }
        memoize()
    }

    mutating func int(_ value: Int) {
        if (0 ..< 256).contains(value) {
            op(0x4B, UInt8(value))
        } else if (0 ..< 65536).contains(value) {
            op(0x4D)
            bytes.appendLE(UInt16(value))
        } else if let small = Int32(exactly: value) {
            op(0x4A)
            bytes.appendLE(small)
        } else {
            op(0x8A, 8) // LONG1, 8 bytes
            bytes.appendLE(Int64(value))
        }
    }

    mutating func ints(_ values: [Int]) {
        op(0x28)
        for v in values { int(v) }
        op(0x74)
        memoize()
    }

    mutating func emptyOrderedDict() {
        global("collections", "OrderedDict")
        op(0x29, 0x52)
        memoize()
    }

    /// `_rebuild_tensor_v2(('storage', torch.<type>, key, location, numel), offset, size, stride, False, OrderedDict())`
    mutating func tensor(key: String, type: String = "FloatStorage", location: String = "cpu", numel: Int,
                         offset: Int = 0, size: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28) // MARK (arguments)
        op(0x28) // MARK (persistent id)
        string("storage")
        global("torch", type)
        string(key)
        string(location)
        int(numel)
        op(0x74, 0x51) // TUPLE, BINPERSID
        int(offset)
        ints(size)
        ints(stride)
        op(0x89) // NEWFALSE
        emptyOrderedDict()
        op(0x74, 0x52) // TUPLE, REDUCE
        memoize()
    }

    /// A contiguous tensor over a whole storage.
    mutating func tensor(key: String, type: String = "FloatStorage", location: String = "cpu", shape: [Int]) {
        var stride = [Int](repeating: 1, count: shape.count)
        for axis in stride.indices.reversed().dropFirst() { stride[axis] = stride[axis + 1] * shape[axis + 1] }
        tensor(key: key, type: type, location: location, numel: shape.reduce(1, *), size: shape, stride: stride)
    }

    mutating func stop() { op(0x2E) }

    /// The finished pickle; protocol 4+ gets one FRAME around everything after PROTO.
    func finished() -> [UInt8] {
        guard modern else { return bytes }
        var out = Array(bytes[0 ..< 2])
        out.append(0x95)
        out.appendLE(UInt64(bytes.count - 2))
        return out + bytes[2...]
    }
}

/// An OrderedDict state dict pickle: `entries` push one value each (a tensor, usually).
private func stateDictPickle(protocol version: UInt8 = 2, _ entries: [(String, (inout PickleBuilder) -> Void)]) -> [UInt8] {
    var p = PickleBuilder(protocol: version)
    p.emptyOrderedDict()
    for (name, push) in entries {
        p.string(name)
        push(&p)
        p.op(0x73) // SETITEM
    }
    p.stop()
    return p.finished()
}

/// A zip checkpoint with `x/data.pkl`, `x/byteorder` and `x/data/<key>` entries.
private func zipCheckpoint(_ pickle: [UInt8], storages: [(String, [UInt8])] = [], byteorder: String? = "little") throws -> [UInt8] {
    var writer = ZipWriter()
    try writer.add(name: "x/data.pkl", data: pickle, compress: false)
    if let byteorder { try writer.add(name: "x/byteorder", data: Array(byteorder.utf8), compress: false) }
    for (key, data) in storages { try writer.add(name: "x/data/\(key)", data: data, compress: false) }
    return writer.finish()
}

private func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var out = [UInt8]()
    for v in values { out.appendLE(v) }
    return out
}

private func floatBytes(_ values: [Float]) -> [UInt8] { le(values.map(\.bitPattern)) }

/// The state_dict order of the fixture models (REFERENCE.md section 4).
private func expectedNames(multiGroup: Bool, blocks: Int = 2, groups: Int = 2) -> [String] {
    var names = [String]()
    func pair(_ prefix: String) { names += ["\(prefix).weight", "\(prefix).bias"] }
    for i in [0, 2, 4, 6] { pair("conv1.\(i)") }
    for b in 0 ..< blocks {
        if multiGroup {
            for g in 0 ..< groups { for l in [0, 2] { pair("layers.\(b).f.\(g).nn_layer.\(l)") } }
        } else {
            for branch in ["f1", "g1"] { for l in [0, 2] { pair("layers.\(b).\(branch).\(l)") } }
        }
    }
    for i in [0, 2, 4, 6] { pair("conv2.\(i)") }
    return names
}

final class PyTorchCheckpointTests: XCTestCase {
    // MARK: Fixtures

    func testEveryFixtureCheckpointLoadsTheTensorsOfItsSafetensorsFile() throws {
        let cases: [(String, String, Bool)] = [
            ("cacti_nb2_state_dict.pth", "fixtures/revsci_cacti_nb2/revsci_nb2.safetensors", false),
            ("cacti_nb2_wrapped.pth", "fixtures/revsci_cacti_nb2/revsci_nb2.safetensors", false),
            ("cacti_nb2_legacy.pth", "fixtures/revsci_cacti_nb2/revsci_nb2.safetensors", false),
            ("paper_g2_nb2_module.pth", "fixtures/revsci_paper_g2_nb2/weights.safetensors", true),
        ]
        for (file, reference, multiGroup) in cases {
            let loaded = try PyTorchCheckpoint.loadStateDict(try SharedData.bytes("fixtures/checkpoints/\(file)"))
            let expected = try SafetensorsFile.decode(try SharedData.bytes(reference))
            XCTAssertEqual(loaded.map(\.name), expectedNames(multiGroup: multiGroup), file)
            XCTAssertEqual(loaded.count, expected.tensors.count, file)
            for (name, array) in loaded {
                let reference = try XCTUnwrap(expected.tensor(name), "\(file): \(name)")
                XCTAssertEqual(array.shape, reference.shape, "\(file): \(name)")
                XCTAssertEqual(array.storage, reference.storage, "\(file): \(name)")
            }
        }
    }

    // MARK: Hand-built checkpoints that must load

    func testStridedOffsetAndBroadcastViewsAreGathered() throws {
        let storage = (0 ..< 12).map(Float.init)
        let pickle = stateDictPickle([
            ("transposed", { $0.tensor(key: "0", numel: 12, size: [3, 4], stride: [1, 3]) }),
            ("stepped", { $0.tensor(key: "0", numel: 12, offset: 2, size: [2], stride: [5]) }),
            ("broadcast", { $0.tensor(key: "0", numel: 12, offset: 4, size: [2, 3], stride: [0, 1]) }),
            ("scalar", { $0.tensor(key: "0", numel: 12, offset: 11, size: [], stride: []) }),
            ("empty", { $0.tensor(key: "0", numel: 12, offset: 12, size: [0, 3], stride: [3, 1]) }),
            ("sliced", { $0.tensor(key: "0", numel: 12, offset: 1, size: [2, 2], stride: [4, 1]) }),
            ("unit axes", { $0.tensor(key: "0", numel: 12, offset: 3, size: [1, 3, 1], stride: [Int.max / 2, 2, Int.max]) }),
        ])
        let loaded = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(pickle, storages: [("0", floatBytes(storage))]))
        XCTAssertEqual(loaded.map(\.name), ["transposed", "stepped", "broadcast", "scalar", "empty", "sliced", "unit axes"])
        XCTAssertEqual(loaded[0].array, NumericArray(shape: [3, 4], float32: [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]))
        XCTAssertEqual(loaded[1].array, NumericArray(shape: [2], float32: [2, 7]))
        XCTAssertEqual(loaded[2].array, NumericArray(shape: [2, 3], float32: [4, 5, 6, 4, 5, 6]))
        XCTAssertEqual(loaded[3].array, NumericArray(shape: [], float32: [11]))
        XCTAssertEqual(loaded[4].array, NumericArray(shape: [0, 3], float32: []))
        XCTAssertEqual(loaded[5].array, NumericArray(shape: [2, 2], float32: [1, 2, 5, 6]))
        XCTAssertEqual(loaded[6].array, NumericArray(shape: [1, 3, 1], float32: [3, 5, 7]))
    }

    func testDoubleHalfAndBFloat16StoragesConvertAndAnyLocationIsAccepted() throws {
        let pickle = stateDictPickle([
            ("d", { $0.tensor(key: "0", type: "DoubleStorage", location: "cuda:0", shape: [3]) }),
            ("h", { $0.tensor(key: "1", type: "HalfStorage", location: "cuda:1", shape: [5]) }),
            ("b", { $0.tensor(key: "2", type: "BFloat16Storage", location: "mps", shape: [2]) }),
        ])
        let half: [UInt16] = [0x3C00, 0xC000, 0x0001, 0x7C00, 0x3555] // 1, -2, 2^-24, inf, 0.333251953125
        let checkpoint = try zipCheckpoint(pickle, storages: [
            ("0", le([1.5, -0.25, 1e-3].map { (x: Double) in x.bitPattern })),
            ("1", le(half)),
            ("2", le([UInt16(0x3F80), 0xC0A0])), // 1, -5
        ])
        let loaded = try PyTorchCheckpoint.loadStateDict(checkpoint)
        XCTAssertEqual(loaded[0].array, NumericArray(shape: [3], float32: [1.5, -0.25, Float(1e-3)]))
        XCTAssertEqual(loaded[1].array, NumericArray(shape: [5], float32: [1, -2, 0x1p-24, .infinity, 0.333251953125]))
        XCTAssertEqual(loaded[2].array, NumericArray(shape: [2], float32: [1, -5]))
    }

    func testProtocol4OpcodesAndWrappedStateDict() throws {
        var p = PickleBuilder(protocol: 4)
        p.op(0x7D) // EMPTY_DICT
        p.memoize()
        p.op(0x28)
        p.string("epoch")
        p.int(3)
        p.string("model_state_dict")
        p.emptyOrderedDict()
        p.string("w")
        p.tensor(key: "0", shape: [2, 2])
        p.op(0x73)
        p.string("note")
        p.op(0x8F, 0x28) // EMPTY_SET, MARK
        p.string("a")
        p.op(0x90) // ADDITEMS
        p.op(0x75) // SETITEMS
        p.stop()
        let loaded = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(p.finished(), storages: [("0", floatBytes([1, 2, 3, 4]))]))
        XCTAssertEqual(loaded.map(\.name), ["w"])
        XCTAssertEqual(loaded[0].array, NumericArray(shape: [2, 2], float32: [1, 2, 3, 4]))
    }

    func testModuleTreeGivesStateDictNamesAndSkipsNoneAndNonPersistentEntries() throws {
        var p = PickleBuilder()
        func module(_ p: inout PickleBuilder, _ module: String, _ cls: String, body: (inout PickleBuilder) -> Void) {
            p.global(module, cls)
            p.op(0x29, 0x81) // EMPTY_TUPLE, NEWOBJ
            p.op(0x7D, 0x28) // EMPTY_DICT, MARK
            body(&p)
            p.op(0x75, 0x62) // SETITEMS, BUILD
        }
        module(&p, "models", "re_3dcnn") { p in
            p.string("training")
            p.op(0x88)
            p.string("_parameters")
            p.emptyOrderedDict()
            p.op(0x28)
            p.string("weight")
            p.global("torch._utils", "_rebuild_parameter")
            p.op(0x28)
            p.tensor(key: "0", shape: [2])
            p.op(0x88)
            p.emptyOrderedDict()
            p.op(0x74, 0x52)
            p.string("bias")
            p.op(0x4E)
            p.op(0x75)
            p.string("_buffers")
            p.op(0x7D, 0x28)
            p.string("running")
            p.tensor(key: "1", shape: [1])
            p.string("tmp")
            p.tensor(key: "1", shape: [1])
            p.op(0x75)
            p.string("_non_persistent_buffers_set")
            p.global("__builtin__", "set")
            p.op(0x5D, 0x28)
            p.string("tmp")
            p.op(0x65, 0x85, 0x52) // APPENDS, TUPLE1, REDUCE
            p.string("_modules")
            p.op(0x7D, 0x28)
            p.string("sub")
            module(&p, "torch.nn.modules.conv", "Conv3d") { p in
                p.string("_parameters")
                p.op(0x7D)
                p.string("weight")
                p.tensor(key: "2", shape: [1, 1])
                p.op(0x73)
                p.string("_modules")
                p.op(0x7D)
            }
            p.string("act")
            p.op(0x4E)
            p.string("deep")
            module(&p, "my_tools", "f_g_layer") { p in
                p.string("_modules")
                p.op(0x7D)
                p.string("0")
                module(&p, "torch.nn.modules.activation", "LeakyReLU") { p in
                    p.string("negative_slope")
                    p.op(0x47)
                    p.bytes += le([(0.01 as Double).bitPattern.byteSwapped])
                }
                p.op(0x73)
            }
            p.op(0x75)
        }
        p.stop()
        let checkpoint = try zipCheckpoint(p.finished(), storages: [
            ("0", floatBytes([1, 2])), ("1", floatBytes([3])), ("2", floatBytes([4])),
        ])
        let loaded = try PyTorchCheckpoint.loadStateDict(checkpoint)
        XCTAssertEqual(loaded.map(\.name), ["weight", "running", "sub.weight"])
        XCTAssertEqual(loaded.map(\.array), [
            NumericArray(shape: [2], float32: [1, 2]), NumericArray(shape: [1], float32: [3]),
            NumericArray(shape: [1, 1], float32: [4]),
        ])
    }

    func testProtocol0TextOpcodes() throws {
        // DICT/LIST via MARK, PUT/GET, STRING (both quotes), UNICODE escapes, INT/LONG/FLOAT,
        // text GLOBAL; the tensors still use BINPERSID, as torch always does.
        let text = #"""
(dp0
S'epoch'
p1
F1.5
sS'note'
p2
V\u00e9t\u00e9
sVstate_dict
p3
(dp4
Vw
p5
ctorch._utils
_rebuild_tensor_v2
p6
((S'storage'
ctorch
FloatStorage
p7
S'0'
S"cuda:0"
L2L
tQI0
(I2
tp8
(I1
tI00
ccollections
OrderedDict
p9
(tRtRsVv
g6
((S'storage'
g7
S'0'
S'cpu'
I2
tQI1
(I1
t(I1
tI01
(lp10
tRss.
"""#
        let checkpoint = try zipCheckpoint(Array(text.utf8), storages: [("0", floatBytes([7, 8]))])
        let loaded = try PyTorchCheckpoint.loadStateDict(checkpoint)
        XCTAssertEqual(loaded.map(\.name), ["w", "v"])
        XCTAssertEqual(loaded.map(\.array), [NumericArray(shape: [2], float32: [7, 8]), NumericArray(shape: [1], float32: [8])])
    }

    // MARK: Refused globals

    func testGlobalsOutsideTheAllowlistAreRefusedByName() throws {
        let refused: [(String, String)] = [
            ("os", "system"), ("builtins", "eval"), ("posix", "system"), ("__builtin__", "eval"),
            ("subprocess", "Popen"), ("torch.storage", "_load_from_bytes"), ("builtins", "getattr"),
            ("numpy.core.multiarray", "_reconstruct"), ("models", "evil"), ("torch", "load"),
            ("torch.nn.modules", "__import__x"), ("nt", "system"),
        ]
        for (module, name) in refused {
            for modern in [false, true] {
                var p = PickleBuilder(protocol: modern ? 4 : 2)
                p.global(module, name)
                p.string("echo pwned")
                p.op(0x85, 0x52) // TUPLE1, REDUCE
                p.stop()
                let checkpoint = try zipCheckpoint(p.finished(), storages: [("0", [])])
                expectPTHError(["refusing to load '\(module).\(name)'", "safetensors"]) {
                    _ = try PyTorchCheckpoint.loadStateDict(checkpoint)
                }
            }
        }
        // The same refusal through INST and the legacy container.
        var inst = PickleBuilder()
        inst.op(0x28)
        inst.string("id")
        inst.op(0x69)
        inst.bytes += Array("os\nsystem\n".utf8)
        inst.stop()
        expectPTHError(["'os.system'"]) { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(inst.finished())) }
    }

    func testAllowlistedCallablesCannotBeMisused() {
        // A module class may be instantiated (inert) but never called; storages are not callable.
        var call = PickleBuilder()
        call.global("torch.nn.modules.conv", "Conv3d")
        call.op(0x29, 0x52)
        call.stop()
        expectPTHError(["calling 'torch.nn.modules.conv.Conv3d'"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(call.finished()))
        }
        var storage = PickleBuilder()
        storage.global("torch", "FloatStorage")
        storage.op(0x29, 0x52)
        storage.stop()
        expectPTHError(["calling 'torch.FloatStorage'"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(storage.finished()))
        }
        // REDUCE on something that is not a global.
        var notCallable = PickleBuilder()
        notCallable.string("os.system")
        notCallable.op(0x29, 0x52)
        notCallable.stop()
        expectPTHError(["REDUCE"]) { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(notCallable.finished())) }
        // Persistent ids of other kinds.
        var pid = PickleBuilder()
        pid.string("module")
        pid.op(0x85, 0x51)
        pid.stop()
        expectPTHError(["persistent id"]) { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(pid.finished())) }
    }

    // MARK: Storages and tensors that do not fit

    func testMissingStoragesAndOutOfRangeViewsAreRejected() {
        let missing = stateDictPickle([("w", { $0.tensor(key: "7", shape: [2]) })])
        expectPTHError(["'7'"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(missing, storages: [("0", floatBytes([1, 2]))]))
        }
        let tooLarge = stateDictPickle([("w", { $0.tensor(key: "0", numel: 4, size: [3, 3], stride: [3, 1]) })])
        expectPTHError(["beyond its storage"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(tooLarge, storages: [("0", floatBytes([1, 2, 3, 4]))]))
        }
        let offset = stateDictPickle([("w", { $0.tensor(key: "0", numel: 4, offset: 3, size: [2], stride: [1]) })])
        expectPTHError(["beyond its storage"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(offset, storages: [("0", floatBytes([1, 2, 3, 4]))]))
        }
        let overflow = stateDictPickle([("w", { $0.tensor(key: "0", numel: 4, size: [2, 2], stride: [Int(Int32.max), Int(Int32.max)]) })])
        expectPTHError { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(overflow, storages: [("0", floatBytes([1, 2, 3, 4]))])) }
        let huge = stateDictPickle([("w", { $0.tensor(key: "0", numel: 4, size: [1 << 30, 1 << 30], stride: [0, 0]) })])
        expectPTHError(["elements"]) { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(huge, storages: [("0", floatBytes([1, 2, 3, 4]))])) }
        // The persistent id's element count must match the stored bytes.
        let lying = stateDictPickle([("w", { $0.tensor(key: "0", numel: 8, size: [8], stride: [1]) })])
        expectPTHError(["holds 16 bytes"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(lying, storages: [("0", floatBytes([1, 2, 3, 4]))]))
        }
        let integer = stateDictPickle([("steps", { $0.tensor(key: "0", type: "LongStorage", shape: [1]) })])
        expectPTHError(["only floating-point tensors are supported"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(integer, storages: [("0", le([Int64(5)]))]))
        }
        let bigEndian = stateDictPickle([("w", { $0.tensor(key: "0", shape: [1]) })])
        expectPTHError(["big-endian checkpoints are not supported"]) {
            _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(bigEndian, storages: [("0", floatBytes([1]))], byteorder: "big"))
        }
    }

    // MARK: Malformed pickles

    func testMalformedPicklesThrow() {
        func check(_ pickle: [UInt8], _ fragments: [String] = [], line: UInt = #line) {
            expectPTHError(fragments, line: line) {
                _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(pickle, storages: [("0", [])]))
            }
        }
        // BINUNICODE8 declaring 2^62 bytes.
        var huge: [UInt8] = [0x80, 4, 0x8D]
        huge.appendLE(UInt64(1) << 62)
        huge += [0x61, 0x2E]
        check(huge, ["BINUNICODE8"])
        // BINUNICODE / BINBYTES8 / LONG4 declaring more than remains; negative lengths.
        check([0x80, 2, 0x58, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E], ["truncated"])
        check([0x80, 4, 0x8E] + le([UInt64.max]) + [0x2E])
        check([0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E])
        check([0x80, 2, 0x54, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E], ["negative"])
        check([0x80, 2, 0x8B] + le([Int32(64)]) + [UInt8](repeating: 1, count: 64) + [0x2E], ["integer"])
        // Memo GET of an unset index, and a LONG_BINGET far away.
        check([0x80, 2, 0x68, 5, 0x2E], ["memo entry 5"])
        check([0x80, 2, 0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E], ["memo"])
        check([0x80, 2, 0x67] + Array("12\n".utf8) + [0x2E], ["memo entry 12"])
        // Unknown and unsupported opcodes.
        check([0x80, 2, 0xFF, 0x2E], ["0xff"])
        check([0x80, 2, 0x82, 1, 0x2E], ["EXT1"])
        check([0x80, 5, 0x97, 0x2E], ["NEXT_BUFFER"])
        check([0x80, 9, 0x4E, 0x2E], ["protocol 9"])
        // Stack underflows, pops past a MARK, and missing STOP.
        check([0x80, 2, 0x2E], ["underflow"])
        check([0x80, 2, 0x4E, 0x28, 0x61, 0x2E], ["underflow"])
        check([0x80, 2, 0x73, 0x2E])
        check([0x80, 2, 0x74, 0x2E], ["MARK"])
        check([0x80, 2, 0x4E], ["STOP"])
        check([0x80, 2, 0x5D, 0x4E, 0x73, 0x2E], ["underflow"])
        // Type errors.
        check([0x80, 2, 0x4E, 0x4E, 0x61, 0x2E], ["APPEND"])
        check([0x80, 2, 0x7D, 0x5D, 0x4E, 0x73, 0x2E], ["unhashable"])
        check([0x80, 2, 0x4B, 1, 0x7D, 0x62, 0x2E], ["BUILD"])
        check([0x80, 4, 0x4B, 1, 0x4B, 2, 0x93, 0x2E], ["STACK_GLOBAL"])
        check([0x80, 2, 0x58, 2, 0, 0, 0, 0xC3, 0x28, 0x2E], ["UTF-8"])
        // Root values that are not checkpoints.
        check([0x80, 2, 0x4E, 0x2E], ["None"])
        check([0x80, 2, 0x7D, 0x58, 1, 0, 0, 0, 0x61, 0x4B, 1, 0x73, 0x2E], ["'a'"])
        check([0x80, 2, 0x7D, 0x58, 1, 0, 0, 0, 0x61, 0x4E, 0x73, 0x2E], ["'a'"])
        // A list that contains itself is harmless.
        check([0x80, 2, 0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E], ["list"])
    }

    func testDeepNestingAndFloodsAreBounded() {
        func check(_ pickle: [UInt8], _ fragments: [String] = [], line: UInt = #line) {
            expectPTHError(fragments, line: line) {
                _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(pickle))
            }
        }
        let n = 200_000
        // 200k nested tuples, 100k nested lists (EMPTY_LIST chain, then APPENDs), 100k nested
        // dict keys: deep values are harmless, the result is just not a checkpoint.
        check([0x80, 2, 0x4E] + [UInt8](repeating: 0x85, count: n) + [0x2E], ["tuple"])
        check([0x80, 2] + [UInt8](repeating: 0x5D, count: n / 2) + [UInt8](repeating: 0x61, count: n / 2 - 1) + [0x2E], ["list"])
        check([0x80, 2, 0x7D, 0x4E] + [UInt8](repeating: 0x85, count: 40) + [0x4E, 0x73, 0x2E], ["nests tuples"])
        // Floods hit the MARK and stack limits.
        check([0x80, 2] + [UInt8](repeating: 0x28, count: n) + [0x4E, 0x2E], ["MARK"])
        check([0x80, 2] + [UInt8](repeating: 0x4E, count: 300_000) + [0x2E], ["stack"])
        // Memo flood stays within limits; DUP + TUPLE doubles nothing beyond the input.
        var memo: [UInt8] = [0x80, 2, 0x4E]
        for i in 0 ..< 50_000 { memo.append(0x72); memo.appendLE(UInt32(i)) }
        check(memo + [0x2E], ["None"])
        var dup: [UInt8] = [0x80, 2, 0x28, 0x4E]
        dup += [UInt8](repeating: 0x32, count: 100_000)
        dup += [0x74, 0x2E]
        check(dup, ["tuple"])
    }

    func testModuleTreesAreDepthAndVisitBounded() {
        // A chain of 100 nested modules.
        var chain = PickleBuilder()
        func open(_ p: inout PickleBuilder) {
            p.global("torch.nn.modules.container", "Sequential")
            p.op(0x29, 0x81, 0x7D) // EMPTY_TUPLE, NEWOBJ, EMPTY_DICT
            p.string("_modules")
            p.op(0x7D) // EMPTY_DICT
            p.string("0")
        }
        for _ in 0 ..< 100 { open(&chain) }
        chain.op(0x4E)
        for _ in 0 ..< 100 { chain.op(0x73, 0x73, 0x62) } // SETITEM (child), SETITEM (_modules), BUILD
        chain.stop()
        expectPTHError(["deeper than 64"]) { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(chain.finished())) }

        // 50 levels where each module holds the previous level twice: 2^50 paths.
        var dag = PickleBuilder()
        for level in 0 ..< 50 {
            dag.global("my_tools", "rev_3d_part1")
            dag.op(0x29, 0x81, 0x7D)
            dag.string("_modules")
            dag.op(0x7D)
            if level > 0 {
                dag.op(0x28)
                dag.string("a")
                dag.op(0x68, UInt8(level - 1))
                dag.string("b")
                dag.op(0x68, UInt8(level - 1))
                dag.op(0x75)
            }
            dag.op(0x73, 0x62, 0x71, UInt8(level)) // SETITEM, BUILD, BINPUT level
        }
        dag.stop()
        expectPTHError(["module nodes"]) { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(dag.finished())) }

        // A module without BUILD state, and one whose child is not a module.
        var bare = PickleBuilder()
        bare.global("models", "re_3dcnn")
        bare.op(0x29, 0x81)
        bare.stop()
        expectPTHError(["no attribute dict"]) { _ = try PyTorchCheckpoint.loadStateDict(try zipCheckpoint(bare.finished())) }
    }

    // MARK: Damaged files

    func testTruncatedPickleZipAndLegacyFilesThrow() throws {
        let zipBytes = try SharedData.bytes("fixtures/checkpoints/cacti_nb2_state_dict.pth")
        let archive = try ZipArchive(zipBytes)
        let entries = try archive.entries.map { ($0.name, try archive.data(for: $0)) }
        let pickle = try XCTUnwrap(entries.first { $0.0.hasSuffix("/data.pkl") }).1
        func rezip(_ data: [UInt8]) throws -> [UInt8] {
            var writer = ZipWriter()
            for (name, original) in entries { try writer.add(name: name, data: name.hasSuffix("/data.pkl") ? data : original, compress: false) }
            return writer.finish()
        }
        XCTAssertEqual(try PyTorchCheckpoint.loadStateDict(try rezip(pickle)).count, 32)
        for cut in [0, 1, 2, 30, 500, 1000, 2000, 3000, 4000, pickle.count - 2, pickle.count - 1] {
            expectPTHError { _ = try PyTorchCheckpoint.loadStateDict(try rezip(Array(pickle[..<cut]))) }
        }
        for i in 0 ..< 20 {
            let cut = i < 17 ? zipBytes.count * i / 17 : zipBytes.count - [1, 22, 23][i - 17]
            expectPTHError { _ = try PyTorchCheckpoint.loadStateDict(Array(zipBytes[..<cut])) }
        }

        let legacy = try SharedData.bytes("fixtures/checkpoints/cacti_nb2_legacy.pth")
        let cuts = [1, 7, 14, 15, 20, 21, 100, 137, 2000, 4607, 4608, 5000, 5288, 5290, 5296, 5300] +
            (1 ... 4).map { legacy.count - $0 * legacy.count / 5 } + [legacy.count - 1]
        for cut in cuts {
            expectPTHError { _ = try PyTorchCheckpoint.loadStateDict(Array(legacy[..<cut])) }
        }
        // Wrong magic number or protocol version.
        var magic = legacy
        magic[5] ^= 0x40
        expectPTHError(["magic"]) { _ = try PyTorchCheckpoint.loadStateDict(magic) }
        var version = legacy
        version[18] = 0xEA // 1001 -> 1002
        expectPTHError(["1002"]) { _ = try PyTorchCheckpoint.loadStateDict(version) }
        expectPTHError(["not a PyTorch checkpoint"]) { _ = try PyTorchCheckpoint.loadStateDict(Array("hello world".utf8)) }
        expectPTHError { _ = try PyTorchCheckpoint.loadStateDict([]) }
    }

    func testRandomMutationsOfDataPklNeverCrash() throws {
        let zipBytes = try SharedData.bytes("fixtures/checkpoints/cacti_nb2_state_dict.pth")
        let archive = try ZipArchive(zipBytes)
        let entries = try archive.entries.map { ($0.name, try archive.data(for: $0)) }
        let pickle = try XCTUnwrap(entries.first { $0.0.hasSuffix("/data.pkl") }).1
        var generator = SeededGenerator(seed: 20_240_611)
        var failures = 0
        for _ in 0 ..< 300 {
            var mutated = pickle
            for _ in 0 ..< Int.random(in: 1 ... 4, using: &generator) {
                mutated[Int.random(in: 0 ..< mutated.count, using: &generator)] = UInt8.random(in: 0 ... 255, using: &generator)
            }
            var writer = ZipWriter()
            for (name, original) in entries { try writer.add(name: name, data: name.hasSuffix("/data.pkl") ? mutated : original, compress: false) }
            do {
                _ = try PyTorchCheckpoint.loadStateDict(writer.finish())
            } catch let error as FormatError {
                XCTAssertEqual(error.format, "pth")
                XCTAssertFalse(error.message.isEmpty)
                failures += 1
            }
        }
        // Most mutations break the pickle; some only touch a name, a size or a flag and still load.
        print("pth mutation test: \(failures) of 300 mutated data.pkl files were rejected")
        XCTAssertGreaterThan(failures, 100)
    }
}
