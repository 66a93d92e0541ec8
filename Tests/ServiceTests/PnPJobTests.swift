import Foundation
import Formats
@testable import Service
import TestSupport
import XCTest

/// PnP-FFDNet jobs through the real server: options checked at submission, progress, PSNR.
final class PnPJobTests: ServiceTestCase {
    func weightsPath() throws -> String {
        do { return try SharedData.url("data/weights/ffdnet/net_gray.pth").path } catch { throw XCTSkip("\(error)") }
    }

    func testPnPFFDNetJobRunsWithPSNR() throws {
        let weights = try weightsPath()
        let (_, client) = try startService(testConfig { $0.modelWeights = ["ffdnet": weights] })
        let models = try client.get("/v1/models").json["models"] as? [[String: Any]] ?? []
        let pnp = try XCTUnwrap(models.first { $0["name"] as? String == "pnp-ffdnet" })
        XCTAssertEqual(pnp["weights_available"] as? Bool, true)

        let scene = Synthetic.scene(frames: 4, height: 32, width: 48, seed: 5)
        let parts: [(String, [UInt8])] = [("measurement", scene.measurementNPY), ("mask", scene.maskNPY), ("ground_truth", scene.truthNPY)]
        let pnpID = try submit(client, Multipart(parts, options: #"{"algorithm": "pnp-ffdnet", "sigma_iterations": 3, "warm_iterations": 20}"#))
        let tvID = try submit(client, Multipart(parts, options: #"{"algorithm": "gaptv", "iterations": 20}"#))
        let done = try wait(client, pnpID, timeout: 120)
        XCTAssertEqual(done["state"] as? String, "succeeded", "\(done)")
        let options = try XCTUnwrap(done["options"] as? [String: Any])
        XCTAssertEqual(options["schedule"] as? String, "warm")
        XCTAssertEqual(options["sigmas"] as? [Double], [25, 12, 6])
        XCTAssertEqual(options["warm_iterations"] as? Int, 20)
        // On this smooth toy scene TV is hard to beat (the benchmark table in the README holds the
        // real comparison): the job must reconstruct it well, within a few dB of GAP-TV.
        let pnpPSNR = try XCTUnwrap((done["metrics"] as? [String: Any])?["mean_psnr"] as? Double)
        let tvPSNR = try XCTUnwrap((try wait(client, tvID)["metrics"] as? [String: Any])?["mean_psnr"] as? Double)
        XCTAssertGreaterThan(pnpPSNR, 30, "PnP-FFDNet \(pnpPSNR) dB")
        XCTAssertGreaterThan(pnpPSNR, tvPSNR - 3, "PnP-FFDNet \(pnpPSNR) dB vs GAP-TV \(tvPSNR) dB")
        XCTAssertEqual(try client.get("/v1/jobs/\(pnpID)/frames/0.png").status, 200)

        // Options that do not fit are refused before the 202.
        func post(_ options: String) throws -> WireResponse {
            try client.post("/v1/jobs", form: Multipart(parts, options: options).finished)
        }
        assertProblem(try post(#"{"algorithm": "pnp-ffdnet", "schedule": "fast"}"#), 422, "invalid-options", contains: "schedule")
        assertProblem(try post(#"{"algorithm": "pnp-ffdnet", "sigmas": [25, 300]}"#), 422, "invalid-options", contains: "sigmas")
        assertProblem(try post(#"{"algorithm": "pnp-ffdnet", "sigmas": "25"}"#), 422, "invalid-options", contains: "sigmas")
        assertProblem(try post(#"{"algorithm": "pnp-ffdnet", "iterations": 5}"#), 422, "invalid-options", contains: "warm_iterations")
        assertProblem(try post(#"{"algorithm": "gaptv", "schedule": "warm"}"#), 422, "invalid-options", contains: "PnP-FFDNet")
        let odd = Synthetic.scene(frames: 4, height: 31, width: 48, seed: 5)
        assertProblem(try client.post("/v1/jobs", form: Multipart([("measurement", odd.measurementNPY), ("mask", odd.maskNPY)],
                                                                  options: #"{"algorithm": "pnp-ffdnet"}"#).finished),
                      422, "invalid-input", contains: "even")
    }

    func testWithoutWeightsPnPIsRefusedClearly() throws {
        let (_, client) = try startService(testConfig { $0.modelWeights = ["ffdnet": "/nonexistent/net_gray.pth"] })
        let scene = Synthetic.scene()
        let response = try client.post("/v1/jobs", form: Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)],
                                                                   options: #"{"algorithm": "pnp-ffdnet"}"#).finished)
        assertProblem(response, 422, "model-unavailable", contains: "model_weights.ffdnet")
    }
}
