import Foundation
import XCTest
@testable import HTTP

final class MultipartTests: XCTestCase {
    func body(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testQuotedBoundaryFilenameAndFields() throws {
        let input = body("preamble to ignore\r\n"
            + "--XyZ 1\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n"
            + "--XyZ 1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan \\\"1\\\".npy\"\r\n"
            + "Content-Type: application/octet-stream\r\n\r\nDATA\r\n"
            + "--XyZ 1--\r\nepilogue to ignore")
        let parts = try MultipartFormData.parse(body: input, contentType: "multipart/form-data; boundary=\"XyZ 1\"")
        XCTAssertEqual(parts.count, 2)
        XCTAssertEqual(parts[0].name, "title")
        XCTAssertNil(parts[0].filename)
        XCTAssertEqual(parts[0].text, "Hello")
        XCTAssertEqual(parts[1].name, "file")
        XCTAssertEqual(parts[1].filename, "scan \"1\".npy")
        XCTAssertEqual(parts[1].contentType, "application/octet-stream")
        XCTAssertEqual(Array(parts[1].body), body("DATA"))
    }

    func testUnquotedBoundaryAndExtendedFilename() throws {
        let input = body("--b\r\nContent-Disposition: form-data; name=f; filename=\"plain.txt\"; filename*=UTF-8''na%C3%AFve.txt\r\n\r\nx\r\n--b--")
        let parts = try MultipartFormData.parse(body: input, contentType: "Multipart/Form-Data; charset=utf-8; boundary=b")
        XCTAssertEqual(parts.first?.filename, "naïve.txt")
        XCTAssertEqual(parts.first?.text, "x")
    }

    func testBinaryBodyWithCRLFAndPartialBoundaries() throws {
        var content: [UInt8] = [0, 13, 10, 45, 45, 13, 10, 255]
        content += body("\r\n--bound")          // a prefix of the delimiter
        content += body("\r\n--boundaryX")      // the boundary followed by other characters
        content += body("--boundary\r\n")       // no CRLF before it: not a delimiter
        content += [13, 13, 10, 10, 13]
        var generator = SeededGenerator(seed: 42)
        content += (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let input = body("--boundary\r\nContent-Disposition: form-data; name=\"bin\"; filename=\"b.bin\"\r\n\r\n")
            + content + body("\r\n--boundary--\r\n")
        let parts = try MultipartFormData.parse(body: input, contentType: "multipart/form-data; boundary=boundary")
        XCTAssertEqual(parts.count, 1)
        XCTAssertEqual(Array(parts[0].body), content)
    }

    func testTransportPaddingAfterBoundary() throws {
        let input = body("--b \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b  \r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--b--")
        let parts = try MultipartFormData.parse(body: input, contentType: "multipart/form-data; boundary=b")
        XCTAssertEqual(parts.map(\.text), ["1", "2"])
    }

    func testEmptyPartsAndEmptyForm() throws {
        let input = body("--b\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n"
                         + "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\r\n\r\n--b--\r\n")
        let parts = try MultipartFormData.parse(body: input, contentType: "multipart/form-data; boundary=b")
        XCTAssertEqual(parts.count, 2)
        XCTAssertTrue(parts.allSatisfy { $0.body.isEmpty })
        XCTAssertEqual(parts[1].filename, "")
        XCTAssertEqual(try MultipartFormData.parse(body: body("--b--\r\n"), contentType: "multipart/form-data; boundary=b").count, 0)
    }

    func expectError(_ input: [UInt8], contentType: String = "multipart/form-data; boundary=b",
                     limits: MultipartFormData.Limits = .init(), _ kind: MultipartError.Kind,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try MultipartFormData.parse(body: input, contentType: contentType, limits: limits),
                             file: file, line: line) { error in
            let error = error as? MultipartError
            XCTAssertEqual(error?.kind, kind, error?.message ?? "", file: file, line: line)
            XCTAssertFalse(error?.message.isEmpty ?? true, file: file, line: line)
        }
    }

    func testMissingFinalBoundary() {
        expectError(body("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--b\r\n"), .missingClosingBoundary)
        expectError(body("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--b"), .missingClosingBoundary)
        expectError(body("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--b-"), .missingClosingBoundary)
    }

    func testTruncatedBody() {
        expectError(body("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue that stops"), .truncated)
        expectError(body("--b\r\nContent-Disposition: form-data; na"), .truncated)
        expectError(body("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--"), .truncated)
    }

    func testBadContentTypesAndBoundaries() {
        expectError(body("x"), contentType: "text/plain", .notMultipart)
        expectError(body("x"), contentType: "multipart/form-data", .invalidBoundary)
        expectError(body("x"), contentType: "multipart/form-data; boundary=\"\"", .invalidBoundary)
        expectError(body("x"), contentType: "multipart/form-data; boundary=\(String(repeating: "a", count: 71))", .invalidBoundary)
        expectError(body("x"), contentType: "multipart/form-data; boundary=a{b", .invalidBoundary)
        expectError(body("no boundary here"), .boundaryNotFound)
    }

    func testTooManyPartsAndHeaderLimits() {
        let part = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n"
        expectError(body(String(repeating: part, count: 4) + "--b--"), limits: .init(maxParts: 3), .tooManyParts)
        let bigHeader = "--b\r\nContent-Disposition: form-data; name=a\r\nX-Pad: \(String(repeating: "p", count: 200))\r\n\r\nv\r\n--b--"
        expectError(body(bigHeader), limits: .init(maxPartHeaderBytes: 100), .partHeadersTooLarge)
        let manyHeaders = "--b\r\nContent-Disposition: form-data; name=a\r\nA: 1\r\nB: 2\r\n\r\nv\r\n--b--"
        expectError(body(manyHeaders), limits: .init(maxPartHeaderCount: 2), .partHeadersTooLarge)
    }

    func testMalformedParts() {
        expectError(body("--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--"), .malformedPart)          // no disposition
        expectError(body("--b\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--b--"), .malformedPart)
        expectError(body("--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--"), .malformedPart)    // no name
        expectError(body("--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--b--"), .malformedPart)
        expectError(body("--b\r\n folded: x\r\n\r\nv\r\n--b--"), .malformedPart)
        expectError(body("--bX\r\n--b junk\r\n"), .boundaryNotFound)
    }

    func testLargeBodyIsLinear() throws {
        // 64 MiB of content full of CR bytes and near-miss delimiters: must stay fast.
        var block = [UInt8](repeating: 13, count: 1 << 20)
        for i in stride(from: 0, to: block.count - 8, by: 64) {
            block.replaceSubrange(i..<(i + 5), with: [13, 10, 45, 45, 98])   // "\r\n--b" …
            block[i + 5] = 120                                               // … then 'x'
        }
        var content: [UInt8] = []
        content.reserveCapacity(64 << 20)
        for _ in 0..<64 { content += block }
        let input = body("--bnd\r\nContent-Disposition: form-data; name=f; filename=big\r\n\r\n") + content
            + body("\r\n--bnd--\r\n")
        let started = Date()
        let parts = try MultipartFormData.parse(body: input, contentType: "multipart/form-data; boundary=bnd")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(parts.first?.body.count, content.count)
        XCTAssertLessThan(elapsed, 10)
        print("multipart: \(content.count >> 20) MiB with a CR every byte parsed in \(String(format: "%.2f", elapsed)) s")
    }

    func testWorstCaseForSkipSearchStaysLinear() throws {
        // Boundary "aaaa" over 8 MiB of 'a': every window ends in a matching byte, shift 1.
        let content = [UInt8](repeating: UInt8(ascii: "a"), count: 8 << 20)
        let input = body("--aaaa\r\nContent-Disposition: form-data; name=f\r\n\r\n") + content + body("\r\n--aaaa--")
        let started = Date()
        let parts = try MultipartFormData.parse(body: input, contentType: "multipart/form-data; boundary=aaaa")
        XCTAssertEqual(parts.first?.body.count, content.count)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        print("multipart worst case: 8 MiB in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
    }
}
