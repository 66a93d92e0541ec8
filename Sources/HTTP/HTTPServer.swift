import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An HTTP/1.1 server (optionally HTTPS) on POSIX sockets.
///
/// One thread serves each connection with blocking-style I/O bounded by deadlines; the
/// handler runs as a Swift task, so handlers of different connections run concurrently.
/// Requests on one connection (including pipelined ones) are answered strictly in order.
///
/// ```swift
/// let server = HTTPServer(configuration: .init(port: 0)) { request in
///     .text("hello \(request.path)")
/// }
/// try server.start()
/// print(server.boundPort)
/// server.shutdown(gracePeriod: 10)
/// ```
public final class HTTPServer: @unchecked Sendable {
    /// Produces the response for one request. Called concurrently for different connections.
    public typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse
    /// Produces the response on the connection's own thread (it may block: every connection
    /// has a thread, so nothing else waits behind it).
    public typealias BlockingHandler = @Sendable (HTTPRequest) -> HTTPResponse
    /// Decides from a request's head alone, before its body is read, whether to take the body:
    /// nil takes it; a response refuses it (sent at once, without `100 Continue`, and the
    /// connection closes without reading the body). Runs on the connection's thread.
    public typealias Admission = @Sendable (HTTPRequestHead, _ remoteAddress: String) -> HTTPResponse?

    enum HandlerKind {
        case async(Handler)
        case blocking(BlockingHandler)
    }

    private enum Phase {
        case idle
        case running
        case stopping
        case stopped
    }

    /// The configuration the server was created with.
    public let configuration: Configuration
    let handler: HandlerKind
    let admission: Admission?

    private let lock = NSCondition()
    private var phase = Phase.idle
    private var port = 0
    private var wakePipe: (read: Int32, write: Int32) = (-1, -1)
    private var connections: [Int: Int32] = [:]
    private var clientOf: [Int: String] = [:]
    private var connectionsPerClient: [String: Int] = [:]
    private var nextConnectionID = 0
    private var rejecting = 0
    private var acceptLoopRunning = false
    private(set) var tlsContext: TLSContext?

    /// Connections answered with 503 at the same time at most; further ones are just closed.
    private static let maxConcurrentRejections = 16

    /// Creates a server; nothing happens until `start()`.
    public init(configuration: Configuration = Configuration(), admission: Admission? = nil,
                handler: @escaping Handler) {
        self.configuration = configuration
        self.admission = admission
        self.handler = .async(handler)
    }

    /// Creates a server whose handler runs on each connection's thread.
    public init(configuration: Configuration = Configuration(), admission: Admission? = nil,
                blockingHandler: @escaping BlockingHandler) {
        self.configuration = configuration
        self.admission = admission
        self.handler = .blocking(blockingHandler)
    }

    deinit {
        if wakePipe.read >= 0 { SocketIO.close(wakePipe.read) }
        if wakePipe.write >= 0 { SocketIO.close(wakePipe.write) }
    }

    /// The port the server listens on (useful with port 0); 0 before `start()`.
    public var boundPort: Int {
        lock.lock()
        defer { lock.unlock() }
        return port
    }

    /// The number of open connections being served (rejected ones excluded).
    public var activeConnectionCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return connections.count
    }

    /// Binds the configured address and starts accepting connections.
    ///
    /// Also sets `SIGPIPE` to be ignored process-wide (OpenSSL writes with `write(2)`).
    /// - Throws: `HTTPServerError` when already started, misconfigured, the certificate or
    ///   key cannot be loaded, or the address cannot be bound.
    public func start() throws {
        lock.lock()
        defer { lock.unlock() }
        guard phase == .idle else { throw HTTPServerError.alreadyStarted }
        try configuration.validate()
        signal(SIGPIPE, SIG_IGN)
        if let tls = configuration.tls {
            tlsContext = try TLSContext(certificatePath: tls.certificatePath, privateKeyPath: tls.privateKeyPath)
        }
        let listener = try Listener.open(host: configuration.host, port: configuration.port,
                                         backlog: configuration.backlog)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            let code = errno
            SocketIO.close(listener.fd)
            throw HTTPServerError.socket(operation: "pipe", errno: code)
        }
        SocketIO.configureNonBlocking(fds[0])
        SocketIO.configureNonBlocking(fds[1])
        wakePipe = (fds[0], fds[1])
        port = listener.port
        phase = .running
        acceptLoopRunning = true
        let wake = fds[0]
        guard DetachedThread.start({ [self] in acceptLoop(listenFD: listener.fd, wakeFD: wake) }) else {
            SocketIO.close(listener.fd)
            phase = .stopped
            acceptLoopRunning = false
            throw HTTPServerError.socket(operation: "pthread_create", errno: errno)
        }
    }

    /// Stops the server gracefully: stops accepting at once, closes idle keep-alive
    /// connections, lets requests in flight finish (their responses carry
    /// `Connection: close`) for up to `gracePeriod` seconds, then shuts the remaining
    /// sockets down. Blocks until done; safe to call more than once.
    public func shutdown(gracePeriod: Double = 10) {
        lock.lock()
        guard phase == .running else {
            if phase == .idle { phase = .stopped }
            lock.unlock()
            return
        }
        phase = .stopping
        var byte: UInt8 = 1
        _ = write(wakePipe.write, &byte, 1)   // level-triggered: stays readable for every poller
        while acceptLoopRunning { lock.wait() }

        let graceDeadline = Date(timeIntervalSinceNow: max(0, gracePeriod))
        while !connections.isEmpty && Date() < graceDeadline {
            _ = lock.wait(until: graceDeadline)
        }
        if !connections.isEmpty {
            for fd in connections.values { SocketIO.shutdown(fd, writeOnly: false) }
            let forceDeadline = Date(timeIntervalSinceNow: 1)
            while !connections.isEmpty && Date() < forceDeadline {
                _ = lock.wait(until: forceDeadline)
            }
        }
        phase = .stopped
        lock.unlock()
    }

    // MARK: - Internals used by connections

    /// Whether shutdown has begun.
    var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return phase != .running
    }

    var wakeFD: Int32 { wakePipe.read }

    /// Unregisters a connection; its thread closes the socket afterwards, so a forced
    /// shutdown never touches a descriptor that was closed and reused.
    func connectionFinished(id: Int) {
        lock.lock()
        connections[id] = nil
        if let client = clientOf.removeValue(forKey: id) {
            let left = (connectionsPerClient[client] ?? 1) - 1
            connectionsPerClient[client] = left > 0 ? left : nil
        }
        lock.broadcast()
        lock.unlock()
    }

    func rejectionFinished(fd: Int32) {
        SocketIO.close(fd)
        lock.lock()
        rejecting -= 1
        lock.unlock()
    }

    /// Runs the handler as a task and waits for its response on the connection thread.
    func respond(to request: HTTPRequest) -> HTTPResponse {
        final class Box: @unchecked Sendable { var response: HTTPResponse? }
        let box = Box()
        switch handler {
        case .blocking(let handler):
            box.response = handler(request)
        case .async(let handler):
            let done = DispatchSemaphore(value: 0)
            Task.detached {
                box.response = await handler(request)
                done.signal()
            }
            done.wait()
        }
        guard var response = box.response else {
            return .problem(.internalServerError, detail: "The handler produced no response.")
        }
        if response.status.isInformational {
            response = .problem(.internalServerError,
                                detail: "The handler returned the interim status \(response.status.code) as a final response.")
        }
        return response
    }

    // MARK: - Accepting

    private func acceptLoop(listenFD: Int32, wakeFD: Int32) {
        defer {
            SocketIO.close(listenFD)
            lock.lock()
            acceptLoopRunning = false
            lock.broadcast()
            lock.unlock()
        }
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                usleep(10_000)
                continue
            }
            if fds[1].revents != 0 || isStopping { return }
            acceptPending(listenFD)
        }
    }

    /// Accepts every queued connection.
    private func acceptPending(_ listenFD: Int32) {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listenFD, $0, &length) }
            }
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    usleep(10_000)   // out of descriptors or memory: back off instead of spinning
                    return
                default:
                    return           // EAGAIN: queue drained
                }
            }
            SocketIO.configureNonBlocking(fd)
            SocketIO.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            admit(fd: fd, remoteAddress: SocketIO.describe(storage))
        }
    }

    /// The host part of `host:port` or `[v6]:port`: connections are counted per address.
    static func clientHost(_ remoteAddress: String) -> String {
        if remoteAddress.hasPrefix("["), let close = remoteAddress.firstIndex(of: "]") {
            return String(remoteAddress[remoteAddress.index(after: remoteAddress.startIndex)..<close])
        }
        if let colon = remoteAddress.lastIndex(of: ":") { return String(remoteAddress[..<colon]) }
        return remoteAddress
    }

    private func admit(fd: Int32, remoteAddress: String) {
        lock.lock()
        guard phase == .running else {
            lock.unlock()
            SocketIO.close(fd)
            return
        }
        let client = Self.clientHost(remoteAddress)
        let clientCount = connectionsPerClient[client] ?? 0
        if connections.count >= configuration.maxConnections || clientCount >= configuration.maxConnectionsPerClient {
            let detail = connections.count >= configuration.maxConnections
                ? "The server is handling its maximum of \(configuration.maxConnections) connections; retry shortly."
                : "Your address already holds \(clientCount) connections, the most one client may open here (\(configuration.maxConnectionsPerClient)); reuse them (keep-alive) or close some."
            guard rejecting < Self.maxConcurrentRejections else {
                lock.unlock()
                SocketIO.close(fd)
                return
            }
            rejecting += 1
            lock.unlock()
            let connection = HTTPConnection(server: self, id: -1, fd: fd, remoteAddress: remoteAddress)
            if !DetachedThread.start({ connection.reject(detail: detail) }) { rejectionFinished(fd: fd) }
            return
        }
        let id = nextConnectionID
        nextConnectionID += 1
        connections[id] = fd
        clientOf[id] = client
        connectionsPerClient[client] = clientCount + 1
        lock.unlock()
        let connection = HTTPConnection(server: self, id: id, fd: fd, remoteAddress: remoteAddress)
        if !DetachedThread.start({ connection.run() }) {
            connectionFinished(id: id)
            SocketIO.close(fd)
        }
    }
}
