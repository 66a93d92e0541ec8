#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the monotonic clock after which an operation gives up.
struct Deadline: Sendable {
    let nanoseconds: UInt64

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The deadline `seconds` from now (negative or NaN counts as zero; huge values saturate).
    static func after(_ seconds: Double) -> Deadline {
        let clamped = seconds.isFinite ? min(max(seconds, 0), 1e9) : (seconds > 0 ? 1e9 : 0)
        return Deadline(nanoseconds: now() &+ UInt64(clamped * 1e9))
    }

    var hasPassed: Bool { Deadline.now() >= nanoseconds }

    /// Whether this deadline comes before `other`.
    func isBefore(_ other: Deadline) -> Bool { nanoseconds < other.nanoseconds }

    /// Milliseconds left, rounded up, for `poll`.
    var remainingMilliseconds: Int32 {
        let current = Deadline.now()
        guard nanoseconds > current else { return 0 }
        let ms = (nanoseconds - current + 999_999) / 1_000_000
        return Int32(min(ms, UInt64(Int32.max)))
    }
}

/// What a transport read produced.
enum ReadOutcome {
    case bytes(Int)
    case closed
    case timedOut
    case woken
    case failed
}

/// The outcome of waiting on a socket.
enum WaitOutcome {
    case ready
    case timedOut
    case woken
}

/// Small wrappers over the POSIX socket calls that retry on EINTR.
enum SocketIO {
    /// Waits until `fd` has one of `events`, the deadline passes, or `wakeFD` becomes readable.
    /// Error and hang-up conditions count as ready so the next call reports them.
    static func wait(fd: Int32, events: Int16, deadline: Deadline, wakeFD: Int32? = nil) -> WaitOutcome {
        var fds = [pollfd(fd: fd, events: events, revents: 0)]
        if let wakeFD { fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)) }
        while true {
            let timeout = deadline.remainingMilliseconds
            let result = poll(&fds, nfds_t(fds.count), timeout)
            if result < 0 {
                if errno == EINTR { continue }
                return .ready   // let the following I/O call report the error
            }
            if result == 0 {
                if deadline.hasPassed { return .timedOut }
                continue
            }
            if fds.count > 1 && fds[1].revents != 0 { return .woken }
            return .ready
        }
    }

    /// Reads from a non-blocking socket, waiting up to the deadline.
    static func read(fd: Int32, into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline,
                     wakeFD: Int32?) -> ReadOutcome {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                switch wait(fd: fd, events: Int16(POLLIN), deadline: deadline, wakeFD: wakeFD) {
                case .ready: continue
                case .timedOut: return .timedOut
                case .woken: return .woken
                }
            default:
                return .failed   // ECONNRESET, ETIMEDOUT, …
            }
        }
    }

    /// Writes all bytes to a non-blocking socket, handling partial writes; `false` when the peer
    /// is gone (EPIPE, ECONNRESET) or no byte could be written for `stallTimeout` seconds.
    static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, stallTimeout: Double) -> Bool {
        guard var pointer = bytes.baseAddress else { return true }
        var remaining = bytes.count
        while remaining > 0 {
            let n = send(fd, pointer, remaining, Int32(MSG_NOSIGNAL))
            if n > 0 {
                pointer += n
                remaining -= n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if case .ready = wait(fd: fd, events: Int16(POLLOUT), deadline: .after(stallTimeout)) { continue }
                return false
            }
            return false
        }
        return true
    }

    /// Sets `O_NONBLOCK` and `FD_CLOEXEC`.
    static func configureNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL, 0)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        let fdFlags = fcntl(fd, F_GETFD, 0)
        if fdFlags >= 0 { _ = fcntl(fd, F_SETFD, fdFlags | FD_CLOEXEC) }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        _ = setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Closes a descriptor, ignoring EINTR (the descriptor is released either way on Linux).
    static func close(_ fd: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    /// Half-closes or fully shuts down a socket.
    static func shutdown(_ fd: Int32, writeOnly: Bool) {
        #if canImport(Glibc)
        _ = Glibc.shutdown(fd, Int32(writeOnly ? SHUT_WR : SHUT_RDWR))
        #else
        _ = Darwin.shutdown(fd, writeOnly ? SHUT_WR : SHUT_RDWR)
        #endif
    }

    /// A NUL-terminated C character buffer as a String.
    static func string(_ chars: [CChar]) -> String {
        chars.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, buffer.contains(0) else { return "" }
            return String(cString: base)
        }
    }

    /// Formats a socket address as `host:port` or `[v6host]:port`.
    static func describe(_ storage: sockaddr_storage) -> String {
        var copy = storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(copy.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &copy) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var address = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                    return "\(SocketIO.string(text)):\(UInt16(bigEndian: sin.pointee.sin_port))"
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &copy) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var address = sin6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                    return "[\(SocketIO.string(text))]:\(UInt16(bigEndian: sin6.pointee.sin6_port))"
                }
            }
        default:
            return ""
        }
    }
}
