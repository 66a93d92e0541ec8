import Foundation
import Formats
import SCICore
@testable import Service
import XCTest

/// Hostile and mistaken requests: each gets the right 4xx problem document, and the server keeps serving.
final class BadInputTests: ServiceTestCase {
    func testEveryBadSubmissionGetsItsProblemDocument() throws {
        let (_, client) = try startService(testConfig { $0.maxBodyMiB = 4 })
        let good = Synthetic.scene(frames: 4, height: 16, width: 20)
        let meas = good.measurementNPY, mask = good.maskNPY
        func post(_ fields: [(String, [UInt8])], options: String? = nil) throws -> WireResponse {
            try client.post("/v1/jobs", form: Multipart(fields, options: options).finished)
        }
        func npy(_ shape: [Int], _ values: [Float]) -> [UInt8] { NPY.encode(NumericArray(shape: shape, float32: values)) }

        // Content types.
        assertProblem(try client.request("POST", "/v1/jobs", headers: [("Content-Type", "application/json")], body: Array("{}".utf8)),
                      415, "unsupported-media-type")
        assertProblem(try client.request("POST", "/v1/jobs", body: meas), 415, "unsupported-media-type")
        assertProblem(try client.request("POST", "/v1/jobs", headers: [("Content-Type", "multipart/form-data")], body: meas),
                      400, "invalid-multipart", contains: "boundary")
        // Truncated multipart: the closing boundary and part of the file are missing.
        let whole = Multipart([("measurement", meas), ("mask", mask)]).finished
        assertProblem(try client.request("POST", "/v1/jobs", headers: [("Content-Type", whole.contentType)],
                                         body: Array(whole.body.prefix(whole.body.count - 100))), 400, "invalid-multipart")
        assertProblem(try client.request("POST", "/v1/jobs", headers: [("Content-Type", whole.contentType)],
                                         body: Array("garbage without any boundary".utf8)), 400, "invalid-multipart")
        // Missing, unknown, repeated parts.
        assertProblem(try post([("mask", mask)]), 400, "missing-part", contains: "measurement")
        assertProblem(try post([("measurement", meas)]), 400, "missing-part", contains: "mask")
        assertProblem(try post([("measurement", meas), ("mask", mask), ("mask_id", Array(String(repeating: "a", count: 64).utf8))]),
                      400, "bad-request", contains: "either")
        assertProblem(try post([("measurement", meas), ("masks", mask)]), 400, "bad-request", contains: "masks")
        assertProblem(try post([("measurement", meas), ("measurement", meas), ("mask", mask)]), 400, "bad-request")
        // Options.
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: "{not json"), 400, "invalid-options")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: "[1, 2]"), 400, "invalid-options")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: #"{"iteratons": 5}"#), 422, "invalid-options", contains: "iteratons")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: #"{"png_bits": 12}"#), 422, "invalid-options", contains: "png_bits")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: #"{"algorithm": "admm"}"#), 422, "invalid-options")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: #"{"white_level": -3}"#), 422, "invalid-options")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: #"{"snapshots": "one"}"#), 422, "invalid-options")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: #"{"iterations": 0}"#), 422, "invalid-options")
        // Files that are not arrays, or broken ones.
        assertProblem(try post([("measurement", Array("hello, I am a text file".utf8)), ("mask", mask)]), 415, "unsupported-media-type")
        assertProblem(try post([("measurement", [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]), ("mask", mask)]),
                      415, "unsupported-media-type", contains: "v7.3")
        assertProblem(try post([("measurement", []), ("mask", mask)]), 422, "invalid-input", contains: "empty")
        assertProblem(try post([("measurement", Array(meas.prefix(meas.count - 7))), ("mask", mask)]), 422, "invalid-input", contains: "truncated")
        assertProblem(try post([("measurement", Array(meas.prefix(20))), ("mask", mask)]), 422, "invalid-input")
        // A header declaring an enormous array is refused before anything is allocated.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let bomb = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            + Array(header.utf8) + [UInt8](repeating: 0, count: 64)
        assertProblem(try post([("measurement", bomb), ("mask", mask)]), 422, "invalid-input")
        // Shapes and values.
        assertProblem(try post([("measurement", npy([2, 2, 16, 20], [Float](repeating: 1, count: 1280))), ("mask", mask)]),
                      422, "invalid-input", contains: "shape")
        assertProblem(try post([("measurement", npy([16, 21], [Float](repeating: 1, count: 336))), ("mask", mask)]),
                      422, "invalid-input", contains: "must match")
        var nan = good.measurement
        nan[17] = .nan
        assertProblem(try post([("measurement", npy([16, 20], nan)), ("mask", mask)]), 422, "invalid-input", contains: "non-finite")
        var inf = good.mask
        inf[3] = .infinity
        assertProblem(try post([("measurement", meas), ("mask", npy([4, 16, 20], inf))]), 422, "invalid-input", contains: "non-finite")
        assertProblem(try post([("measurement", meas), ("mask", npy([4, 16, 20], [Float](repeating: 0, count: 1280)))]),
                      422, "invalid-input", contains: "zero everywhere")
        assertProblem(try post([("measurement", meas), ("mask", mask), ("ground_truth", npy([3, 16, 20], [Float](repeating: 0.5, count: 960)))]),
                      422, "invalid-input", contains: "ground truth")
        assertProblem(try post([("measurement", meas), ("mask", mask)], options: #"{"snapshots": 0}"#), 422, "invalid-options")
        // Unknown and malformed mask ids.
        assertProblem(try post([("measurement", meas), ("mask_id", Array(String(repeating: "0", count: 64).utf8))]), 422, "unknown-mask")
        assertProblem(try post([("measurement", meas), ("mask_id", Array("../../etc/passwd".utf8))]), 422, "unknown-mask")
        // Too large for the server: declared length over max_body_mib is refused before the body is read.
        let huge = try TestSocket(port: client.port)
        huge.send(Array("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: \(whole.contentType)\r\nContent-Length: 10000000000\r\n\r\n".utf8))
        let tooLarge = try XCTUnwrap(WireClient.parse(huge.readAll(timeout: 5)))
        XCTAssertEqual(tooLarge.status, 413)
        XCTAssertEqual(tooLarge.header("Content-Type"), "application/problem+json")
        // Methods.
        let put = try client.request("PUT", "/v1/jobs", body: [1])
        assertProblem(put, 405, "method-not-allowed")
        XCTAssertEqual(put.header("Allow"), "GET, POST, HEAD")

        // Still serving, and a good job still runs.
        XCTAssertEqual(try client.get("/healthz").status, 200)
        let id = try submit(client, Multipart([("measurement", meas), ("mask", mask)], options: #"{"iterations": 3}"#))
        XCTAssertEqual(try wait(client, id)["state"] as? String, "succeeded")
        XCTAssertEqual((try client.get("/v1/jobs").json["jobs"] as? [Any])?.count, 1, "no refused request left a job behind")
    }

    func testPathTricksNeverEscapeTheStore() throws {
        let (_, client) = try startService(testConfig())
        let scene = Synthetic.scene()
        let id = try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)], options: #"{"iterations": 2}"#))
        try wait(client, id)
        let targets = [
            "/v1/jobs/..", "/v1/jobs/%2e%2e", "/v1/jobs/%2E%2E/LOCK", "/v1/jobs/..%2f..%2fLOCK", "/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/v1/jobs/" + String(repeating: "a", count: 5000), "/v1/jobs/" + String(repeating: "g", count: 32),
            "/v1/jobs/" + id.uppercased(), "/v1/jobs/\(id)%00", "/v1/jobs/\(id)/frames/..%2f..%2fjob.json",
            "/v1/jobs/\(id)/frames/-1.png", "/v1/jobs/\(id)/frames/99999.png", "/v1/jobs/\(id)/frames/1e1.png",
            "/v1/jobs/\(id)/frames/%2e%2e.png", "/v1/jobs/\(id)/job.json", "/v1/jobs/\(id)/frames.npy",
            "/v1/masks/..", "/v1/masks/" + String(repeating: "z", count: 64), "/v1/masks/%2e%2e%2f%2e%2e%2fjobs",
            "/v1/../healthz/x", "/v1", "/v1/nothing", "/etc/passwd",
        ]
        for target in targets {
            let response = try client.get(target)
            assertProblem(response, 404, "not-found")
            XCTAssertLessThan(response.body.count, 1000, target.prefix(80).description)
        }
        assertProblem(try client.get("/v1/jobs/\(id)/frames/0.png?bits=3"), 400, "bad-request")
        assertProblem(try client.delete("/v1/jobs/%2e%2e"), 404, "not-found")
        XCTAssertEqual(try client.get("/v1/jobs/\(id)").status, 200)
    }

    func testSlowSenderGets408AndOthersAreServed() throws {
        let (_, client) = try startService(testConfig { $0.readTimeoutSeconds = 1 })
        let slow = try TestSocket(port: client.port)
        let form = Multipart([("measurement", Synthetic.scene().measurementNPY)]).finished
        slow.send(Array("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: \(form.contentType)\r\nContent-Length: \(form.body.count)\r\n\r\n".utf8)
                  + form.body.prefix(50))
        // Meanwhile another client is served normally.
        XCTAssertEqual(try client.get("/healthz").status, 200)
        let answer = try XCTUnwrap(WireClient.parse(slow.readAll(timeout: 10)))
        XCTAssertEqual(answer.status, 408)
        XCTAssertEqual(answer.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(try client.get("/readyz").status, 200)
    }
}
