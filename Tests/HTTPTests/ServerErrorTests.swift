import Foundation
import XCTest
@testable import HTTP

final class ServerErrorTests: XCTestCase {
    var server: HTTPServer!

    override func setUpWithError() throws {
        server = try TestServers.start { $0.maxBodyBytes = 1024 }
    }

    override func tearDown() {
        server.shutdown(gracePeriod: 1)
        server = nil
    }

    /// Sends `request` and expects a problem+json error with `status`, then a closed connection.
    @discardableResult
    func expectError(_ request: String, status: Int, closes: Bool = true,
                     file: StaticString = #filePath, line: UInt = #line) throws -> RawResponse {
        try expectError(Array(request.utf8), status: status, closes: closes, file: file, line: line)
    }

    @discardableResult
    func expectError(_ request: [UInt8], status: Int, closes: Bool = true,
                     file: StaticString = #filePath, line: UInt = #line) throws -> RawResponse {
        let client = try RawClient(port: server.boundPort)
        client.send(request)
        let response = try XCTUnwrap(client.readResponse(), "no response", file: file, line: line)
        XCTAssertEqual(response.status, status, response.text, file: file, line: line)
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json", file: file, line: line)
        let problem = response.json
        XCTAssertEqual(problem["type"] as? String, "about:blank", file: file, line: line)
        XCTAssertEqual(problem["status"] as? Int, status, file: file, line: line)
        XCTAssertFalse((problem["title"] as? String ?? "").isEmpty, file: file, line: line)
        XCTAssertFalse((problem["detail"] as? String ?? "").isEmpty, file: file, line: line)
        if closes {
            XCTAssertEqual(response.header("Connection"), "close", file: file, line: line)
            XCTAssertNotNil(client.readUntilClosed(timeout: 3), "connection left open", file: file, line: line)
        }
        return response
    }

    func testContentLengthAndTransferEncodingIs400() throws {
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                        status: 400)
    }

    func testDuplicateContentLengthIs400() throws {
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", status: 400)
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: 400)
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", status: 400)
    }

    func testMalformedContentLengthIs400() throws {
        for value in ["+3", "-1", "3 4", "0x10", "", "3a"] {
            try expectError("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \(value)\r\n\r\nabc", status: 400)
        }
    }

    func testBadChunkSizeIs400() throws {
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", status: 400)
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n", status: 400)
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", status: 400)
        // Chunk data longer than its declared size.
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", status: 400)
    }

    func testChunkSizeOverflowIs413() throws {
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n", status: 413)
    }

    func testUnknownTransferCodingIs501() throws {
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: 501)
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501)
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400)
    }

    func testOversizedHeaderIs431() throws {
        let big = String(repeating: "a", count: 20 * 1024)
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n", status: 431)
    }

    func testTooManyHeadersIs431() throws {
        let headers = (0..<101).map { "X-H\($0): v\r\n" }.joined()
        try expectError("GET / HTTP/1.1\r\nHost: x\r\n\(headers)\r\n", status: 431)
    }

    func testOversizedRequestLineIs414() throws {
        let path = "/" + String(repeating: "p", count: 17 * 1024)
        try expectError("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n", status: 414)
    }

    func testBodyOverLimitIs413BeforeBodyIsRead() throws {
        let client = try RawClient(port: server.boundPort)
        client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
        client.send([UInt8](repeating: 65, count: 4096))   // just the start of the claimed 10 GB
        let response = try XCTUnwrap(client.readResponse(timeout: 3))
        XCTAssertEqual(response.status, 413)
        XCTAssertEqual(response.header("Connection"), "close")
        XCTAssertNotNil(client.readUntilClosed(timeout: 3))
    }

    func testChunkedBodyOverLimitIs413() throws {
        let chunk = String(repeating: "b", count: 600)
        let client = try RawClient(port: server.boundPort)
        client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(chunk)\r\n258\r\n")
        let response = try XCTUnwrap(client.readResponse(timeout: 3))
        XCTAssertEqual(response.status, 413)
    }

    func testUnsupportedVersionIs505() throws {
        try expectError("GET / HTTP/2.0\r\nHost: x\r\n\r\n", status: 505)
        try expectError("GET / HTTP/3.0\r\nHost: x\r\n\r\n", status: 505)
        try expectError("GET / HTTP/2\r\nHost: x\r\n\r\n", status: 505)
        try expectError("GET / HTTP/1.1.1\r\nHost: x\r\n\r\n", status: 400)
        try expectError("GET / HTTQ/1.1\r\nHost: x\r\n\r\n", status: 400)
    }

    func testBadRequestLinesAndTargets() throws {
        try expectError("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", status: 400)
        try expectError("GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", status: 400)
        try expectError("GET relative/path HTTP/1.1\r\nHost: x\r\n\r\n", status: 400)
        try expectError("GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", status: 400)
        try expectError("GET /frag#x HTTP/1.1\r\nHost: x\r\n\r\n", status: 400)
        try expectError("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", status: 400)
        try expectError("GET * HTTP/1.1\r\nHost: x\r\n\r\n", status: 400)
    }

    func testHeaderSyntaxErrors() throws {
        try expectError("GET / HTTP/1.1\r\n\r\n", status: 400)                                     // no Host
        try expectError("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400)              // two Hosts
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", status: 400)   // obs-fold
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n", status: 400)              // space before colon
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", status: 400)
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", status: 400)            // bare CR
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", status: 417)
    }

    func testGarbageIs400AndServerKeepsServing() throws {
        let other = try RawClient(port: server.boundPort)   // opened before the garbage
        var generator = SeededGenerator(seed: 7)
        let garbage = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) } + [13, 10, 13, 10]
        try expectError([0x16, 0x03, 0x01] + garbage, status: 400)                   // TLS hello on plain port
        try expectError(Array("\u{1}\u{2}HELLO WORLD\r\n\r\n".utf8), status: 400)
        other.send("GET /still HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(other.readResponse()?.status, 200)
        let fresh = try RawClient(port: server.boundPort)
        fresh.send("GET /fresh HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(fresh.readResponse()?.status, 200)
    }

    func testClientDisconnectMidRequestLeavesServerHealthy() throws {
        for partial in ["GET / HTTP/1.1\r\nHo", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"] {
            let client = try RawClient(port: server.boundPort)
            client.send(partial)
            client.shutdownWrite()
            XCTAssertEqual(client.readUntilClosed(timeout: 3), [])
        }
        let client = try RawClient(port: server.boundPort)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 200)
    }
}
