import Foundation
import Formats
import HTTP
import SCICore
@testable import Service
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A response read off the wire.
struct WireResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    /// The problem document's type, when the response is one.
    var problemType: String? {
        header("Content-Type") == "application/problem+json" ? json["type"] as? String : nil
    }
}

/// A blocking HTTP/1.1 client on 127.0.0.1, one connection per request (Connection: close).
struct WireClient {
    var port: Int
    var token: String?

    func request(_ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = [],
                 timeout: Double = 30) throws -> WireResponse {
        let socket = try TestSocket(port: port)
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        socket.send(Array(head.utf8) + body)
        let raw = socket.readAll(timeout: timeout)
        guard let response = Self.parse(raw, bodiless: method == "HEAD") else {
            throw NSError(domain: "WireClient", code: 1, userInfo: [NSLocalizedDescriptionKey: "no complete response to \(method) \(target.prefix(80)) (\(raw.count) bytes)"])
        }
        return response
    }

    func get(_ target: String) throws -> WireResponse { try request("GET", target) }

    func delete(_ target: String) throws -> WireResponse { try request("DELETE", target) }

    /// POSTs a multipart/form-data body.
    func post(_ target: String, form: Multipart) throws -> WireResponse {
        try request("POST", target, headers: [("Content-Type", form.contentType)], body: form.body)
    }

    static func parse(_ raw: [UInt8], bodiless: Bool = false) -> WireResponse? {
        guard let end = find([13, 10, 13, 10], in: raw) else { return nil }
        var lines = String(decoding: raw[0 ..< end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = lines.removeFirst().split(separator: " ")
        guard status.count >= 2, let code = Int(status[1]) else { return nil }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = WireResponse(status: code, headers: headers, body: Array(raw[(end + 4)...]))
        if let length = response.header("Content-Length").flatMap(Int.init), !bodiless {
            guard response.body.count >= length else { return nil }
            response.body = Array(response.body.prefix(length))
        }
        return response
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0 ... (haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i ..< i + needle.count]) == needle { return i }
        }
        return nil
    }
}

/// A TCP connection to 127.0.0.1 for exact bytes (slow senders, truncated bodies, lies in headers).
final class TestSocket {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { Glibc.close(fd) }

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

    /// Everything until the peer closes (or the timeout).
    func readAll(timeout: Double) -> [UInt8] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            if poll(&pfd, 1, ms) <= 0 { return out }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return out }
            out += chunk[0 ..< n]
        }
    }
}

/// Builds multipart/form-data bodies.
struct Multipart {
    let boundary = "revsci-test-" + UUID().uuidString
    var body: [UInt8] = []
    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    init() {}

    init(_ fields: [(String, [UInt8])], options: String? = nil) {
        for (name, bytes) in fields { add(name, bytes, filename: name + ".bin") }
        if let options { add("options", Array(options.utf8)) }
    }

    mutating func add(_ name: String, _ bytes: [UInt8], filename: String? = nil) {
        var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\""
        if let filename { head += "; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream" }
        head += "\r\n\r\n"
        body += Array(head.utf8) + bytes + Array("\r\n".utf8)
    }

    /// The body with its closing boundary.
    var finished: Multipart {
        var copy = self
        copy.body += Array("--\(boundary)--\r\n".utf8)
        return copy
    }
}

/// Small synthetic scenes: random 0/1 masks and smooth frames, measurement = sum_t mask_t * x_t.
enum Synthetic {
    struct Scene {
        var mask: [Float]      // T*H*W
        var video: [Float]     // N*T*H*W on [0, 1]
        var measurement: [Float] // N*H*W
        var frames: Int, height: Int, width: Int, snapshots: Int
        var maskNPY: [UInt8] { NPY.encode(NumericArray(shape: [frames, height, width], float32: mask)) }
        var measurementNPY: [UInt8] {
            NPY.encode(NumericArray(shape: snapshots == 1 ? [height, width] : [snapshots, height, width], float32: measurement))
        }
        var truthNPY: [UInt8] { NPY.encode(NumericArray(shape: [snapshots * frames, height, width], float32: video)) }
    }

    static func scene(frames: Int = 4, height: Int = 32, width: Int = 32, snapshots: Int = 1, seed: UInt64 = 1) -> Scene {
        var rng = SplitMix(seed: seed)
        let plane = height * width
        let mask = (0 ..< frames * plane).map { _ in Float(rng.next() & 1) }
        var video = [Float](repeating: 0, count: snapshots * frames * plane)
        for f in 0 ..< snapshots * frames {
            let phase = Float(f) * 0.3
            for r in 0 ..< height {
                for c in 0 ..< width {
                    video[f * plane + r * width + c] = 0.5 + 0.4 * sin(Float(r) * 0.2 + phase) * cos(Float(c) * 0.15 - phase)
                }
            }
        }
        var meas = [Float](repeating: 0, count: snapshots * plane)
        for n in 0 ..< snapshots {
            for t in 0 ..< frames {
                for i in 0 ..< plane { meas[n * plane + i] += mask[t * plane + i] * video[(n * frames + t) * plane + i] }
            }
        }
        return Scene(mask: mask, video: video, measurement: meas, frames: frames, height: height, width: width, snapshots: snapshots)
    }

    struct SplitMix {
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
}

/// Starting services on temporary data directories.
class ServiceTestCase: XCTestCase {
    var directories: [String] = []
    var services: [ReconstructionService] = []

    override func tearDown() {
        for service in services { service.shutdown(grace: 0) }
        services.removeAll()
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
        directories.removeAll()
        super.tearDown()
    }

    func temporaryDirectory(_ label: String = "svc") -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("revsci-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        directories.append(path)
        return path
    }

    /// A configuration for tests: port 0, quiet, the package's model configs.
    func testConfig(dataDir: String? = nil, _ configure: (inout ServiceConfig) -> Void = { _ in }) -> ServiceConfig {
        var config = ServiceConfig()
        config.port = 0
        config.dataDir = dataDir ?? temporaryDirectory()
        config.accessLog = false
        config.modelsDir = SharedData.packageRoot.appendingPathComponent("configs/models").path
        config.janitorIntervalSeconds = 3600
        configure(&config)
        return config
    }

    func startService(_ config: ServiceConfig) throws -> (ReconstructionService, WireClient) {
        let service = try ReconstructionService(config: config, log: ProcessInfo.processInfo.environment["REVSCI_TEST_LOG"] != nil ? .standardError : .silent)
        try service.start()
        services.append(service)
        return (service, WireClient(port: service.port))
    }

    /// Submits a job and asserts 202.
    @discardableResult
    func submit(_ client: WireClient, _ form: Multipart, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let response = try client.post("/v1/jobs", form: form.finished)
        XCTAssertEqual(response.status, 202, response.text, file: file, line: line)
        XCTAssertEqual(response.header("Location"), (response.json["id"] as? String).map { "/v1/jobs/\($0)" }, file: file, line: line)
        return try XCTUnwrap(response.json["id"] as? String, response.text, file: file, line: line)
    }

    /// Polls a job until its state is one of `states`.
    @discardableResult
    func wait(_ client: WireClient, _ id: String, for states: Set<String> = ["succeeded", "failed", "cancelled"],
              timeout: Double = 60, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var last: [String: Any] = [:]
        while Date() < deadline {
            let response = try client.get("/v1/jobs/\(id)")
            last = response.json
            if let state = last["state"] as? String, states.contains(state) { return last }
            usleep(20_000)
        }
        XCTFail("job \(id) did not reach \(states) in \(timeout) s; last: \(last)", file: file, line: line)
        return last
    }

    /// Asserts a problem document with `status` (and `type` when given).
    func assertProblem(_ response: WireResponse, _ status: Int, _ kind: String? = nil, contains: String? = nil,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, status, response.text, file: file, line: line)
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json", response.text, file: file, line: line)
        XCTAssertEqual(response.json["status"] as? Int, status, file: file, line: line)
        XCTAssertFalse((response.json["detail"] as? String ?? "").isEmpty, file: file, line: line)
        if let kind { XCTAssertEqual(response.json["type"] as? String, "/problems/\(kind)", response.text, file: file, line: line) }
        if let contains {
            XCTAssertTrue((response.json["detail"] as? String ?? "").contains(contains), "'\(contains)' not in \(response.text)", file: file, line: line)
        }
    }
}

/// Benchmark scenes from ../shared.
enum Scenes {
    static func mat(_ name: String) throws -> [UInt8] {
        do { return try SharedData.bytes("data/benchmarks/\(name)_cacti.mat") } catch {
            throw XCTSkip("\(error)")
        }
    }

    /// The scene's meas, mask and orig as NumPy-layout float32 .npy files.
    static func npyParts(_ name: String) throws -> (meas: [UInt8], mask: [UInt8], orig: [UInt8]) {
        let file = try ArrayFile.decode(try mat(name))
        func npy(_ variable: String) throws -> [UInt8] {
            let array = try XCTUnwrap(file.array(variable))
            let planes = try SCIInput.planes(array, order: .framesLast, what: variable)
            return NPY.encode(NumericArray(shape: [planes.count, planes.height, planes.width], float32: planes.values))
        }
        return (try npy("meas"), try npy("mask"), try npy("orig"))
    }
}
