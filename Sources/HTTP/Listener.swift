#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Creates the listening socket.
enum Listener {
    /// Binds and listens on `host:port`; returns the non-blocking socket and the bound port.
    static func open(host: String, port: Int, backlog: Int32) throws -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = gai_strerror(status).map { String(cString: $0) } ?? "error \(status)"
            throw HTTPServerError.invalidAddress("\(host): \(reason)")
        }
        defer { freeaddrinfo(list) }

        let info = first.pointee
        let fd = socket(info.ai_family, info.ai_socktype, info.ai_protocol)
        guard fd >= 0 else { throw HTTPServerError.socket(operation: "socket", errno: errno) }
        SocketIO.configureNonBlocking(fd)
        SocketIO.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if info.ai_family == AF_INET6 {
            // "::" serves IPv4 too; a specific IPv6 address only itself.
            SocketIO.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, host == "::" ? 0 : 1)
        }
        guard bind(fd, info.ai_addr, info.ai_addrlen) == 0 else {
            let code = errno
            SocketIO.close(fd)
            throw HTTPServerError.socket(operation: "bind to \(host):\(port)", errno: code)
        }
        guard listen(fd, backlog) == 0 else {
            let code = errno
            SocketIO.close(fd)
            throw HTTPServerError.socket(operation: "listen", errno: code)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            let code = errno
            SocketIO.close(fd)
            throw HTTPServerError.socket(operation: "getsockname", errno: code)
        }
        let description = SocketIO.describe(storage)
        let boundPort = description.split(separator: ":").last.flatMap { Int($0) } ?? port
        return (fd, boundPort)
    }
}
