import Foundation
import Formats
import HTTP
import SCICore
@testable import Service
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Requests that once crashed the server or made it hold memory it had not accepted. Each gets
/// a result or a problem document, and the server then still answers /healthz and runs a job.
final class HardeningTests: ServiceTestCase {
    /// The server is alive and a normal job still runs to success.
    func assertStillServing(_ client: WireClient, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try client.get("/healthz").status, 200, file: file, line: line)
        let scene = Synthetic.scene(frames: 4, height: 16, width: 16, seed: 9)
        let id = try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)], options: #"{"iterations": 2}"#),
                            file: file, line: line)
        XCTAssertEqual(try wait(client, id)["state"] as? String, "succeeded", file: file, line: line)
    }

    func npy(_ shape: [Int], _ values: [Float]) -> [UInt8] { NPY.encode(NumericArray(shape: shape, float32: values)) }

    // MARK: - The two remote crashes (regressions)

    /// Values near 1e30 divided by a white level of 1e-30 overflow float32: once the job
    /// "succeeded" and GET frames/0.png died converting NaN to an integer.
    func testOverflowingWhiteLevelIsRefusedAndNonFiniteFramesNeverCrash() throws {
        let (_, client) = try startService(testConfig())
        let mask = [Float]((0 ..< 4 * 8 * 8).map { Float($0 % 2) })
        let meas = [Float](repeating: 1e30, count: 64)
        let response = try client.post("/v1/jobs", form: Multipart([("measurement", npy([8, 8], meas)), ("mask", npy([4, 8, 8], mask))],
                                                                  options: #"{"white_level": 1e-30}"#).finished)
        assertProblem(response, 422, "invalid-input", contains: "white level")
        // Values that are finite on the [0, 1] scale but overflow inside the solver.
        let huge = [Float](repeating: 3e38, count: 64)
        let accepted = try client.post("/v1/jobs", form: Multipart([("measurement", npy([8, 8], huge)), ("mask", npy([4, 8, 8], mask))],
                                                                  options: #"{"white_level": 1, "iterations": 2}"#).finished)
        if accepted.status == 202, let id = accepted.json["id"] as? String {
            let done = try wait(client, id)
            XCTAssertEqual(done["state"] as? String, "failed", "\(done)")
            XCTAssertTrue("\(done["error"] ?? "")".contains("NaN or infinite"), "\(done)")
            assertProblem(try client.get("/v1/jobs/\(id)/frames/0.png"), 409, "job-not-succeeded")
        } else {
            assertProblem(accepted, 422, "invalid-input")
        }
        try assertStillServing(client)
    }

    func testFrameEncodersAreTotalOnEveryFloat() throws {
        let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                 .leastNonzeroMagnitude, -0.0, 0.5, 1, 2]
        let video = try Video(frames: 1, height: 1, width: specials.count, pixels: specials)
        for bits in [8, 16] {
            let decoded = try PNG.decode(FrameEncoding.png(video, frame: 0, bitDepth: bits))
            let top = bits == 8 ? 255.0 : 65535.0
            XCTAssertEqual(decoded.doubles(), [0, 0, top, 0, top, 0, 0, 0, (top / 2).rounded(), top, top], "bits \(bits)")
        }
        // The npy encoder keeps the values as they are.
        let array = try NPY.decode(FrameEncoding.npy(video))
        XCTAssertEqual(array.floats().map(\.bitPattern).dropFirst(2), specials.map(\.bitPattern).dropFirst(2))
        XCTAssertTrue(array.floats()[0].isNaN)
    }

    /// 8193 snapshots of 8 frames: 65,544 frames, more than a plain zip's 16-bit entry count.
    func testFramesZipWithMoreThan65535FramesUsesZip64() throws {
        let (_, client) = try startService(testConfig())
        let snapshots = 8193
        let mask = [Float]((0 ..< 8 * 8 * 8).map { Float(($0 * 7) % 3 == 0 ? 1 : 0) })
        var meas = [Float](repeating: 0, count: snapshots * 64)
        for i in meas.indices { meas[i] = Float(i % 5) * 0.4 }
        let id = try submit(client, Multipart([("measurement", npy([snapshots, 8, 8], meas)), ("mask", npy([8, 8, 8], mask))],
                                              options: #"{"iterations": 1}"#))
        XCTAssertEqual(try wait(client, id, timeout: 300)["state"] as? String, "succeeded")
        let head = try client.request("HEAD", "/v1/jobs/\(id)/frames.zip")
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)
        let zip = try client.get("/v1/jobs/\(id)/frames.zip")
        XCTAssertEqual(zip.status, 200, zip.text.prefix(300).description)
        let archive = try ZipArchive(zip.body)
        XCTAssertEqual(archive.entries.count, snapshots * 8)
        XCTAssertEqual(archive.entries.last?.name, FrameEncoding.frameName(snapshots * 8 - 1))
        let last = try PNG.decode(try archive.data(for: archive.entries[archive.entries.count - 1]))
        XCTAssertEqual(last.shape, [8, 8])
        // Cached now: HEAD knows its length.
        XCTAssertEqual(try client.request("HEAD", "/v1/jobs/\(id)/frames.zip").header("Content-Length"), String(zip.body.count))
        try assertStillServing(client)
    }

    // MARK: - Nothing held before it is accepted

    func testUploadWithoutTokenIsRefusedFromItsHeadWithoutContinue() throws {
        let (_, _) = try startService(testConfig {
            $0.auth = .init(enabled: true, tokens: ["secret-token"])
            $0.maxBodyMiB = 1024
        })
        let port = services[0].port
        // Expect: 100-continue: the 401 comes instead of the interim response.
        let socket = try TestSocket(port: port)
        socket.send(Array(("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                           + "Content-Length: 400000000\r\nExpect: 100-continue\r\n\r\n").utf8))
        let raw = socket.readAll(timeout: 5)
        XCTAssertTrue(raw.starts(with: Array("HTTP/1.1 401".utf8)), String(decoding: raw.prefix(200), as: UTF8.self))
        XCTAssertFalse(String(decoding: raw, as: UTF8.self).contains("100 Continue"))
        let refused = try XCTUnwrap(WireClient.parse(raw))
        XCTAssertEqual(refused.header("WWW-Authenticate"), "Bearer realm=\"revsci\"")
        XCTAssertEqual(refused.header("Connection"), "close")
        // Without Expect, the body starts at once: the answer is still 401 and the connection
        // closes instead of reading 400 MB.
        let eager = try TestSocket(port: port)
        eager.send(Array(("POST /v1/masks HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                          + "Content-Length: 400000000\r\n\r\n").utf8) + [UInt8](repeating: 7, count: 256 * 1024))
        let answer = try XCTUnwrap(WireClient.parse(eager.readAll(timeout: 5)))
        XCTAssertEqual(answer.status, 401)
        var sent = 0
        let chunk = [UInt8](repeating: 1, count: 1 << 20)
        while sent < 64 << 20, eager.send(chunk) { sent += chunk.count }
        XCTAssertLessThan(sent, 64 << 20, "the server kept reading a body it had refused")
        // The same server takes authorised work.
        XCTAssertEqual(try WireClient(port: port).get("/healthz").status, 200)
        try assertStillServing(WireClient(port: port, token: "secret-token"))
    }

    func testFullQueueAndWrongTypeAreRefusedFromTheHead() throws {
        let (service, client) = try startService(testConfig { $0.maxQueue = 1 })
        // A wrong media type is refused before the body.
        let typed = try TestSocket(port: client.port)
        typed.send(Array("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n".utf8))
        let typeAnswer = try XCTUnwrap(WireClient.parse(typed.readAll(timeout: 5)))
        assertProblem(typeAnswer, 415, "unsupported-media-type")
        // A full queue: the slot is taken by a reservation, so the head alone is refused.
        XCTAssertTrue(service.pool.reserve())
        defer { service.pool.release() }
        let full = try TestSocket(port: client.port)
        full.send(Array("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n".utf8))
        let raw = full.readAll(timeout: 5)
        XCTAssertTrue(raw.starts(with: Array("HTTP/1.1 503".utf8)), String(decoding: raw.prefix(200), as: UTF8.self))
        let fullAnswer = try XCTUnwrap(WireClient.parse(raw))
        assertProblem(fullAnswer, 503, "queue-full")
        XCTAssertNotNil(fullAnswer.header("Retry-After"))
    }

    /// Big uploads arrive in a file under tmp/, not in memory; the job runs from it and the
    /// file is gone afterwards.
    func testLargeBodiesAreSpooledToDiskAndCleanedUp() throws {
        let config = testConfig { $0.memoryBodyKiB = 1 }
        let (_, client) = try startService(config)
        let scene = Synthetic.scene(frames: 4, height: 32, width: 32, seed: 4)
        let form = Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY), ("ground_truth", scene.truthNPY)],
                             options: #"{"iterations": 5}"#)
        XCTAssertGreaterThan(form.finished.body.count, 2048)
        let id = try submit(client, form)
        let done = try wait(client, id)
        XCTAssertEqual(done["state"] as? String, "succeeded")
        XCTAssertNotNil((done["metrics"] as? [String: Any])?["mean_psnr"])
        // A chunked upload that outgrows the memory limit is spooled too.
        let body = form.finished.body
        var chunked: [UInt8] = []
        for start in stride(from: 0, to: body.count, by: 700) {
            let piece = body[start ..< min(body.count, start + 700)]
            chunked += Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8)
        }
        chunked += Array("0\r\n\r\n".utf8)
        let socket = try TestSocket(port: client.port)
        socket.send(Array("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: \(form.contentType)\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) + chunked)
        let answer = try XCTUnwrap(WireClient.parse(socket.readAll(timeout: 30)))
        XCTAssertEqual(answer.status, 202, answer.text)
        let uploads = try FileManager.default.contentsOfDirectory(atPath: config.dataDir + "/tmp").filter { $0.hasPrefix("upload-") }
        XCTAssertEqual(uploads, [], "spooled bodies are removed once their request is answered")
    }

    // MARK: - Decode budgets

    /// A small .npz whose entry declares gigabytes, and a .mat whose compressed variable does:
    /// both refused at once, before inflating.
    func testCompressedUploadsDeclaringGigabytesAreRefusedAtOnce() throws {
        let (_, client) = try startService(testConfig { $0.maxDecodeMiB = 256 })
        let mask = npy([4, 8, 8], [Float](repeating: 1, count: 256))
        // An npz entry declaring 3 GB (the zip header's uncompressed size) over 2 MB of data.
        var writer = ZipWriter()
        let zeros = [UInt8](repeating: 0, count: 2 << 20)
        try writer.add(name: "meas.npy", data: zeros, compress: true)
        var npz = writer.finish()
        let patchSize: (inout [UInt8], Int) -> Void = { bytes, at in
            let v = UInt32(3_000_000_000)
            for k in 0 ..< 4 { bytes[at + k] = UInt8((v >> (8 * UInt32(k))) & 0xFF) }
        }
        patchSize(&npz, 22)                                   // local header
        let central = try XCTUnwrap(WireClient.find([0x50, 0x4B, 0x01, 0x02], in: npz))
        patchSize(&npz, central + 24)                         // central directory
        var started = Date()
        var response = try client.post("/v1/jobs", form: Multipart([("measurement", npz), ("mask", mask)]).finished)
        assertProblem(response, 422, "invalid-input")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)

        // A MAT-file variable whose (compressed) tag declares 3 GB and whose dimensions say
        // 40000 x 40000 x 8 doubles: only its first bytes exist.
        var inner: [UInt8] = []
        inner.appendLE(UInt32(14)); inner.appendLE(UInt32(3_000_000_000))          // miMATRIX, size
        inner.appendLE(UInt32(6)); inner.appendLE(UInt32(8)); inner.appendLE(UInt32(6)); inner.appendLE(UInt32(0)) // flags: double
        inner.appendLE(UInt32(5)); inner.appendLE(UInt32(12))                          // dims: int32 x 3
        inner.appendLE(UInt32(40000)); inner.appendLE(UInt32(40000)); inner.appendLE(UInt32(8)); inner.appendLE(UInt32(0))
        let compressed = Zlib.deflate(inner[...])
        var mat = Array("MATLAB 5.0 MAT-file, hostile".utf8)
        mat += [UInt8](repeating: 32, count: 116 - mat.count) + [UInt8](repeating: 0, count: 8) + [0x00, 0x01, 0x49, 0x4D]
        mat.appendLE(UInt32(15)); mat.appendLE(UInt32(compressed.count))
        mat += compressed
        started = Date()
        response = try client.post("/v1/jobs", form: Multipart([("measurement", mat), ("mask", mask)]).finished)
        assertProblem(response, 422, "invalid-input")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)

        // An empty array whose other extents are enormous: (0, 2^32, 2^32).
        var header = "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let empty = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        response = try client.post("/v1/jobs", form: Multipart([("measurement", empty), ("mask", mask)]).finished)
        assertProblem(response, 422, "invalid-input")
        try assertStillServing(client)
    }

    func testNarrowFramesCannotAskForHugePaddedBuffers() throws {
        let (_, client) = try startService(testConfig { $0.maxOutputValues = 1 << 16 })
        // 4 x 4096 x 2: 32,768 outputs, but rows padded to 32 values make 4 x 4097 x 32.
        let mask = npy([4, 4096, 2], [Float](repeating: 1, count: 4 * 4096 * 2))
        let meas = npy([4096, 2], [Float](repeating: 1, count: 4096 * 2))
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", meas), ("mask", mask)]).finished),
                      422, "invalid-input", contains: "padded")
    }

    // MARK: - Slow and greedy clients

    func testTrickledHeadGets408Early() throws {
        let (_, client) = try startService(testConfig { $0.headTimeoutSeconds = 1; $0.readTimeoutSeconds = 60 })
        let slow = try TestSocket(port: client.port)
        let started = Date()
        slow.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n".utf8))
        let answer = try XCTUnwrap(WireClient.parse(slow.readAll(timeout: 10)))
        XCTAssertEqual(answer.status, 408)
        XCTAssertTrue(answer.text.contains("headers"), answer.text)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertEqual(try client.get("/healthz").status, 200)
    }

    /// A client that asks for a large download and reads nothing is cut off when the
    /// whole-response deadline passes, even though the socket buffers take a few megabytes.
    func testSlowReaderIsDisconnectedAtTheResponseDeadline() throws {
        let (_, client) = try startService(testConfig { $0.responseTimeoutSeconds = 1 })
        let mask = npy([8, 256, 512], (0 ..< 8 * 256 * 512).map { Float(($0 * 13) % 7 < 3 ? 1 : 0) })
        let meas = npy([4, 256, 512], [Float](repeating: 0.7, count: 4 * 256 * 512))
        let id = try submit(client, Multipart([("measurement", meas), ("mask", mask)], options: #"{"iterations": 1, "white_level": 2}"#))
        XCTAssertEqual(try wait(client, id, timeout: 120)["state"] as? String, "succeeded")
        let full = try client.request("HEAD", "/v1/jobs/\(id)/result.npy")
        let length = try XCTUnwrap(full.header("Content-Length").flatMap(Int.init))
        XCTAssertGreaterThan(length, 16 << 20)
        let reader = try TestSocket(port: client.port)
        reader.send(Array("GET /v1/jobs/\(id)/result.npy HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        sleep(4)
        // Reading now would take the rest in well under a second if the server were still
        // sending; instead it has closed: what the socket buffers held, then end of stream.
        let started = Date()
        let received = reader.readAll(timeout: 20)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "no end of stream: the server is still sending")
        XCTAssertLessThan(received.count, length, "the server kept the slow reader's response going past its deadline")
        XCTAssertEqual(try client.get("/healthz").status, 200)
    }

    func testOneClientCannotTakeEveryConnection() throws {
        let (_, client) = try startService(testConfig { $0.maxConnectionsPerClient = 3 })
        let held = try (0 ..< 3).map { _ in try TestSocket(port: client.port) }
        usleep(200_000)
        let fourth = try TestSocket(port: client.port)
        fourth.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let refused = try XCTUnwrap(WireClient.parse(fourth.readAll(timeout: 5)))
        XCTAssertEqual(refused.status, 503)
        XCTAssertTrue(refused.text.contains("one client"), refused.text)
        withExtendedLifetime(held) {}
        // Once they are closed, the client gets in again.
        _ = held.count
    }

    func testHealthzAnswersWhileAJobRunsAndOthersUpload() throws {
        let (_, client) = try startService(testConfig())
        let long = JobLifecycleTests.longScene
        let id = try submit(client, Multipart([("measurement", long.measurementNPY), ("mask", long.maskNPY)], options: #"{"iterations": 400}"#))
        // A client that opened an upload and stalls holds its connection thread, nobody else's.
        let stalled = try TestSocket(port: client.port)
        stalled.send(Array("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b".utf8))
        var slowest = 0.0
        for _ in 0 ..< 20 {
            let t0 = Date()
            XCTAssertEqual(try client.get("/healthz").status, 200)
            slowest = max(slowest, Date().timeIntervalSince(t0))
            usleep(20_000)
        }
        XCTAssertLessThan(slowest, 1.0)
        XCTAssertEqual(try client.delete("/v1/jobs/\(id)").status, 202)
        XCTAssertEqual(try wait(client, id)["state"] as? String, "cancelled")
    }

    // MARK: - Races and bookkeeping

    /// DELETE at any moment around a job's start: a job the client was told is cancelled (or
    /// cancelling) never ends up succeeded.
    func testDeleteRacingTheWorkerNeverEndsSucceeded() throws {
        let (_, client) = try startService(testConfig())
        let scene = Synthetic.scene(frames: 4, height: 16, width: 16, seed: 2)
        for round in 0 ..< 12 {
            let id = try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)],
                                                  options: #"{"iterations": 400}"#))
            // Before it starts, around its start, while it runs.
            if round % 3 != 0 { usleep(UInt32(round * 1500)) }
            let answer = try client.delete("/v1/jobs/\(id)")
            switch answer.status {
            case 200, 202:
                let final = try wait(client, id)
                XCTAssertEqual(final["state"] as? String, "cancelled", "round \(round): DELETE said \(answer.status) \(answer.text)")
            case 204:
                break   // it had already finished and was removed
            default:
                XCTFail("round \(round): DELETE answered \(answer.status) \(answer.text)")
            }
        }
    }

    func testGracefulShutdownIsNotCountedAsAnAttempt() throws {
        let config = testConfig()
        let (first, client) = try startService(config)
        let long = JobLifecycleTests.longScene
        let id = try submit(client, Multipart([("measurement", long.measurementNPY), ("mask", long.maskNPY)], options: #"{"iterations": 10000}"#))
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline, try client.get("/v1/jobs/\(id)").json["state"] as? String != "running" { usleep(10_000) }
        first.shutdown(grace: 0)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config.dataDir + "/jobs/\(id)/job.json"))) as? [String: Any]
        XCTAssertEqual(record?["state"] as? String, "queued")
        XCTAssertEqual(record?["attempts"] as? Int, 0, "a graceful stop is not a crash")
    }

    func testResultCacheIsBoundedInBytes() throws {
        let cache = ResultCache(budget: 3 * 4 * 100)
        func video(_ n: Int) throws -> Video { try Video(frames: 1, height: 1, width: n, pixels: [Float](repeating: 0.5, count: n)) }
        try cache.put("a", video(100))
        try cache.put("b", video(100))
        try cache.put("c", video(100))
        XCTAssertEqual(cache.heldBytes, 1200)
        try cache.put("d", video(150))          // evicts the two least recently used
        XCTAssertNil(cache.get("a"))
        XCTAssertNil(cache.get("b"))
        XCTAssertNotNil(cache.get("c"))
        XCTAssertLessThanOrEqual(cache.heldBytes, 1200)
        try cache.put("huge", video(1000))      // larger than the budget: not kept, nothing evicted
        XCTAssertNil(cache.get("huge"))
        XCTAssertNotNil(cache.get("d"))
    }

    func testQuotaReservationsCannotBothTakeTheLastSpace() throws {
        let (service, _) = try startService(testConfig { $0.quotaMiB = 1 })
        XCTAssertTrue(service.janitor.reserve(700_000))
        XCTAssertFalse(service.janitor.reserve(700_000), "two submissions fitted into the same free space")
        service.janitor.release(700_000)
        XCTAssertTrue(service.janitor.reserve(700_000))
        service.janitor.release(700_000)
    }
}
