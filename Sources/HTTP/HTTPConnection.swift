/// Serves one accepted connection on its own thread: reads and parses requests, calls the
/// handler, writes responses in order, and enforces the timeouts.
final class HTTPConnection: @unchecked Sendable {
    private let server: HTTPServer
    private let id: Int
    private let fd: Int32
    private let remoteAddress: String
    private let configuration: HTTPServer.Configuration
    private var parser: HTTPRequestParser
    private var transport: ConnectionTransport?

    /// Most bytes read and discarded while lingering before close.
    private static let lingerByteLimit = 1 << 20
    private static let readChunk = 64 * 1024

    init(server: HTTPServer, id: Int, fd: Int32, remoteAddress: String) {
        self.server = server
        self.id = id
        self.fd = fd
        self.remoteAddress = remoteAddress
        configuration = server.configuration
        parser = HTTPRequestParser(limits: server.configuration.parserLimits)
        parser.spoolPolicy = server.configuration.bodySpool
    }

    /// Serves the connection until it ends, then closes it.
    func run() {
        var linger = false
        if let transport = makeTransport(), transport.handshake(deadline: .after(configuration.headTimeout)) {
            self.transport = transport
            linger = serve(transport)
        }
        // Unregister first: a graceful shutdown need not wait for the linger below, and the
        // descriptor is closed only after it left the registry.
        server.connectionFinished(id: id)
        close(linger: linger, lingerSeconds: 1)
        SocketIO.close(fd)
    }

    /// Answers 503 (too many connections, in all or from this client) and closes.
    func reject(detail: String) {
        if let transport = makeTransport(), transport.handshake(deadline: .after(2)) {
            self.transport = transport
            var response = HTTPResponse.problem(.serviceUnavailable, detail: detail)
            response.headers.add(name: "Retry-After", value: "1")
            _ = write(response, isHEAD: false, connection: .close, stallTimeout: 2)
            close(linger: true, lingerSeconds: 0.5)
        } else {
            transport = nil
        }
        server.rejectionFinished(fd: fd)
    }

    private func makeTransport() -> ConnectionTransport? {
        if let context = server.tlsContext { return TLSTransport(fd: fd, context: context) }
        return PlainTransport(fd: fd)
    }

    /// Serves requests until the connection should end; returns whether to linger (a final
    /// response was sent and the peer may still be sending).
    private func serve(_ transport: ConnectionTransport) -> Bool {
        var readBuffer = [UInt8](repeating: 0, count: Self.readChunk)
        var requestDeadline: Deadline?
        var headDeadline: Deadline?
        var stopping = false
        while true {
            switch parser.next() {
            case .needMoreData:
                let partial = parser.hasPartialRequest
                if !stopping { stopping = server.isStopping }
                if stopping && !partial { return false }
                var deadline: Deadline
                var headPending = false
                if partial {
                    let started = requestDeadline ?? .after(configuration.readTimeout)
                    requestDeadline = started
                    deadline = started
                    if parser.isReadingHead {
                        let head = headDeadline ?? .after(configuration.headTimeout)
                        headDeadline = head
                        if head.isBefore(started) {
                            deadline = head
                            headPending = true
                        }
                    }
                } else {
                    deadline = .after(configuration.idleTimeout)
                }
                let wakeFD = stopping ? nil : server.wakeFD
                let outcome = readBuffer.withUnsafeMutableBytes {
                    transport.read(into: $0, deadline: deadline, wakeFD: wakeFD)
                }
                switch outcome {
                case .bytes(let count):
                    if requestDeadline == nil { requestDeadline = .after(configuration.readTimeout) }
                    if headDeadline == nil { headDeadline = .after(configuration.headTimeout) }
                    readBuffer.withUnsafeBytes { parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                case .closed, .failed:
                    return false
                case .timedOut:
                    guard partial else { return false }   // idle keep-alive: close silently
                    let response = HTTPResponse.problem(.requestTimeout, detail: headPending
                        ? "The request line and headers were not received within \(Self.seconds(configuration.headTimeout)) of their first byte; send the head in one piece."
                        : "The request was not received completely within \(Self.seconds(configuration.readTimeout)); send it faster or in one piece.")
                    _ = write(response, isHEAD: false, connection: .close, stallTimeout: configuration.writeTimeout)
                    return true
                case .woken:
                    stopping = true
                }

            case .head(let head):
                headDeadline = nil
                if let admission = server.admission, var refusal = admission(head, remoteAddress) {
                    // Refused from the head alone: the body is never read into anything.
                    if refusal.status.isInformational || refusal.status.code < 300 {
                        refusal = .problem(.internalServerError, detail: "The admission check answered \(refusal.status.code) instead of refusing.")
                    }
                    _ = write(refusal, isHEAD: head.method == "HEAD", connection: .close, stallTimeout: configuration.writeTimeout)
                    return true
                }
                if head.expectsContinue && !parser.hasBufferedBytes {
                    let interim = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
                    let sent = interim.withUnsafeBytes {
                        transport.write($0, stallTimeout: configuration.writeTimeout)
                    }
                    if !sent { return false }
                }

            case .failure(let error):
                let response = HTTPResponse.problem(error.status, detail: error.detail)
                _ = write(response, isHEAD: false, connection: .close, stallTimeout: configuration.writeTimeout)
                return true

            case .request(let head, let body, let file):
                headDeadline = nil
                let request = HTTPRequest(method: head.method, target: head.target, version: head.version,
                                          headers: head.headers, body: body, spooledBody: file, remoteAddress: remoteAddress)
                let response = server.respond(to: request)
                let keepAlive = head.keepAlive && !response.requestsClose && !server.isStopping
                let connection: ResponseWriter.ConnectionHeader =
                    !keepAlive ? .close : (head.version == .http1_0 ? .keepAlive : .none)
                guard write(response, isHEAD: head.method == "HEAD", connection: connection,
                            stallTimeout: configuration.writeTimeout) else { return false }
                if !keepAlive { return true }
                // A pipelined request already waiting starts its clock now.
                requestDeadline = parser.hasBufferedBytes ? .after(configuration.readTimeout) : nil
            }
        }
    }

    /// Writes a whole response within `responseTimeout`; `false` when the peer is gone or too
    /// slow (no progress for `stallTimeout`, or the whole response not taken in time).
    private func write(_ response: HTTPResponse, isHEAD: Bool, connection: ResponseWriter.ConnectionHeader,
                       stallTimeout: Double) -> Bool {
        guard let transport else { return false }
        let (head, sendBody) = ResponseWriter.head(for: response, isHEAD: isHEAD, connection: connection,
                                                  serverName: configuration.serverName)
        if sendBody && response.bodyFile == nil && response.body.count <= 64 * 1024 {
            let message = head + response.body
            return message.withUnsafeBytes { transport.write($0, stallTimeout: stallTimeout) }
        }
        guard head.withUnsafeBytes({ transport.write($0, stallTimeout: stallTimeout) }) else { return false }
        guard sendBody else { return true }
        // Large bodies go in slices so that the whole-response deadline is checked between them.
        if let file = response.bodyFile {
            var scratch = [UInt8](repeating: 0, count: Self.writeSlice)
            return scratch.withUnsafeMutableBytes { buffer in
                sendSlices(transport, total: file.count, stallTimeout: stallTimeout) { offset, count in
                    let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< count])
                    let n = file.read(into: piece, at: offset)
                    // A file that shrank or failed: the promised length cannot be kept.
                    return n > 0 ? UnsafeRawBufferPointer(rebasing: piece[0 ..< n]) : nil
                }
            }
        }
        return response.body.withUnsafeBytes { raw in
            sendSlices(transport, total: raw.count, stallTimeout: stallTimeout) { offset, count in
                UnsafeRawBufferPointer(rebasing: raw[offset ..< offset + count])
            }
        }
    }

    /// Sends `total` bytes that `slice(offset, count)` hands out at most `writeSlice` at a time,
    /// within `responseTimeout`; `false` when the peer is gone, stalls, runs out of time, or
    /// `slice` has nothing (the connection must then be dropped: the length was promised).
    private func sendSlices(_ transport: ConnectionTransport, total: Int, stallTimeout: Double,
                            slice: (Int, Int) -> UnsafeRawBufferPointer?) -> Bool {
        let deadline = Deadline.after(configuration.responseTimeout)
        var offset = 0
        while offset < total {
            let left = Double(deadline.remainingMilliseconds) / 1000
            guard left > 0, let piece = slice(offset, min(Self.writeSlice, total - offset)), piece.count > 0,
                  transport.write(piece, stallTimeout: min(stallTimeout, left)) else { return false }
            offset += piece.count
        }
        return true
    }

    private static let writeSlice = 256 * 1024

    /// Ends the connection. With `linger`, half-closes first and discards what the peer
    /// still sends for a moment, so a final error response is not destroyed by a TCP reset
    /// (RFC 9112 §9.6).
    private func close(linger: Bool, lingerSeconds: Double) {
        if linger, let transport {
            transport.closeNotify()
            SocketIO.shutdown(fd, writeOnly: true)
            let deadline = Deadline.after(lingerSeconds)
            var scratch = [UInt8](repeating: 0, count: 16 * 1024)
            var discarded = 0
            drain: while discarded < Self.lingerByteLimit {
                let outcome = scratch.withUnsafeMutableBytes {
                    SocketIO.read(fd: fd, into: $0, deadline: deadline, wakeFD: nil)
                }
                guard case .bytes(let count) = outcome else { break drain }
                discarded += count
            }
        }
        transport = nil
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}
