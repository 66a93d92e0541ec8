#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A response body sent straight from an open file in slices, so a large download never
/// sits in memory. The descriptor is opened by the handler (the file may be removed
/// afterwards and still be sent whole) and closed when the response is gone.
public final class ResponseBodyFile: @unchecked Sendable {
    let fd: Int32
    /// The bytes to send (the file's size when it was opened).
    public let count: Int

    /// Opens `path` for sending; nil when it cannot be opened.
    public init?(path: String) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            return nil
        }
        fd = descriptor
        count = Int(info.st_size)
    }

    deinit { close(fd) }

    /// Reads up to `buffer.count` bytes at `offset`; 0 at the end, -1 on error.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        while true {
            let n = pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }
}
