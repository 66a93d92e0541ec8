import Foundation
import Formats
import SCICore
@testable import Service
import XCTest

/// Masks by id, cancellation, deletion, listing, queue limits.
final class JobLifecycleTests: ServiceTestCase {
    /// A job that runs for a long time (until cancelled): 256x256x8 GAP-TV with 10000 iterations.
    static let longScene = Synthetic.scene(frames: 8, height: 256, width: 256, seed: 7)
    static let longOptions = #"{"iterations": 10000}"#

    func testMaskUploadByIDAndReuse() throws {
        let (_, client) = try startService(testConfig())
        let scene = Synthetic.scene(frames: 4, height: 32, width: 24)
        let upload = try client.post("/v1/masks", form: Multipart([("mask", scene.maskNPY)]).finished)
        XCTAssertEqual(upload.status, 201, upload.text)
        let id = try XCTUnwrap(upload.json["id"] as? String)
        XCTAssertEqual(upload.header("Location"), "/v1/masks/\(id)")

        // The id is the SHA-256 of shape (3 x UInt64 LE) + float32 LE values.
        var canonical: [UInt8] = []
        for n in [4, 32, 24] { withUnsafeBytes(of: UInt64(n).littleEndian) { canonical += $0 } }
        for v in scene.mask { withUnsafeBytes(of: v.bitPattern.littleEndian) { canonical += $0 } }
        XCTAssertEqual(id, SHA256.hex(canonical))

        // The same mask as a MATLAB file (H, W, T) and as a raw uint8 0/255 body: same id, 200.
        var hwt = [UInt8](repeating: 0, count: scene.mask.count)
        for t in 0 ..< 4 { for i in 0 ..< 32 * 24 { hwt[i * 4 + t] = UInt8(scene.mask[t * 32 * 24 + i] * 255) } }
        let mat = MATFile.encode([("mask", NumericArray(shape: [32, 24, 4], storage: .uint8(hwt)))], compressed: true)
        let again = try client.post("/v1/masks", form: Multipart([("mask", mat)]).finished)
        XCTAssertEqual(again.status, 200, again.text)
        XCTAssertEqual(again.json["id"] as? String, id)
        let raw = try client.request("POST", "/v1/masks", headers: [("Content-Type", "application/octet-stream")], body: scene.maskNPY)
        XCTAssertEqual(raw.json["id"] as? String, id)

        let first = try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask_id", Array(id.utf8)),
                                                  ("ground_truth", scene.truthNPY)], options: #"{"iterations": 20}"#))
        let second = try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)],
                                                  options: #"{"iterations": 20}"#))
        let a = try wait(client, first), b = try wait(client, second)
        XCTAssertEqual(a["state"] as? String, "succeeded")
        XCTAssertEqual(a["mask_id"] as? String, id)
        XCTAssertEqual(b["mask_id"] as? String, id, "an inline mask gets the same content id")
        XCTAssertEqual(try client.get("/v1/jobs/\(first)/result.npy").body, try client.get("/v1/jobs/\(second)/result.npy").body)

        let info = try client.get("/v1/masks/\(id)").json
        XCTAssertEqual(info["source"] as? String, "upload")
        XCTAssertEqual(Set(info["jobs"] as? [String] ?? []), [first, second])
        let shape = try XCTUnwrap(info["shape"] as? [String: Any])
        XCTAssertEqual([shape["frames"], shape["height"], shape["width"]] as? [Int], [4, 32, 24])
        XCTAssertEqual((try client.get("/v1/masks").json["masks"] as? [Any])?.count, 1)

        XCTAssertEqual(try client.delete("/v1/masks/\(id)").status, 204)
        assertProblem(try client.get("/v1/masks/\(id)"), 404, "not-found")
        assertProblem(try client.delete("/v1/masks/\(id)"), 404, "not-found")
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", scene.measurementNPY), ("mask_id", Array(id.utf8))]).finished),
                      422, "unknown-mask")
        // Finished jobs keep their results without the mask.
        XCTAssertEqual(try client.get("/v1/jobs/\(first)/frames.zip").status, 200)
    }

    func testCancelRunningAndQueuedJobsThenDelete() throws {
        let (service, client) = try startService(testConfig { $0.maxQueue = 1; $0.queueFullStatus = 429; $0.retryAfterSeconds = 7 })
        let long = Self.longScene
        let running = try submit(client, Multipart([("measurement", long.measurementNPY), ("mask", long.maskNPY)], options: Self.longOptions))
        try waitForProgress(client, running)
        let small = Synthetic.scene()
        let queued = try submit(client, Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY)]))
        XCTAssertEqual(try client.get("/v1/jobs/\(queued)").json["state"] as? String, "queued")

        // Queue full (capacity 1): 429 with Retry-After, configurable.
        let full = try client.post("/v1/jobs", form: Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY)]).finished)
        assertProblem(full, 429, "queue-full")
        XCTAssertEqual(full.header("Retry-After"), "7")

        // A mask needed by unfinished jobs cannot be deleted.
        let maskID = try XCTUnwrap(try client.get("/v1/jobs/\(queued)").json["mask_id"] as? String)
        assertProblem(try client.delete("/v1/masks/\(maskID)"), 409, "mask-in-use")

        // Results of unfinished jobs: 409.
        assertProblem(try client.get("/v1/jobs/\(running)/frames.zip"), 409, "job-not-succeeded")
        assertProblem(try client.get("/v1/jobs/\(queued)/result.npy"), 409, "job-not-succeeded")

        // Cancel the queued one: at once, 200.
        let cancelQueued = try client.delete("/v1/jobs/\(queued)")
        XCTAssertEqual(cancelQueued.status, 200, cancelQueued.text)
        XCTAssertEqual(cancelQueued.json["state"] as? String, "cancelled")

        // Cancel the running one: 202, then cancelled.
        let cancelRunning = try client.delete("/v1/jobs/\(running)")
        XCTAssertEqual(cancelRunning.status, 202, cancelRunning.text)
        XCTAssertEqual(cancelRunning.json["cancel_requested"] as? Bool, true)
        let cancelled = try wait(client, running, timeout: 20)
        XCTAssertEqual(cancelled["state"] as? String, "cancelled")
        assertProblem(try client.get("/v1/jobs/\(running)/frames/0.png"), 409, "job-not-succeeded")

        // Deleting a finished job removes it and its folder.
        let folder = service.store.jobsDirectory + "/" + running
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder))
        XCTAssertEqual(try client.delete("/v1/jobs/\(running)").status, 204)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder))
        assertProblem(try client.get("/v1/jobs/\(running)"), 404, "not-found")
        XCTAssertEqual(try client.delete("/v1/jobs/\(queued)").status, 204)

        // The worker is free again.
        let next = try submit(client, Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY)], options: #"{"iterations": 5}"#))
        XCTAssertEqual(try wait(client, next)["state"] as? String, "succeeded")
        let metrics = try client.get("/metrics").text
        XCTAssertTrue(metrics.contains("revsci_jobs_finished_total{state=\"cancelled\"} 2"), metrics)
    }

    func testListingFiltersAndOrder() throws {
        let (_, client) = try startService(testConfig())
        let scene = Synthetic.scene()
        var ids: [String] = []
        for _ in 0 ..< 3 {
            ids.append(try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)], options: #"{"iterations": 3}"#)))
        }
        for id in ids { try wait(client, id) }
        let all = try client.get("/v1/jobs").json
        XCTAssertEqual((all["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? String }, ids.reversed())
        XCTAssertEqual(all["total"] as? Int, 3)
        let limited = try client.get("/v1/jobs?limit=2&state=succeeded,failed").json
        XCTAssertEqual((limited["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? String }, Array(ids.reversed().prefix(2)))
        XCTAssertEqual(limited["count"] as? Int, 2)
        XCTAssertEqual((try client.get("/v1/jobs?state=queued").json["jobs"] as? [Any])?.count, 0)
        assertProblem(try client.get("/v1/jobs?state=done"), 400, "bad-request")
        assertProblem(try client.get("/v1/jobs?limit=0"), 400, "bad-request")
        assertProblem(try client.get("/v1/jobs?limit=abc"), 400, "bad-request")
    }

    /// Many clients at once: every submission is accepted exactly once and every job completes.
    func testConcurrentSubmissions() throws {
        let (_, client) = try startService(testConfig { $0.workers = 2 })
        let scene = Synthetic.scene(frames: 2, height: 16, width: 16)
        let form = Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)], options: #"{"iterations": 2}"#).finished
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var ids: [String] = []
            var statuses: [Int] = []
        }
        let box = Box()
        DispatchQueue.concurrentPerform(iterations: 12) { _ in
            let response = try? client.post("/v1/jobs", form: form)
            box.lock.withLock {
                box.statuses.append(response?.status ?? -1)
                if let id = response?.json["id"] as? String { box.ids.append(id) }
            }
        }
        XCTAssertEqual(box.statuses, [Int](repeating: 202, count: 12))
        XCTAssertEqual(Set(box.ids).count, 12)
        for id in box.ids { XCTAssertEqual(try wait(client, id)["state"] as? String, "succeeded") }
        XCTAssertEqual(try client.get("/v1/jobs?limit=1000").json["total"] as? Int, 12)
        XCTAssertEqual((try client.get("/v1/masks").json["masks"] as? [Any])?.count, 1, "one content id for the shared mask")
    }

    func testQueueFullAnswers503ByDefault() throws {
        let (_, client) = try startService(testConfig { $0.maxQueue = 1 })
        let long = Self.longScene
        let running = try submit(client, Multipart([("measurement", long.measurementNPY), ("mask", long.maskNPY)], options: Self.longOptions))
        try waitForProgress(client, running)
        let small = Synthetic.scene()
        try submit(client, Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY)]))
        let full = try client.post("/v1/jobs", form: Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY)]).finished)
        assertProblem(full, 503, "queue-full")
        XCTAssertEqual(full.header("Retry-After"), "30")
        XCTAssertEqual(full.json["queue_capacity"] as? Int, 1)
        XCTAssertEqual(try client.delete("/v1/jobs/\(running)").status, 202)
        try wait(client, running, for: ["cancelled"], timeout: 20)
    }

    /// Waits until a job runs and has made progress.
    func waitForProgress(_ client: WireClient, _ id: String) throws {
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline {
            let job = try client.get("/v1/jobs/\(id)").json
            if job["state"] as? String == "running", (job["progress"] as? Double ?? 0) > 0 { return }
            usleep(20_000)
        }
        XCTFail("job \(id) did not start")
    }
}
