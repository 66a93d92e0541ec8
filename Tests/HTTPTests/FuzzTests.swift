import Foundation
import XCTest
@testable import HTTP

/// Seeded random mutations of valid requests: every connection must get a response or be
/// closed, and the server must keep serving afterwards.
final class FuzzTests: XCTestCase {
    static let seeds: [String] = [
        "POST /upload?a=1 HTTP/1.1\r\nHost: example\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
        "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
        "GET /a/b%20c?q=%41 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
    ]

    func mutate(_ input: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        let interesting: [[UInt8]] = [[13, 10], [13], [10], [0], [58], [32], [9], Array("chunked".utf8),
                                      Array("Content-Length: 5\r\n".utf8), Array("Transfer-Encoding: chunked\r\n".utf8),
                                      Array("FFFFFFFFFFFFFFFFF".utf8), [0xFF, 0xFE], Array("%".utf8), Array("HTTP/9.9".utf8)]
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0..<6, using: &generator) {
            case 0 where !bytes.isEmpty:
                bytes[position] = UInt8.random(in: 0...255, using: &generator)
            case 1:
                bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
            case 2 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int.random(in: 1...8, using: &generator))
                bytes.removeSubrange(position..<end)
            case 3:
                bytes.insert(contentsOf: interesting.randomElement(using: &generator)!, at: position)
            case 4 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int.random(in: 1...16, using: &generator))
                bytes.insert(contentsOf: Array(bytes[position..<end]), at: position)
            default:
                bytes = Array(bytes.prefix(position))   // truncate
            }
        }
        return bytes
    }

    func testSeededMutationsNeverHangOrCrash() throws {
        let server = try TestServers.start { $0.readTimeout = 2; $0.maxBodyBytes = 4096 }
        defer { server.shutdown(gracePeriod: 1) }
        var generator = SeededGenerator(seed: 0x5EED_4711)
        var statuses: [Int: Int] = [:]
        for iteration in 0..<500 {
            let seed = Array(Self.seeds[iteration % Self.seeds.count].utf8)
            let request = mutate(seed, using: &generator)
            let client = try RawClient(port: server.boundPort)
            client.send(request)
            client.shutdownWrite()   // no more bytes: an incomplete request ends at EOF
            guard let rest = client.readUntilClosed(timeout: 5) else {
                return XCTFail("iteration \(iteration): connection neither answered nor closed: \(String(decoding: request, as: UTF8.self).debugDescription)")
            }
            if rest.count >= 12, let code = Int(String(decoding: rest[9..<12], as: UTF8.self)) {
                statuses[code, default: 0] += 1
            } else {
                statuses[0, default: 0] += 1   // closed without a response
            }
        }
        let client = try RawClient(port: server.boundPort)
        client.send("GET /after-fuzz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 200)
        XCTAssertGreaterThan(statuses[400, default: 0], 0)
        print("fuzz status histogram (0 = closed without response):", statuses.sorted { $0.key < $1.key })
    }
}
