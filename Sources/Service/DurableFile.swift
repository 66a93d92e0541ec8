import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An I/O failure of the job or mask store; `message` names the path and the reason.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Crash-safe file operations: a file is written completely and flushed to disk under a
/// temporary name, then renamed over its final name, and the directory is flushed so that the
/// rename itself survives a power cut. Readers see the old file or the new one, never a mix.
public enum DurableFile {
    /// Writes `bytes` to `path` atomically and durably.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = directory + "/.tmp-" + randomHex(8) + "-" + (path as NSString).lastPathComponent
        do {
            try writeNew(bytes, to: temporary)
            try rename(temporary, path)
            try syncDirectory(directory)
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Creates `path` (which must not exist), writes `bytes` and flushes them to disk.
    public static func writeNew<Bytes: ContiguousBytes>(_ bytes: Bytes, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create", path) }
        defer { close(fd) }
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", path)
                }
                offset += n
            }
        }
        guard fsync(fd) == 0 else { throw failure("fsync", path) }
    }

    /// Renames `from` to `to` (atomic on one file system; replaces a file at `to`).
    public static func rename(_ from: String, _ to: String) throws {
        guard posixRename(from, to) == 0 else { throw failure("rename to \(to)", from) }
    }

    /// Flushes a directory's entries (creations, renames, removals) to disk.
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open directory", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("fsync directory", path) }
    }

    /// Creates a directory (and its parents) if missing.
    public static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StorageError("cannot create directory \(path): \(error.localizedDescription)")
        }
    }

    /// The whole content of a file.
    public static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StorageError("cannot read \(path)")
        }
        return [UInt8](data)
    }

    /// Removes a file or directory tree; missing paths are fine.
    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Bytes used by the regular files under `path` (recursively).
    public static func treeSize(_ path: String) -> Int64 {
        var total: Int64 = 0
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        if (info.st_mode & S_IFMT) == S_IFREG { return Int64(info.st_size) }
        guard (info.st_mode & S_IFMT) == S_IFDIR,
              let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return 0 }
        for name in names { total += treeSize(path + "/" + name) }
        return total
    }

    /// Whether `path` exists.
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// `count` random bytes as lowercase hex.
    public static func randomHex(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(2 * count)
        for _ in 0 ..< count {
            let byte = UInt8.random(in: 0 ... 255, using: &generator)
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func failure(_ operation: String, _ path: String) -> StorageError {
        let code = errno
        let reason = strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return StorageError("\(operation) failed for \(path): \(reason)")
    }
}

/// An exclusive `flock` on a file in the data directory, so that two servers never share one
/// store. The kernel drops it when the process dies, even by `kill -9`.
public final class DirectoryLock: @unchecked Sendable {
    private var fd: Int32

    /// Takes the lock or throws, naming the holder's pid when it wrote one.
    public init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DurableFile.failure("open lock file", path) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? DurableFile.read(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            close(fd)
            fd = -1
            throw StorageError("the data directory is in use by another revsci server (lock \(path)\(holder.isEmpty ? "" : ", pid \(holder.trimmingCharacters(in: .whitespacesAndNewlines))")); stop it or choose another data_dir")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
    }

    /// Releases the lock (also done on deinit).
    public func release() {
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}

#if canImport(Glibc)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { Glibc.write(fd, buffer, count) }
private func posixRename(_ from: String, _ to: String) -> Int32 { Glibc.rename(from, to) }
#else
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { Darwin.write(fd, buffer, count) }
private func posixRename(_ from: String, _ to: String) -> Int32 { Darwin.rename(from, to) }
#endif
