import Foundation
import Formats
import SCICore

/// What the store knows about one mask.
public struct MaskInfo: Codable, Sendable, Equatable {
    /// How a mask came into the store.
    public enum Source: String, Codable, Sendable {
        /// `POST /v1/masks`: kept until `DELETE /v1/masks/{id}`.
        case upload
        /// Sent inline with a job (or bundled in its .mat): removed by the janitor once no job uses it.
        case job
    }

    public var id: String
    public var frames: Int
    public var height: Int
    public var width: Int
    public var created: Date
    public var source: Source
    public var bytes: Int64

    /// The mask's document in the API (without the jobs using it, which the caller adds).
    func json(jobs: [String]) -> JSONValue {
        .object([
            ("id", .string(id)),
            ("shape", .object([("frames", .int(frames)), ("height", .int(height)), ("width", .int(width))])),
            ("created", .string(Timestamp.format(created))),
            ("source", .string(source.rawValue)),
            ("bytes", .int(Int(bytes))),
            ("jobs", .array(jobs.map { .string($0) })),
            ("links", .object([("self", .string("/v1/masks/\(id)"))])),
        ])
    }
}

/// Masks on disk, named by content: `masks/<id>/mask.npy` (float32, T x H x W, the values the
/// reconstruction uses) and `masks/<id>/mask.json`. The id is the SHA-256 (hex) of the canonical
/// encoding: T, H and W as little-endian UInt64, then the T*H*W values as little-endian float32
/// (frame-major, row-major; -0 written as +0). The same mask sent twice, in any file format,
/// gets the same id.
public final class MaskStore: @unchecked Sendable {
    public let directory: String
    private let staging: String
    private let lock = NSLock()
    private var index: [String: MaskInfo] = [:]
    private var frozen = false

    /// Opens (and creates) the store in `directory`, staging new masks in `staging`.
    public init(directory: String, staging: String, log: ServiceLog) throws {
        self.directory = directory
        self.staging = staging
        try DurableFile.makeDirectory(directory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        for name in names where Self.isValidID(name) {
            let folder = directory + "/" + name
            for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where file.hasPrefix(".tmp-") {
                DurableFile.removeTree(folder + "/" + file)
            }
            guard let data = FileManager.default.contents(atPath: folder + "/mask.json"),
                  var info = try? decoder.decode(MaskInfo.self, from: data), info.id == name,
                  DurableFile.exists(folder + "/mask.npy") else {
                log("mask store: skipping \(folder) (incomplete or unreadable)")
                continue
            }
            info.bytes = DurableFile.treeSize(folder)
            index[name] = info
        }
    }

    /// Whether `text` has the form of a mask id (64 lowercase hex digits).
    public static func isValidID(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// The canonical encoding's SHA-256 (hex), i.e. the mask's id.
    public static func contentID(_ mask: MaskStack) -> String {
        var hasher = SHA256()
        var header: [UInt8] = []
        for n in [mask.frames, mask.height, mask.width] {
            let v = UInt64(n)
            for shift in stride(from: 0, to: 64, by: 8) { header.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
        }
        hasher.update(header)
        // -0 becomes +0; values are hashed as little-endian float32.
        let values = mask.values.map { $0 == 0 ? Float(0) : $0 }
        #if _endian(little)
        let bytes = values.withUnsafeBytes { Array($0) }
        #else
        let bytes = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        #endif
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    /// Stores `mask` unless it is already there. A mask stored for a job and later uploaded
    /// explicitly becomes an `upload` (kept until deleted).
    /// - Returns: its info and whether it was new.
    @discardableResult
    public func put(_ mask: MaskStack, source: MaskInfo.Source) throws -> (info: MaskInfo, created: Bool) {
        let id = Self.contentID(mask)
        lock.lock()
        defer { lock.unlock() }
        if frozen { throw StorageError("the mask store is closed") }
        if var existing = index[id] {
            if source == .upload && existing.source == .job {
                existing.source = .upload
                try writeInfo(existing, folder: directory + "/" + id)
                index[id] = existing
            }
            return (existing, false)
        }
        let folder = staging + "/mask-" + DurableFile.randomHex(8)
        try DurableFile.makeDirectory(folder)
        do {
            let npy = NPY.encode(NumericArray(shape: [mask.frames, mask.height, mask.width], float32: mask.values))
            try DurableFile.writeNew(npy, to: folder + "/mask.npy")
            var info = MaskInfo(id: id, frames: mask.frames, height: mask.height, width: mask.width, created: Date(),
                                source: source, bytes: 0)
            try writeInfo(info, folder: folder)
            try DurableFile.syncDirectory(folder)
            try DurableFile.rename(folder, directory + "/" + id)
            try DurableFile.syncDirectory(directory)
            info.bytes = DurableFile.treeSize(directory + "/" + id)
            index[id] = info
            return (info, true)
        } catch {
            DurableFile.removeTree(folder)
            throw error
        }
    }

    private func writeInfo(_ info: MaskInfo, folder: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .secondsSince1970
        try DurableFile.write([UInt8](try encoder.encode(info)), to: folder + "/mask.json")
    }

    /// The mask's info, or nil.
    public func info(_ id: String) -> MaskInfo? {
        lock.withLock { index[id] }
    }

    /// Every mask, oldest first.
    public func all() -> [MaskInfo] {
        lock.withLock { Array(index.values) }.sorted { ($0.created, $0.id) < ($1.created, $1.id) }
    }

    /// The path of the mask's canonical .npy file.
    public func npyPath(_ id: String) -> String { directory + "/" + id + "/mask.npy" }

    /// Reads a stored mask back.
    public func load(_ id: String) throws -> MaskStack {
        guard info(id) != nil else { throw StorageError("mask \(id) is not in the store") }
        let array = try NPY.decode(try DurableFile.read(npyPath(id)))
        return try SCIInput.mask(array, order: .framesFirst)
    }

    /// Removes a mask; false when it was not there.
    @discardableResult
    public func remove(_ id: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !frozen, index.removeValue(forKey: id) != nil else { return false }
        let doomed = staging + "/deleted-mask-" + DurableFile.randomHex(8)
        if (try? DurableFile.rename(directory + "/" + id, doomed)) != nil {
            try? DurableFile.syncDirectory(directory)
            DurableFile.removeTree(doomed)
        } else {
            DurableFile.removeTree(directory + "/" + id)
        }
        return true
    }

    /// Bytes used by all masks.
    public var totalBytes: Int64 {
        lock.withLock { index.values.reduce(0) { $0 + $1.bytes } }
    }

    /// Stops all writes (used to simulate a crash in tests: the process "dies" but its threads
    /// may still be winding down).
    func freeze() { lock.withLock { frozen = true } }
}
