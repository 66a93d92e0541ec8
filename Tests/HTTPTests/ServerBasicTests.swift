import Foundation
import XCTest
@testable import HTTP

final class ServerBasicTests: XCTestCase {
    var server: HTTPServer!

    override func setUpWithError() throws {
        server = try TestServers.start()
    }

    override func tearDown() {
        server.shutdown(gracePeriod: 1)
        server = nil
    }

    func testGetWithQueryAndStandardHeaders() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("GET /files/a%20b/c?x=1&name=J%C3%B6rg+M&flag HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Content-Type"), "application/json")
        XCTAssertEqual(response.header("Content-Length"), String(response.body.count))
        XCTAssertEqual(response.header("Server"), "swift-http")
        XCTAssertNotNil(response.header("Date")?.range(of: #"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$"#,
                                                       options: .regularExpression))
        XCTAssertNil(response.header("Connection"))
        let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
        XCTAssertEqual(echo.method, "GET")
        XCTAssertEqual(echo.path, "/files/a b/c")
        XCTAssertEqual(echo.rawPath, "/files/a%20b/c")
        XCTAssertEqual(echo.query, ["x": "1", "name": "Jörg M", "flag": ""])
        XCTAssertTrue(echo.remote.hasPrefix("127.0.0.1:"))
    }

    func testPostWithContentLength() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 200)
        let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
        XCTAssertEqual(echo.body, "hello world")
        XCTAssertEqual(echo.bodyLength, 11)
    }

    func testBodyArrivingInManySmallWrites() throws {
        let client = try RawClient(port: server.boundPort)
        let payload = String(repeating: "0123456789", count: 50_000)
        client.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: \(payload.utf8.count)\r\n\r\n")
        let bytes = Array(payload.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 7_919)
            client.send(Array(bytes[offset..<end]))
            offset = end
        }
        let response = try XCTUnwrap(client.readResponse())
        let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
        XCTAssertEqual(echo.bodyLength, 500_000)
        XCTAssertEqual(echo.body, payload)
    }

    func testChunkedUploadWithExtensionsAndTrailers() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5;name=value\r\nhello\r\n"
                    + "6 ; a=\"quoted\";b\r\n world\r\n")
        client.send("00A\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 200)
        let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
        XCTAssertEqual(echo.body, "hello world0123456789")
        XCTAssertEqual(echo.headerCount, 2, "trailers are consumed, not merged into the headers")
        // The connection stays usable after a chunked request.
        client.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 200)
    }

    func testKeepAliveSequentialRequests() throws {
        let client = try RawClient(port: server.boundPort)
        for i in 0..<5 {
            client.send("POST /n/\(i) HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\(i)")
            let response = try XCTUnwrap(client.readResponse())
            let echo = try JSONDecoder().decode(Echo.self, from: Data(response.body))
            XCTAssertEqual(echo.path, "/n/\(i)")
            XCTAssertEqual(echo.body, "\(i)")
        }
        XCTAssertEqual(server.activeConnectionCount, 1)
    }

    func testPipelinedRequestsAnsweredInOrder() throws {
        let client = try RawClient(port: server.boundPort)
        // The first request is the slowest, so out-of-order answering would show.
        client.send("GET /first?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST /second?ms=100 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    + "GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
        var paths: [String] = []
        for _ in 0..<3 {
            let response = try XCTUnwrap(client.readResponse())
            paths.append(try JSONDecoder().decode(Echo.self, from: Data(response.body)).path)
        }
        XCTAssertEqual(paths, ["/first", "/second", "/third"])
    }

    func testConnectionCloseIsHonored() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.header("Connection"), "close")
        XCTAssertEqual(client.readUntilClosed(timeout: 3), [])
    }

    func testHandlerCanAskToClose() throws {
        server.shutdown(gracePeriod: 1)
        server = try TestServers.start(handler: { _ in
            var response = HTTPResponse.text("bye")
            response.headers.set("Connection", "close")
            return response
        })
        let client = try RawClient(port: server.boundPort)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "bye")
        XCTAssertEqual(client.readUntilClosed(timeout: 3), [])
    }

    func testHTTP10ClosesUnlessKeepAliveRequested() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("GET /old HTTP/1.0\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Connection"), "close")
        XCTAssertEqual(client.readUntilClosed(timeout: 3), [])

        let keepAlive = try RawClient(port: server.boundPort)
        keepAlive.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(keepAlive.readResponse()?.header("Connection"), "keep-alive")
        keepAlive.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(keepAlive.readResponse()?.status, 200)
    }

    func testExpectContinue() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("PUT /data HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(interim.status, 100)
        client.send("12345")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(try JSONDecoder().decode(Echo.self, from: Data(response.body)).body, "12345")
    }

    func testExpectContinueOverLimitGets413WithoutContinue() throws {
        server.shutdown(gracePeriod: 1)
        server = try TestServers.start { $0.maxBodyBytes = 100 }
        let client = try RawClient(port: server.boundPort)
        client.send("PUT /data HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 413)
    }

    func testHeadHasLengthButNoBody() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n")
        // Read the HEAD response's head only, then the GET response must follow immediately.
        let both = client.readUntilClosedOrCount(timeout: 3)
        let text = String(decoding: both, as: UTF8.self)
        let heads = text.components(separatedBy: "HTTP/1.1 200 OK").count - 1
        XCTAssertEqual(heads, 2)
        XCTAssertTrue(text.contains("\"path\":\"\\/y\"") || text.contains("\"path\":\"/y\""))
        XCTAssertFalse(text.contains("\"path\":\"/x\""))
    }

    func testNoContentHasNoLength() throws {
        server.shutdown(gracePeriod: 1)
        server = try TestServers.start(handler: { _ in .empty(.noContent) })
        let client = try RawClient(port: server.boundPort)
        client.send("DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 204)
        XCTAssertNil(response.header("Content-Length"))
    }

    func testHandlersRunConcurrently() throws {
        let clients = try (0..<4).map { _ in try RawClient(port: server.boundPort) }
        let started = Date()
        for client in clients { client.send("GET /sleep?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n") }
        for client in clients { XCTAssertEqual(client.readResponse()?.status, 200) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5)
    }

    func testStartTwiceThrowsAndBadPortRejected() throws {
        XCTAssertThrowsError(try server.start()) { XCTAssertEqual($0 as? HTTPServerError, .alreadyStarted) }
        let bad = HTTPServer(configuration: .init(port: 70_000)) { _ in .text("") }
        XCTAssertThrowsError(try bad.start())
    }

    func testIPv6LoopbackWhenAvailable() throws {
        let v6 = HTTPServer(configuration: .init(host: "::1", port: 0)) { _ in .text("") }
        do {
            try v6.start()
        } catch {
            throw XCTSkip("IPv6 loopback unavailable: \(error)")
        }
        XCTAssertGreaterThan(v6.boundPort, 0)
        v6.shutdown(gracePeriod: 0)
    }
}

extension RawClient {
    /// Reads until the server closes or 2 responses worth of bytes stop arriving.
    func readUntilClosedOrCount(timeout: Double) -> [UInt8] {
        var all: [UInt8] = []
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            guard let response = readResponseHeadOnly(timeout: deadline.timeIntervalSinceNow) else { break }
            all += response
        }
        return all
    }

    /// Reads whatever is available within the timeout.
    func readResponseHeadOnly(timeout: Double) -> [UInt8]? {
        var fds = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&fds, 1, Int32(max(0, min(timeout, 0.5)) * 1000)) > 0 else { return nil }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        return n > 0 ? Array(chunk[0..<n]) : nil
    }
}
