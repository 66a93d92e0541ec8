import Foundation
@testable import Service
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Jobs survive crashes, kill -9 and graceful restarts; nothing accepted is lost.
final class RestartTests: ServiceTestCase {
    /// A job that takes a couple of seconds: long enough to be caught running.
    static let mediumScene = Synthetic.scene(frames: 8, height: 128, width: 128, seed: 3)
    static let mediumOptions = #"{"iterations": 3000}"#

    func testCrashWithJobsRunningAndQueuedThenRestart() throws {
        let config = testConfig()
        let (first, client) = try startService(config)
        let medium = Self.mediumScene, small = Synthetic.scene()
        let running = try submit(client, Multipart([("measurement", medium.measurementNPY), ("mask", medium.maskNPY)], options: Self.mediumOptions))
        try waitForRunning(client, running)
        let queued = try (0 ..< 2).map { _ in
            try submit(client, Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY), ("ground_truth", small.truthNPY)],
                                         options: #"{"iterations": 4}"#))
        }
        // The opened service holds the data directory.
        XCTAssertThrowsError(try ReconstructionService(config: config, log: .silent)) {
            XCTAssertTrue("\($0)".contains("in use"), "\($0)")
        }
        first.simulateCrash()
        XCTAssertEqual(try diskState(config, running), "running")
        XCTAssertEqual(try queued.map { try diskState(config, $0) }, ["queued", "queued"])

        let (_, again) = try startService(config)
        for id in [running] + queued {
            let done = try wait(again, id, timeout: 90)
            XCTAssertEqual(done["state"] as? String, "succeeded", "\(done)")
        }
        XCTAssertEqual(try again.get("/v1/jobs/\(running)").json["attempts"] as? Int, 2)
        XCTAssertEqual(try again.get("/v1/jobs/\(queued[0])").json["attempts"] as? Int, 1)
        XCTAssertNotNil((try again.get("/v1/jobs/\(queued[1])").json["metrics"] as? [String: Any])?["mean_psnr"])
        XCTAssertEqual(try again.get("/v1/jobs/\(running)/frames.zip").status, 200)
    }

    func testJobInterruptedTooOftenFails() throws {
        let config = testConfig { $0.maxAttempts = 1 }
        let (first, client) = try startService(config)
        let medium = Self.mediumScene
        let id = try submit(client, Multipart([("measurement", medium.measurementNPY), ("mask", medium.maskNPY)], options: Self.mediumOptions))
        try waitForRunning(client, id)
        first.simulateCrash()
        let (_, again) = try startService(config)
        let job = try again.get("/v1/jobs/\(id)").json
        XCTAssertEqual(job["state"] as? String, "failed")
        XCTAssertTrue(((job["error"] as? [String: Any])?["detail"] as? String ?? "").contains("max_attempts"), "\(job)")
    }

    func testGracefulShutdownKeepsUnfinishedJobsQueued() throws {
        let config = testConfig()
        let (first, client) = try startService(config)
        let long = JobLifecycleTests.longScene, small = Synthetic.scene()
        let running = try submit(client, Multipart([("measurement", long.measurementNPY), ("mask", long.maskNPY)], options: #"{"iterations": 10000}"#))
        try waitForRunning(client, running)
        let queued = try submit(client, Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY)], options: #"{"iterations": 3}"#))
        let started = Date()
        first.shutdown(grace: 0.3)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertEqual(try diskState(config, running), "queued")
        XCTAssertEqual(try diskState(config, queued), "queued")

        let (_, again) = try startService(config)
        try waitForRunning(again, running)
        XCTAssertEqual(try again.delete("/v1/jobs/\(running)").status, 202)
        XCTAssertEqual(try wait(again, running)["state"] as? String, "cancelled")
        XCTAssertEqual(try wait(again, queued)["state"] as? String, "succeeded")
    }

    /// The real binary: kill -9 with a job running and two queued, restart, everything
    /// completes; then SIGTERM stops it gracefully (exit 0).
    func testKillNineAndSIGTERMWithTheServeBinary() throws {
        // The binary built with this test bundle (same folder), else the package's debug build.
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("revsci").path
        let candidates = [besideTests, SharedData.packageRoot.appendingPathComponent(".build/debug/revsci").path]
        guard let binary = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("the revsci binary is missing (looked at \(candidates.joined(separator: ", "))): build it first, e.g. swift build --build-tests")
        }
        let data = temporaryDirectory("kill")
        let configPath = temporaryDirectory("cfg") + "/server.json"
        let models = SharedData.packageRoot.appendingPathComponent("configs/models").path
        try Data(#"{"port": 0, "data_dir": "\#(data)", "access_log": false, "models_dir": "\#(models)", "shutdown_grace_seconds": 0.5}"#.utf8)
            .write(to: URL(fileURLWithPath: configPath))

        let first = try ServeProcess(binary: binary, config: configPath)
        defer { first.kill() }
        var client = WireClient(port: try first.port())
        let medium = Self.mediumScene, small = Synthetic.scene()
        let running = try submit(client, Multipart([("measurement", medium.measurementNPY), ("mask", medium.maskNPY)], options: Self.mediumOptions))
        try waitForRunning(client, running)
        let queued = try (0 ..< 2).map { _ in
            try submit(client, Multipart([("measurement", small.measurementNPY), ("mask", small.maskNPY)], options: #"{"iterations": 4}"#))
        }
        first.kill()
        XCTAssertEqual(first.process.terminationReason, .uncaughtSignal)
        let disk = ServiceConfig.parseForTest(dataDir: data)
        XCTAssertEqual(try diskState(disk, running), "running")

        let second = try ServeProcess(binary: binary, config: configPath)
        defer { second.kill() }
        client = WireClient(port: try second.port())
        XCTAssertTrue(second.log.contains("recovered 3 unfinished job(s)"), second.log)
        for id in [running] + queued {
            XCTAssertEqual(try wait(client, id, timeout: 90)["state"] as? String, "succeeded")
        }
        XCTAssertEqual(try client.get("/v1/jobs/\(running)").json["attempts"] as? Int, 2)

        // SIGTERM: graceful, exit status 0, a running job goes back to queued.
        let long = JobLifecycleTests.longScene
        let interrupted = try submit(client, Multipart([("measurement", long.measurementNPY), ("mask", long.maskNPY)], options: #"{"iterations": 10000}"#))
        try waitForRunning(client, interrupted)
        Glibc.kill(second.process.processIdentifier, SIGTERM)
        second.process.waitUntilExit()
        XCTAssertEqual(second.process.terminationReason, .exit)
        XCTAssertEqual(second.process.terminationStatus, 0)
        XCTAssertTrue(second.log.contains("kept queued for the next start"), second.log)
        XCTAssertEqual(try diskState(disk, interrupted), "queued")
    }

    // MARK: - Helpers

    /// The state written in the job's job.json.
    func diskState(_ config: ServiceConfig, _ id: String) throws -> String? {
        let data = try Data(contentsOf: URL(fileURLWithPath: config.dataDir + "/jobs/\(id)/job.json"))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["state"] as? String
    }

    func waitForRunning(_ client: WireClient, _ id: String) throws {
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline {
            let job = try client.get("/v1/jobs/\(id)").json
            if job["state"] as? String == "running", (job["progress"] as? Double ?? 0) > 0 { return }
            XCTAssertNotEqual(job["state"] as? String, "succeeded", "the job finished before the test could interrupt it")
            usleep(10_000)
        }
        XCTFail("job \(id) did not start running")
    }
}

extension ServiceConfig {
    static func parseForTest(dataDir: String) -> ServiceConfig {
        var config = ServiceConfig()
        config.dataDir = dataDir
        return config
    }
}

/// `revsci serve` as a child process; its standard error is collected.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var collected = ""

    init(binary: String, config: String) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--config", config]
        process.currentDirectoryURL = SharedData.packageRoot
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.collected += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var log: String { lock.withLock { collected } }

    /// The port from the "listening on" line.
    func port(timeout: Double = 30) throws -> Int {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let range = log.range(of: #"listening on http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression),
               let port = Int(log[range].split(separator: ":").last ?? "") {
                return port
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        throw NSError(domain: "ServeProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "revsci serve did not start: \(log)"])
    }

    /// SIGKILL, then wait for the exit.
    func kill() {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }
}
