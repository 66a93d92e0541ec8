import Foundation
import Formats
import Reconstruction
import SCICore
@testable import Service
import TestSupport
import XCTest

/// The benchmark scenes' stored meas + mask (+ orig) through the whole API: upload as .mat and
/// as .npy, poll, download frames and arrays, and compare with the in-process pipeline.
final class SceneJobTests: ServiceTestCase {
    /// Every scene's stored meas + mask as one .mat and as .npy parts; fast GAP-TV (5 iterations).
    /// drop8/runner8 go as their original files (meas, mask and orig together), so they need
    /// `snapshots: 1` and report metrics; traffic48 (6 snapshots, 48 frames) goes as a .mat of
    /// meas + mask only. The .npy parts carry no ground truth (SSIM of 256x256 frames is slow
    /// in debug builds); their result must equal the .mat job's.
    func testBenchmarkScenesAsMatAndAsNPY() throws {
        let (_, client) = try startService(testConfig())
        let scenes: [(name: String, snapshots: Int)] = [("drop8", 1), ("runner8", 1), ("traffic48", 6)]
        var pairs: [(mat: String, npy: String, scene: String, frames: Int)] = []
        for scene in scenes {
            var mat = try Scenes.mat(scene.name)
            let limit = scene.name == "traffic48" ? "" : ", \"snapshots\": 1"
            if scene.name == "drop8" {
                // 5 stored snapshots but orig covers only the first: refused with a hint saying what to send.
                let refused = try client.post("/v1/jobs", form: Multipart([("measurement", mat)]).finished)
                assertProblem(refused, 422, "invalid-input", contains: "\"snapshots\": 1")
            }
            if scene.name == "traffic48" {
                let file = try ArrayFile.decode(mat)
                mat = MATFile.encode([("meas", try XCTUnwrap(file.array("meas"))), ("mask", try XCTUnwrap(file.array("mask")))],
                                     compressed: true)
            }
            let options = "{\"iterations\": 5\(limit)}"
            let fromMat = try submit(client, Multipart([("measurement", mat)], options: options))
            let parts = try Scenes.npyParts(scene.name)
            let fromNPY = try submit(client, Multipart([("measurement", parts.meas), ("mask", parts.mask)], options: options))
            pairs.append((fromMat, fromNPY, scene.name, 8 * scene.snapshots))
        }
        for pair in pairs {
            var results: [[UInt8]] = []
            for id in [pair.mat, pair.npy] {
                let done = try wait(client, id, timeout: 120)
                XCTAssertEqual(done["state"] as? String, "succeeded", "\(pair.scene): \(done)")
                let shape = try XCTUnwrap(done["shape"] as? [String: Any])
                XCTAssertEqual(shape["frames"] as? Int, pair.frames)
                XCTAssertEqual(shape["height"] as? Int, 256)
                XCTAssertEqual(shape["width"] as? Int, 256)
                XCTAssertEqual(done["white_level"] as? Double, 255, "\(pair.scene)")
                XCTAssertEqual(done["white_level_source"] as? String, "inferred")
                XCTAssertEqual(done["progress"] as? Double, 1)
                let npy = try client.get("/v1/jobs/\(id)/result.npy")
                XCTAssertEqual(npy.status, 200)
                XCTAssertEqual(npy.header("Content-Type"), "application/octet-stream")
                let result = try NPY.decode(npy.body)
                XCTAssertEqual(result.shape, [pair.frames, 256, 256])
                XCTAssertEqual(result.elementTypeName, "float32")
                XCTAssertGreaterThan(result.floats().max() ?? 0, 50, "result.npy is in the measurement's 0-255 scale")
                results.append(npy.body)
            }
            XCTAssertEqual(results[0], results[1], "\(pair.scene): the .mat and the .npy upload are the same job")
            let matJob = try client.get("/v1/jobs/\(pair.mat)").json
            if pair.scene == "traffic48" {
                XCTAssertTrue(matJob["metrics"] is NSNull, "no ground truth, no metrics")
            } else {
                let metrics = try XCTUnwrap(matJob["metrics"] as? [String: Any], "\(matJob)")
                XCTAssertEqual((metrics["psnr"] as? [Any])?.count, 8)
                XCTAssertGreaterThan(metrics["mean_psnr"] as? Double ?? 0, 15, pair.scene)
                XCTAssertEqual(matJob["ground_truth"] as? Bool, true)
            }

            let zip = try client.get("/v1/jobs/\(pair.mat)/frames.zip")
            XCTAssertEqual(zip.status, 200)
            XCTAssertEqual(zip.header("Content-Type"), "application/zip")
            let archive = try ZipArchive(zip.body)
            XCTAssertEqual(archive.entries.map(\.name), (0 ..< pair.frames).map { FrameEncoding.frameName($0) })
            XCTAssertTrue(archive.entries.allSatisfy { $0.method == 0 }, "stored, not deflated")
            XCTAssertEqual(try PNG.decode(try archive.data(for: archive.entries[pair.frames - 1])).shape, [256, 256])
        }
        // Frames one by one, 8 and 16 bits.
        let id = pairs[0].mat
        let png8 = try client.get("/v1/jobs/\(id)/frames/7.png")
        XCTAssertEqual(png8.header("Content-Type"), "image/png")
        let decoded8 = try PNG.decode(png8.body)
        XCTAssertEqual(decoded8.shape, [256, 256])
        XCTAssertEqual(decoded8.elementTypeName, "uint8")
        let decoded16 = try PNG.decode(try client.get("/v1/jobs/\(id)/frames/0.png?bits=16").body)
        XCTAssertEqual(decoded16.elementTypeName, "uint16")
        let zip16 = try ZipArchive(try client.get("/v1/jobs/\(id)/frames.zip?bits=16").body)
        XCTAssertEqual(try PNG.decode(try zip16.data(for: zip16.entries[3])).elementTypeName, "uint16")
        assertProblem(try client.get("/v1/jobs/\(id)/frames/8.png"), 404, "not-found")
    }

    /// A full default GAP-TV run reports exactly what the in-process pipeline computes, and its
    /// result.npy is byte-identical to the one `reconstruct` writes.
    func testDefaultGAPTVMatchesInProcessPipeline() throws {
        let mat = try Scenes.mat("drop8")
        let (_, client) = try startService(testConfig())
        let id = try submit(client, Multipart([("measurement", mat)], options: "{\"snapshots\": 1}"))

        let input = try ReconstructionInput(measurement: try ArrayFile.decode(mat), mask: nil, groundTruth: nil, snapshotLimit: 1)
        let video = try GAPTV().reconstruct(input.snapshots, mask: input.mask, context: ReconstructionContext())
        let scores = try Metrics.score(reference: try XCTUnwrap(input.groundTruth), estimate: video)

        let done = try wait(client, id, timeout: 120)
        XCTAssertEqual(done["state"] as? String, "succeeded", "\(done)")
        let options = try XCTUnwrap(done["options"] as? [String: Any])
        XCTAssertEqual(options["iterations"] as? Int, 40)
        XCTAssertEqual(options["tv_weight"] as? Double, 0.3)
        XCTAssertEqual(options["tv_iterations"] as? Int, 5)
        // Compared as the JSON text (shortest round-trip decimals): equal text means equal doubles.
        let text = try client.get("/v1/jobs/\(id)").text
        func list(_ values: [Double]) -> String { "[" + values.map { "\($0)" }.joined(separator: ",") + "]" }
        for expected in ["\"mean_psnr\":\(scores.meanPSNR)", "\"mean_ssim\":\(scores.meanSSIM)",
                         "\"psnr\":\(list(scores.psnr))", "\"ssim\":\(list(scores.ssim))"] {
            XCTAssertTrue(text.contains(expected), "\(expected) not in \(text)")
        }
        XCTAssertGreaterThan(scores.meanPSNR, 30)
        let npy = try client.get("/v1/jobs/\(id)/result.npy").body
        XCTAssertEqual(npy, FrameEncoding.npy(video, whiteLevel: input.whiteLevel))
        let png = try client.get("/v1/jobs/\(id)/frames/3.png").body
        XCTAssertEqual(png, FrameEncoding.png(video, frame: 3))
        let timings = try XCTUnwrap(done["timings"] as? [String: Any])
        XCTAssertNotNil(timings["started"] as? String)
        XCTAssertNotNil(timings["reconstruction_seconds"] as? Double)
    }

    /// RevSCI through the service with a model whose weights exist (the 2-block fixture): the
    /// result equals the PyTorch output; frame-count and odd-size problems are refused up front.
    func testRevSCIJobWithFixtureWeights() throws {
        let fixture = "fixtures/revsci_cacti_nb2/"
        let weights: URL
        do { weights = try SharedData.url(fixture + "revsci_nb2.safetensors") } catch { throw XCTSkip("\(error)") }
        let models = temporaryDirectory("models")
        let config = """
        {"name": "fixture-nb2", "description": "2-block test model", "frames": 8,
         "architecture": {"layout": "twobranch", "num_block": 2, "num_group": 2, "color": false},
         "weights": "\(weights.path)"}
        """
        try Data(config.utf8).write(to: URL(fileURLWithPath: models + "/fixture-nb2.json"))
        try Data(#"{"name": "no-weights", "description": "", "frames": 8, "architecture": {"layout": "twobranch", "num_block": 2, "num_group": 2, "color": false}}"#.utf8)
            .write(to: URL(fileURLWithPath: models + "/no-weights.json"))
        let (_, client) = try startService(testConfig { $0.modelsDir = models })

        let listing = try client.get("/v1/models").json
        let entries = try XCTUnwrap(listing["models"] as? [[String: Any]])
        // pnp-ffdnet's weights are found in the shared data folder of this checkout.
        XCTAssertEqual(entries.map { $0["name"] as? String }, ["gaptv", "pnp-ffdnet", "fixture-nb2", "no-weights"])
        XCTAssertEqual(entries.map { $0["weights_available"] as? Bool }, [true, true, true, false])

        let meas = try SharedData.bytes(fixture + "meas.npy"), mask = try SharedData.bytes(fixture + "mask.npy")
        let video = try SharedData.bytes(fixture + "video.npy")
        let id = try submit(client, Multipart([("measurement", meas), ("mask", mask), ("ground_truth", video)],
                                              options: #"{"model": "fixture-nb2"}"#))
        let done = try wait(client, id)
        XCTAssertEqual(done["state"] as? String, "succeeded", "\(done)")
        XCTAssertEqual(done["algorithm"] as? String, "revsci")
        XCTAssertEqual(done["model"] as? String, "fixture-nb2")
        XCTAssertNotNil((done["metrics"] as? [String: Any])?["mean_psnr"] as? Double)
        let result = try NPY.decode(try client.get("/v1/jobs/\(id)/result.npy").body)
        let expected = try NPY.decode(try SharedData.bytes(fixture + "output.npy"))
        XCTAssertEqual(result.shape, [8, 32, 32])
        let difference = zip(result.floats(), expected.floats()).map { abs($0 - $1) }.max() ?? 1
        XCTAssertLessThan(difference, 1e-3)

        let four = Synthetic.scene(frames: 4, height: 32, width: 32)
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", four.measurementNPY), ("mask", four.maskNPY)],
                                                                  options: #"{"algorithm": "revsci", "model": "fixture-nb2"}"#).finished),
                      422, "invalid-input", contains: "reconstructs 8")
        let odd = Synthetic.scene(frames: 8, height: 31, width: 32)
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", odd.measurementNPY), ("mask", odd.maskNPY)],
                                                                  options: #"{"model": "fixture-nb2"}"#).finished),
                      422, "invalid-input", contains: "even")
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", meas), ("mask", mask)],
                                                                  options: #"{"model": "no-weights"}"#).finished),
                      422, "model-unavailable", contains: "no weights")
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", meas), ("mask", mask)],
                                                                  options: #"{"model": "nonexistent"}"#).finished),
                      422, "model-unavailable")
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", meas), ("mask", mask)],
                                                                  options: #"{"model": "fixture-nb2", "iterations": 3}"#).finished),
                      422, "invalid-options")
    }
}
