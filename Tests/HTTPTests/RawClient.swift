import Foundation
import XCTest
@testable import HTTP
#if canImport(Glibc)
import Glibc
#endif

/// A response as read off the wire by `RawClient`.
struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body decoded as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }
}

/// A blocking TCP client for 127.0.0.1 that sends exact bytes and parses responses.
final class RawClient {
    let fd: Int32
    private var pending: [UInt8] = []
    private(set) var sawEOF = false

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    deinit { Glibc.close(fd) }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Sends every byte; `false` if the server closed the connection.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Reads more bytes into `pending`; `false` on EOF, error or timeout.
    private func fill(until deadline: Date) -> Bool {
        var fds = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = max(0, Int32(deadline.timeIntervalSinceNow * 1000))
        let ready = poll(&fds, 1, ms)
        if ready <= 0 { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 {
            sawEOF = true
            return false
        }
        pending += chunk[0..<n]
        return true
    }

    /// Reads one response (interim 1xx responses are returned on their own).
    func readResponse(timeout: Double = 5) -> RawResponse? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            if let end = Self.find([13, 10, 13, 10], in: pending) {
                let head = String(decoding: pending[0..<end], as: UTF8.self)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
                let headers = lines.compactMap { line -> (String, String)? in
                    guard let colon = line.firstIndex(of: ":") else { return nil }
                    return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                }
                var response = RawResponse(status: status, headers: headers, body: [])
                let bodyStart = end + 4
                if (100..<200).contains(status) || status == 204 || status == 304 {
                    pending.removeFirst(bodyStart)
                    return response
                }
                if let lengthText = response.header("Content-Length"), let length = Int(lengthText) {
                    while pending.count < bodyStart + length {
                        if !fill(until: deadline) { return nil }
                    }
                    response.body = Array(pending[bodyStart..<(bodyStart + length)])
                    pending.removeFirst(bodyStart + length)
                    return response
                }
                while fill(until: deadline) {}
                response.body = Array(pending[bodyStart...])
                pending.removeAll()
                return response
            }
            if !fill(until: deadline) { return nil }
        }
    }

    /// Waits until the server closes the connection; returns whatever arrived before, or
    /// `nil` if it stayed open past the timeout.
    func readUntilClosed(timeout: Double = 5) -> [UInt8]? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !sawEOF {
            if !fill(until: deadline) && !sawEOF { return nil }
        }
        let rest = pending
        pending.removeAll()
        return rest
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}

/// What the echo handler reports.
struct Echo: Codable {
    var method: String
    var path: String
    var rawPath: String
    var query: [String: String]
    var body: String
    var bodyLength: Int
    var headerCount: Int
    var remote: String
}

enum TestServers {
    /// Echoes the request as JSON; `/sleep?ms=N` waits N milliseconds first.
    static let echo: HTTPServer.Handler = { request in
        if let ms = request.queryValue("ms").flatMap(Int.init) {
            try? await Task.sleep(nanoseconds: UInt64(ms) * 1_000_000)
        }
        var query: [String: String] = [:]
        for item in request.queryItems { query[item.name] = item.value }
        return .json(Echo(method: request.method, path: request.path, rawPath: request.rawPath, query: query,
                          body: String(decoding: request.body, as: UTF8.self), bodyLength: request.body.count,
                          headerCount: request.headers.count, remote: request.remoteAddress))
    }

    /// Starts a server on 127.0.0.1 with a free port.
    static func start(_ configure: (inout HTTPServer.Configuration) -> Void = { _ in },
                      handler: @escaping HTTPServer.Handler = echo) throws -> HTTPServer {
        var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = HTTPServer(configuration: configuration, handler: handler)
        try server.start()
        return server
    }
}

/// SplitMix64, for reproducible fuzzing.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
