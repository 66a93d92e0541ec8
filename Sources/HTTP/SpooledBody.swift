import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where request bodies too large to keep in memory are written while they arrive.
public struct BodySpoolPolicy: Sendable, Equatable {
    /// A directory on the same file system as the data (it must exist and be writable).
    public var directory: String
    /// Bodies up to this many bytes stay in memory; larger ones (by Content-Length, or a
    /// chunked body as soon as it grows past it) go to a file in `directory`.
    public var memoryLimit: Int

    /// Creates a policy.
    public init(directory: String, memoryLimit: Int = 1 << 20) {
        self.directory = directory
        self.memoryLimit = memoryLimit
    }
}

/// A request body written to a temporary file as it arrived. The file is removed when the last
/// reference goes away; `mapped()` gives its bytes without reading them into memory.
public final class SpooledBody: @unchecked Sendable {
    /// The temporary file.
    public let path: String
    private let lock = NSLock()
    private var fd: Int32
    private var written = 0

    /// Creates an empty file in `directory`.
    init(directory: String) throws {
        var template = Array((directory + "/upload-XXXXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw HTTPParseError(.serviceUnavailable,
                "The server cannot store the upload right now (\(String(cString: strerror(errno)))); retry later.")
        }
        fd = descriptor
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    deinit {
        if fd >= 0 { close(fd) }
        unlink(path)
    }

    /// Appends bytes; throws (503) when the disk refuses them.
    func append(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try lock.withLock {
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, base + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw HTTPParseError(.serviceUnavailable,
                        "The server could not store the upload (\(String(cString: strerror(errno)))); retry later or send less.")
                }
                offset += n
            }
            written += bytes.count
        }
    }

    /// The body's bytes, mapped read-only from the file (page cache, not process heap).
    public func mapped() throws -> Data {
        try lock.withLock {
            guard written > 0 else { return Data() }
            guard let address = mmap(nil, written, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
                throw HTTPParseError(.internalServerError,
                    "The uploaded body could not be mapped (\(String(cString: strerror(errno)))).")
            }
            return Data(bytesNoCopy: address, count: written, deallocator: .custom { pointer, length in
                munmap(pointer, length)
            })
        }
    }
}
