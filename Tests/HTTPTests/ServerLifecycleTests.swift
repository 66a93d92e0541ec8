import Foundation
import XCTest
@testable import HTTP

/// Timeouts, connection limits and shutdown (short timeouts keep this fast).
final class ServerLifecycleTests: XCTestCase {
    func testSlowSenderGets408AndIsClosed() throws {
        let server = try TestServers.start { $0.readTimeout = 1; $0.idleTimeout = 5 }
        defer { server.shutdown(gracePeriod: 1) }

        let headOnly = try RawClient(port: server.boundPort)
        let started = Date()
        headOnly.send("GET / HTTP/1.1\r\nHost: x\r\n")
        let response = try XCTUnwrap(headOnly.readResponse(timeout: 4))
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(response.status, 408)
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(response.header("Connection"), "close")
        XCTAssertGreaterThan(elapsed, 0.9)
        XCTAssertLessThan(elapsed, 2.5)
        XCTAssertNotNil(headOnly.readUntilClosed(timeout: 3))

        // A body trickling in too slowly: the deadline counts from the first byte.
        let slowBody = try RawClient(port: server.boundPort)
        slowBody.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        Thread.sleep(forTimeInterval: 0.5)
        slowBody.send("de")
        XCTAssertEqual(slowBody.readResponse(timeout: 4)?.status, 408)
    }

    func testIdleKeepAliveConnectionIsClosed() throws {
        let server = try TestServers.start { $0.idleTimeout = 1; $0.readTimeout = 5 }
        defer { server.shutdown(gracePeriod: 1) }
        let client = try RawClient(port: server.boundPort)
        client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 200)
        let started = Date()
        XCTAssertEqual(client.readUntilClosed(timeout: 4), [], "idle close sends nothing")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(elapsed, 0.8)
        XCTAssertLessThan(elapsed, 2.5)
    }

    func testMaxConnectionsAnswers503() throws {
        let server = try TestServers.start { $0.maxConnections = 2 }
        defer { server.shutdown(gracePeriod: 1) }
        var first: RawClient? = try RawClient(port: server.boundPort)
        let second = try RawClient(port: server.boundPort)
        for client in [first!, second] {
            client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(client.readResponse()?.status, 200)
        }
        let third = try RawClient(port: server.boundPort)
        third.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try XCTUnwrap(third.readResponse())
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.header("Retry-After"), "1")
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
        XCTAssertNotNil(third.readUntilClosed(timeout: 3))

        first = nil   // closes the socket; its slot frees up
        let deadline = Date(timeIntervalSinceNow: 3)
        while server.activeConnectionCount > 1 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let fourth = try RawClient(port: server.boundPort)
        fourth.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(fourth.readResponse()?.status, 200)
    }

    func testGracefulShutdownWaitsForInFlightRequest() throws {
        let server = try TestServers.start()
        let busy = try RawClient(port: server.boundPort)
        let idle = try RawClient(port: server.boundPort)
        idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(idle.readResponse()?.status, 200)
        busy.send("GET /slow?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.2)

        let port = server.boundPort
        let started = Date()
        server.shutdown(gracePeriod: 5)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(elapsed, 0.4, "shutdown returned before the in-flight request finished")
        XCTAssertLessThan(elapsed, 3)

        let response = try XCTUnwrap(busy.readResponse(timeout: 1))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Connection"), "close")
        XCTAssertEqual(idle.readUntilClosed(timeout: 1), [], "idle keep-alive connection is closed")
        XCTAssertThrowsError(try RawClient(port: port), "still accepting after shutdown")
        server.shutdown(gracePeriod: 1)   // idempotent
    }

    func testShutdownGivesUpAfterGracePeriod() throws {
        let server = try TestServers.start()
        let busy = try RawClient(port: server.boundPort)
        busy.send("GET /stuck?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n")
        Thread.sleep(forTimeInterval: 0.1)
        let started = Date()
        server.shutdown(gracePeriod: 0.3)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(elapsed, 0.25)
        XCTAssertLessThan(elapsed, 2.0)
        XCTAssertNotNil(busy.readUntilClosed(timeout: 1), "socket of the stuck request is shut down")
    }
}
