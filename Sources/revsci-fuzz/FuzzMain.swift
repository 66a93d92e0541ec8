import Foundation
import Formats
import HTTP
import SCICore

/// A bounded random-mutation fuzzer for every file parser. It starts from valid seed files
/// (made here with the encoders, plus any files under --corpus), mutates them (bit flips,
/// byte overwrites with boundary values, truncation, splicing, chunk duplication) and feeds each
/// mutant to the decoders. A decoder may throw; it must never crash, hang or allocate without
/// bound. A crash kills this process, so a non-zero exit (or a signal) is a finding; the input
/// being tried is written to --crash-dir/last-input first so it can be replayed.
///
///     revsci-fuzz [--iterations N] [--seconds S] [--seed K] [--corpus DIR]... [--only npy,mat,...]
///     revsci-fuzz --replay FILE
@main
struct FuzzMain {
    struct Target {
        let name: String
        let decode: ([UInt8]) throws -> Void
        var seeds: [[UInt8]]
    }

    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        var iterations = 20000, seconds = 0.0, seed: UInt64 = 1
        var corpora: [String] = [], only: Set<String>? = nil, replay: String?, writeSeeds: String?
        var crashDir = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-fuzz").path
        while !args.isEmpty {
            let flag = args.removeFirst()
            let value = args.isEmpty ? "" : args.removeFirst()
            switch flag {
            case "--iterations": iterations = Int(value) ?? iterations
            case "--seconds": seconds = Double(value) ?? 0
            case "--seed": seed = UInt64(value) ?? seed
            case "--corpus": corpora.append(value)
            case "--only": only = Set(value.split(separator: ",").map(String.init))
            case "--crash-dir": crashDir = value
            case "--replay": replay = value
            case "--write-seeds": writeSeeds = value
            default:
                print("usage: revsci-fuzz [--iterations N] [--seconds S] [--seed K] [--corpus DIR] [--only npy,npz,mat,png,safetensors,pth,zip,multipart,http] [--replay FILE] [--write-seeds DIR]")
                exit(2)
            }
        }
        // Small limits so that "huge declared size" mutants are refused quickly.
        let limits = DecodeLimits(maxElements: 1 << 22, maxInflatedBytes: 64 << 20, maxRank: 8)
        var targets: [Target]
        do { targets = try makeTargets(limits: limits) } catch {
            print("fuzz: cannot build the seed files: \(error)")
            exit(1)
        }
        if let only { targets = targets.filter { only.contains($0.name) } }

        if let writeSeeds {
            try? FileManager.default.createDirectory(atPath: writeSeeds, withIntermediateDirectories: true)
            for t in targets {
                for (i, seed) in t.seeds.enumerated() {
                    _ = FileManager.default.createFile(atPath: "\(writeSeeds)/seed\(i).\(t.name)", contents: Data(seed))
                }
            }
            return
        }
        if let replay {
            let bytes = [UInt8](FileManager.default.contents(atPath: replay) ?? Data())
            for t in targets {
                do { try t.decode(bytes); print("\(t.name): decoded") } catch { print("\(t.name): \(error)") }
            }
            return
        }
        addCorpusFiles(corpora, to: &targets)
        try? FileManager.default.createDirectory(atPath: crashDir, withIntermediateDirectories: true)
        let lastInput = URL(fileURLWithPath: crashDir).appendingPathComponent("last-input")

        var rng = SeededGenerator(seed: seed)
        let start = Date()
        var total = 0, rejected = 0, accepted = 0
        var slowest = (name: "", seconds: 0.0)
        outer: for i in 0 ..< iterations {
            for t in targets {
                if seconds > 0, Date().timeIntervalSince(start) > seconds { break outer }
                let input = mutate(t.seeds[Int(rng.next() % UInt64(t.seeds.count))], others: t.seeds, rng: &rng)
                // Written before decoding so a crash leaves the culprit behind (every 64th input, and
                // always for the first ones, keeps disk traffic low; replay with --seed to reproduce).
                if i < 64 || i % 64 == 0 { try? Data(input).write(to: lastInput) }
                let t0 = Date()
                do { try t.decode(input); accepted += 1 } catch { rejected += 1 }
                let dt = Date().timeIntervalSince(t0)
                if dt > slowest.seconds { slowest = (t.name, dt) }
                total += 1
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        print("fuzz: \(total) inputs over \(targets.map(\.name).joined(separator: ", ")) in \(String(format: "%.1f", elapsed)) s: \(rejected) rejected with an error, \(accepted) decoded, 0 crashes; slowest input \(String(format: "%.3f", slowest.seconds)) s (\(slowest.name))")
    }

    static func makeTargets(limits: DecodeLimits) throws -> [Target] {
        let small = NumericArray(shape: [2, 3, 4], float32: (0 ..< 24).map { Float($0) * 0.5 })
        let bytesArray = NumericArray(shape: [3, 5], storage: .uint8((0 ..< 15).map { UInt8($0 * 17) }))
        let doubles = NumericArray(shape: [4, 2], storage: .float64((0 ..< 8).map { Double($0) / 3 }))
        let gray = (0 ..< 48).map { UInt8($0 * 5) }
        var zip = ZipWriter()
        try zip.add(name: "a.txt", data: Array("hello hello hello".utf8), compress: true)
        try zip.add(name: "b.bin", data: [1, 2, 3, 4], compress: false)
        return [
            Target(name: "npy", decode: { _ = try NPY.decode($0, limits: limits) },
                   seeds: [NPY.encode(small), NPY.encode(bytesArray), NPY.encode(doubles)]),
            Target(name: "npz", decode: { _ = try NPZ.decode($0, limits: limits) },
                   seeds: [try NPZ.encode([("x", small), ("y", bytesArray)], compressed: true),
                           try NPZ.encode([("x", doubles)], compressed: false)]),
            Target(name: "mat", decode: { _ = try MATFile.decode($0, limits: limits) },
                   seeds: [MATFile.encode([("orig", bytesArray), ("mask", small)], compressed: true),
                           MATFile.encode([("meas", doubles)], compressed: false)]),
            Target(name: "png", decode: { _ = try PNG.decode($0, limits: limits) },
                   seeds: [PNG.encodeGray8(width: 8, height: 6, pixels: gray),
                           PNG.encodeGray16(width: 4, height: 3, pixels: (0 ..< 12).map { UInt16($0 * 5000) }),
                           PNG.encodeRGB8(width: 4, height: 4, pixels: gray)]),
            Target(name: "safetensors", decode: { _ = try SafetensorsFile.decode($0, limits: limits) },
                   seeds: [SafetensorsFile.encode([("w", small), ("b", doubles)], metadata: ["format": "pt"])]),
            Target(name: "pth", decode: { _ = try PyTorchCheckpoint.loadStateDict($0, limits: limits) },
                   seeds: [pthSeed()]),
            Target(name: "zip", decode: { bytes in
                let archive = try ZipArchive(bytes, limits: limits)
                for e in archive.entries { _ = try archive.data(for: e) }
            }, seeds: [zip.finish()]),
            Target(name: "multipart", decode: { bytes in
                _ = try MultipartFormData.parse(body: bytes, contentType: "multipart/form-data; boundary=\(multipartBoundary)",
                                                limits: .init(maxParts: 64, maxPartHeaderBytes: 2048, maxPartHeaderCount: 16))
            }, seeds: multipartSeeds(NPY.encode(small))),
            Target(name: "http", decode: parseHTTP, seeds: httpSeeds()),
        ]
    }

    static let multipartBoundary = "fuzz-b0undary"

    static func multipartSeeds(_ file: [UInt8]) -> [[UInt8]] {
        let b = multipartBoundary
        let one = Array("--\(b)\r\nContent-Disposition: form-data; name=\"measurement\"; filename=\"m.npy\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
            + file + Array("\r\n--\(b)\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{\"iterations\": 3}\r\n--\(b)--\r\n".utf8)
        let preamble = Array("preamble\r\n--\(b)\r\nContent-Disposition: form-data; name*=UTF-8''x; filename*=UTF-8''%C3%A9.npy\r\n\r\n\r\n--\(b)--".utf8)
        return [one, preamble]
    }

    static func httpSeeds() -> [[UInt8]] {
        let chunked = "POST /v1/jobs HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5;x=y\r\nhello\r\n0\r\nTrailer: t\r\n\r\n"
        let pipelined = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\nPOST /v1/masks HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabcGET / HTTP/1.1\r\nHost: h\r\n\r\n"
        return [Array(chunked.utf8), Array(pipelined.utf8)]
    }

    /// Feeds the bytes to the request parser in pieces whose sizes come from the input itself,
    /// taking every event until it wants more data or fails; small limits, some bodies spooled.
    static func parseHTTP(_ bytes: [UInt8]) throws {
        var parser = HTTPRequestParser(limits: .init(maxHeaderBytes: 1024, maxHeaderCount: 16, maxBodyBytes: 4096, maxChunkLineBytes: 64))
        parser.spoolPolicy = BodySpoolPolicy(directory: NSTemporaryDirectory(), memoryLimit: 8)
        var offset = 0
        var events = 0
        while offset < bytes.count {
            let piece = max(1, Int(bytes[offset] % 17))
            let end = min(bytes.count, offset + piece)
            bytes[offset ..< end].withUnsafeBytes { parser.append($0) }
            offset = end
            loop: while events < 10_000 {
                events += 1
                switch parser.next() {
                case .needMoreData: break loop
                case .head, .request: continue
                case .failure(let error): throw error
                }
            }
        }
    }

    static func addCorpusFiles(_ dirs: [String], to targets: inout [Target]) {
        let fm = FileManager.default
        for dir in dirs {
            guard let walker = fm.enumerator(atPath: dir) else { continue }
            for case let rel as String in walker {
                let path = (dir as NSString).appendingPathComponent(rel)
                guard let attrs = try? fm.attributesOfItem(atPath: path), (attrs[.type] as? FileAttributeType) == .typeRegular,
                      let size = attrs[.size] as? Int, size < 4 << 20, let data = fm.contents(atPath: path) else { continue }
                let ext = (rel as NSString).pathExtension.lowercased()
                // A .pth seeds both the checkpoint reader and the plain zip reader.
                for name in ext == "pth" ? ["pth", "zip"] : [ext] {
                    if let i = targets.firstIndex(where: { $0.name == name }) { targets[i].seeds.append([UInt8](data)) }
                }
            }
        }
    }

    /// A minimal zip-format checkpoint holding {"w": a 4-element float32 tensor}, pickled by hand
    /// (protocol 2), so the checkpoint reader has a seed even without a corpus folder.
    static func pthSeed() -> [UInt8] {
        var p: [UInt8] = [0x80, 0x02, 0x7D] // PROTO 2, EMPTY_DICT
        func unicode(_ s: String) { let b = Array(s.utf8); p += [0x58]; p.appendLE(UInt32(b.count)); p += b }
        func global(_ module: String, _ name: String) { p += [0x63] + Array("\(module)\n\(name)\n".utf8) }
        unicode("w")
        global("torch._utils", "_rebuild_tensor_v2")
        p += [0x28, 0x28] // MARK (arguments), MARK (persistent id)
        unicode("storage"); global("torch", "FloatStorage"); unicode("0"); unicode("cpu"); p += [0x4B, 4]
        p += [0x74, 0x51] // TUPLE, BINPERSID
        p += [0x4B, 0, 0x4B, 4, 0x85, 0x4B, 1, 0x85, 0x89] // offset 0, size (4,), stride (1,), requires_grad False
        global("collections", "OrderedDict"); p += [0x29, 0x52] // OrderedDict()
        p += [0x74, 0x52, 0x73, 0x2E] // TUPLE, REDUCE, SETITEM, STOP
        var storage: [UInt8] = []
        for v: Float in [1, -2, 0.5, 3] { storage.appendLE(v.bitPattern) }
        var zip = ZipWriter()
        try? zip.add(name: "archive/data.pkl", data: p, compress: false)
        try? zip.add(name: "archive/data/0", data: storage, compress: false)
        return zip.finish()
    }

    static let interesting: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x20, 0x40]

    static func mutate(_ seed: [UInt8], others: [[UInt8]], rng: inout SeededGenerator) -> [UInt8] {
        var b = seed
        let rounds = 1 + Int(rng.next() % 4)
        for _ in 0 ..< rounds {
            if b.isEmpty { b = [UInt8(truncatingIfNeeded: rng.next())]; continue }
            let pos = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 9 {
            case 0: b[pos] ^= UInt8(1 << (rng.next() % 8))
            case 1: b[pos] = interesting[Int(rng.next() % UInt64(interesting.count))]
            case 2: b[pos] = UInt8(truncatingIfNeeded: rng.next())
            case 3: b.removeSubrange(pos...) // truncate
            case 4: // overwrite up to 8 bytes with 0xFF or 0x00 (huge or zero lengths)
                let v: UInt8 = rng.next() % 2 == 0 ? 0xFF : 0x00
                for i in pos ..< min(b.count, pos + 1 + Int(rng.next() % 8)) { b[i] = v }
            case 5: // duplicate a chunk
                let len = min(b.count - pos, 1 + Int(rng.next() % 64))
                b.insert(contentsOf: b[pos ..< pos + len], at: pos)
            case 6: // delete a chunk
                let len = min(b.count - pos, 1 + Int(rng.next() % 64))
                b.removeSubrange(pos ..< pos + len)
            case 7: // splice with another seed
                let other = others[Int(rng.next() % UInt64(others.count))]
                if !other.isEmpty {
                    let from = Int(rng.next() % UInt64(other.count))
                    b = Array(b[..<pos]) + Array(other[from...])
                }
            default: // a random 32-bit little-endian value (declared sizes, offsets)
                let v = UInt32(truncatingIfNeeded: rng.next())
                for i in 0 ..< 4 where pos + i < b.count { b[pos + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            }
        }
        return b
    }
}
