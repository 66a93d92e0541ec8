import XCTest
@testable import HTTP

/// Direct tests of the incremental parser (no sockets).
final class ParserTests: XCTestCase {
    /// Feeds `input` in pieces of `step` bytes and collects the events.
    func parse(_ input: String, step: Int = .max, limits: HTTPRequestParser.Limits = .init()) -> [HTTPRequestParser.Event] {
        var parser = HTTPRequestParser(limits: limits)
        var events: [HTTPRequestParser.Event] = []
        let bytes = Array(input.utf8)
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + min(step, bytes.count))
            parser.append(Array(bytes[offset..<end]))
            offset = end
            while true {
                let event = parser.next()
                if case .needMoreData = event { break }
                events.append(event)
                if case .failure = event { return events }
            }
        } while offset < bytes.count
        return events
    }

    func requests(_ events: [HTTPRequestParser.Event]) -> [(HTTPRequestHead, String)] {
        events.compactMap {
            if case .request(let head, let body, _) = $0 { return (head, String(decoding: body, as: UTF8.self)) }
            return nil
        }
    }

    func failure(_ events: [HTTPRequestParser.Event]) -> HTTPParseError? {
        if case .failure(let error)? = events.last { return error }
        return nil
    }

    func testByteByByteEqualsWhole() {
        let input = "POST /a?b=c HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nx-dup: 2\r\nContent-Length: 4\r\n\r\nbody"
            + "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x\r\nc\r\n0\r\n\r\n"
        for step in [1, 2, 3, 7, 1000] {
            let parsed = requests(parse(input, step: step))
            XCTAssertEqual(parsed.count, 2, "step \(step)")
            XCTAssertEqual(parsed.first?.1, "body")
            XCTAssertEqual(parsed.last?.1, "abc")
            XCTAssertEqual(parsed.first?.0.headers.values(for: "X-DUP"), ["1", "2"])
            XCTAssertEqual(parsed.first?.0.headers["x-dup"], "1")
        }
    }

    func testHeadEventPrecedesBody() {
        let events = parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n")
        guard case .head(let head)? = events.first else { return XCTFail("\(events)") }
        XCTAssertTrue(head.expectsContinue)
        XCTAssertEqual(head.framing, .contentLength(2))
    }

    func testKeepAliveRules() {
        XCTAssertEqual(requests(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).first?.0.keepAlive, true)
        XCTAssertEqual(requests(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n")).first?.0.keepAlive, false)
        XCTAssertEqual(requests(parse("GET / HTTP/1.0\r\n\r\n")).first?.0.keepAlive, false)
        XCTAssertEqual(requests(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")).first?.0.keepAlive, true)
        XCTAssertEqual(requests(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n")).first?.0.keepAlive, false)
    }

    func testLeadingEmptyLinesAndBareLFAreAccepted() {
        let parsed = requests(parse("\r\n\r\nGET /x HTTP/1.1\nHost: h\n\n"))
        XCTAssertEqual(parsed.first?.0.target, "/x")
    }

    func testHigherMinorVersionIsTreatedAs11() {
        XCTAssertEqual(requests(parse("GET / HTTP/1.5\r\nHost: h\r\n\r\n")).first?.0.version, .http1_1)
    }

    func testAbsoluteFormAndAsteriskForm() {
        let absolute = requests(parse("GET http://example.com/p%20q?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        let request = HTTPRequest(method: "GET", target: absolute.first!.0.target)
        XCTAssertEqual(request.path, "/p q")
        XCTAssertEqual(request.queryValue("x"), "1")
        XCTAssertEqual(requests(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")).first?.0.target, "*")
    }

    func testLimits() {
        let limits = HTTPRequestParser.Limits(maxHeaderBytes: 100, maxHeaderCount: 2, maxBodyBytes: 10)
        XCTAssertEqual(failure(parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", limits: limits))?.status, 431)
        XCTAssertEqual(failure(parse("GET / HTTP/1.1\r\nHost: \(String(repeating: "h", count: 100))\r\n\r\n", limits: limits))?.status, 431)
        XCTAssertEqual(failure(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: limits))?.status, 413)
        XCTAssertEqual(failure(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"))?.status, 413)
        XCTAssertEqual(requests(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits)).count, 1)
        XCTAssertEqual(failure(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n", limits: limits))?.status, 413)
        let trailers = (0..<3).map { "T\($0): v\r\n" }.joined()
        XCTAssertEqual(failure(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\(trailers)\r\n", limits: limits))?.status, 431)
    }

    func testEarlyGarbageDetectionNeedsNoLineEnd() {
        XCTAssertEqual(failure(parse("\u{16}\u{3}\u{1}\u{2}"))?.status, 400)
        XCTAssertEqual(failure(parse("GET /\u{1}"))?.status, 400)
        XCTAssertTrue(parse("GET /partial-without-newline").isEmpty)
    }

    func testFailureIsSticky() {
        var parser = HTTPRequestParser()
        parser.append(Array("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n".utf8))
        guard case .failure = parser.next(), case .failure = parser.next() else { return XCTFail() }
        XCTAssertTrue(parser.hasPartialRequest)
    }

    func testPercentDecodingAndQuery() {
        XCTAssertEqual(PercentEncoding.decode("/a%2Fb%20c"), "/a/b c")
        XCTAssertEqual(PercentEncoding.decode("%E2%82%AC"), "€")
        XCTAssertNil(PercentEncoding.decode("%zz"))
        XCTAssertNil(PercentEncoding.decode("%4"))
        XCTAssertNil(PercentEncoding.decode("%FF"), "not UTF-8")
        XCTAssertEqual(PercentEncoding.decode("a+b", plusAsSpace: true), "a b")
        XCTAssertEqual(PercentEncoding.decode("a+b"), "a+b")
        XCTAssertEqual(PercentEncoding.parseQuery("a=1&b=x%3Dy&&c&a=2").map { "\($0.name)=\($0.value)" },
                       ["a=1", "b=x=y", "c=", "a=2"])
        XCTAssertEqual(PercentEncoding.encode("a b/ü"), "a%20b%2F%C3%BC")
        let request = HTTPRequest(method: "GET", target: "/files/a%2Fb/c%20d?x")
        XCTAssertEqual(request.pathComponents, ["files", "a/b", "c d"])
        XCTAssertEqual(request.query, "x")
        XCTAssertEqual(request.queryValue("x"), "")
    }

    func testHeadersAPI() {
        var headers: HTTPHeaders = ["Content-Type": "a", "X-A": "1"]
        headers.add(name: "x-a", value: "2")
        XCTAssertEqual(headers.values(for: "X-a"), ["1", "2"])
        headers["X-A"] = "3"
        XCTAssertEqual(headers.values(for: "x-a"), ["3"])
        headers["content-type"] = nil
        XCTAssertEqual(headers.count, 1)
        XCTAssertEqual(HTTPHeaders([("Connection", "keep-alive, Upgrade ,")]).listValues(for: "connection"), ["keep-alive", "Upgrade"])
    }

    func testResponseHelpers() throws {
        let problem = HTTPResponse.problem(.badRequest, detail: "Fix \"this\"\n")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(problem.body)) as? [String: Any])
        XCTAssertEqual(json["detail"] as? String, "Fix \"this\"\n")
        XCTAssertEqual(json["title"] as? String, "Bad Request")
        XCTAssertEqual(HTTPResponse.json(["k": 1]).headers["Content-Type"], "application/json")
        XCTAssertEqual(HTTPResponse.text("hi").body, Array("hi".utf8))
        let date = HTTPDate.string(from: 784_111_777)
        XCTAssertEqual(date, "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    func testResponseWriterDropsInjectedAndManagedHeaders() {
        var response = HTTPResponse.text("x")
        response.headers.add(name: "X-Evil", value: "a\r\nInjected: yes")
        response.headers.add(name: "Bad Name", value: "v")
        response.headers.add(name: "Content-Length", value: "999")
        response.headers.add(name: "Transfer-Encoding", value: "chunked")
        let head = String(decoding: ResponseWriter.head(for: response, isHEAD: false, connection: .none, serverName: nil).bytes,
                          as: UTF8.self)
        XCTAssertFalse(head.contains("Injected"))
        XCTAssertFalse(head.contains("Bad Name"))
        XCTAssertFalse(head.contains("999"))
        XCTAssertFalse(head.contains("chunked"))
        XCTAssertTrue(head.contains("Content-Length: 1\r\n"))
    }
}

import Foundation
