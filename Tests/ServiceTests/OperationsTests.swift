import Foundation
import Formats
@testable import Service
import TestSupport
import XCTest

/// Auth, TLS, health, readiness, metrics, the served contract, models.
final class OperationsTests: ServiceTestCase {
    func testBearerAuthGuardsV1Only() throws {
        let (_, open) = try startService(testConfig { $0.auth = .init(enabled: true, tokens: ["s3cret-token", "second.token"]) })
        // Without a token: 401 on every /v1 route (unknown ones too), with a challenge.
        for (method, target) in [("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/models"), ("GET", "/v1/masks"),
                                 ("DELETE", "/v1/jobs/00000000000000000000000000000000"), ("GET", "/v1/whatever")] {
            let response = try open.request(method, target)
            assertProblem(response, 401, "unauthorized")
            XCTAssertEqual(response.header("WWW-Authenticate"), "Bearer realm=\"revsci\"", target)
        }
        var wrong = open
        wrong.token = "s3cret-tokeN"
        let refused = try wrong.get("/v1/jobs")
        assertProblem(refused, 401, "unauthorized")
        XCTAssertEqual(refused.header("WWW-Authenticate"), "Bearer realm=\"revsci\", error=\"invalid_token\"")
        assertProblem(try open.request("GET", "/v1/jobs", headers: [("Authorization", "Basic czNjcmV0LXRva2Vu")]), 401, "unauthorized")
        // The operational routes stay open.
        for target in ["/healthz", "/readyz", "/metrics", "/openapi.yaml", "/"] {
            XCTAssertEqual(try open.get(target).status, 200, target)
        }
        // With either token: served.
        for token in ["s3cret-token", "second.token"] {
            var client = open
            client.token = token
            XCTAssertEqual(try client.get("/v1/jobs").status, 200)
            let scene = Synthetic.scene()
            let id = try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)], options: #"{"iterations": 2}"#))
            XCTAssertEqual(try wait(client, id)["state"] as? String, "succeeded")
            assertProblem(try open.get("/v1/jobs/\(id)/result.npy"), 401, "unauthorized")
        }
        // And with auth off the same requests need nothing.
        let (_, plain) = try startService(testConfig())
        XCTAssertEqual(try plain.get("/v1/jobs").status, 200)
        XCTAssertEqual(try plain.get("/v1/models").status, 200)
    }

    func testTLSRoundTripWithSelfSignedCertificate() throws {
        guard let openssl = tool("openssl"), let curl = tool("curl") else {
            throw XCTSkip("openssl and curl are needed for the TLS round trip")
        }
        let directory = temporaryDirectory("tls")
        let key = directory + "/key.pem", certificate = directory + "/cert.pem"
        let made = try run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                                     "-days", "1", "-subj", "/CN=localhost"])
        XCTAssertEqual(made.status, 0)
        let (service, _) = try startService(testConfig { $0.tls = .init(enabled: true, certificate: certificate, privateKey: key) })
        let base = "https://127.0.0.1:\(service.port)"
        let scene = Synthetic.scene()
        let meas = directory + "/meas.npy", mask = directory + "/mask.npy"
        try Data(scene.measurementNPY).write(to: URL(fileURLWithPath: meas))
        try Data(scene.maskNPY).write(to: URL(fileURLWithPath: mask))
        let posted = try run(curl, ["-k", "-s", "--max-time", "20", "-F", "measurement=@\(meas)", "-F", "mask=@\(mask)",
                                    "-F", "options={\"iterations\": 3}", "\(base)/v1/jobs"])
        XCTAssertEqual(posted.status, 0)
        let job = (try? JSONSerialization.jsonObject(with: Data(posted.output.utf8))) as? [String: Any] ?? [:]
        let id = try XCTUnwrap(job["id"] as? String, posted.output)
        var state = ""
        let deadline = Date(timeIntervalSinceNow: 30)
        while state != "succeeded" && Date() < deadline {
            let polled = try run(curl, ["-k", "-s", "--max-time", "10", "\(base)/v1/jobs/\(id)"])
            state = ((try? JSONSerialization.jsonObject(with: Data(polled.output.utf8))) as? [String: Any])?["state"] as? String ?? ""
            usleep(50_000)
        }
        XCTAssertEqual(state, "succeeded")
        let zip = directory + "/frames.zip"
        XCTAssertEqual(try run(curl, ["-k", "-s", "--max-time", "10", "-o", zip, "-w", "%{http_code}", "\(base)/v1/jobs/\(id)/frames.zip"]).output, "200")
        XCTAssertEqual(try ZipArchive([UInt8](Data(contentsOf: URL(fileURLWithPath: zip)))).entries.map(\.name), (0 ..< 4).map { String(format: "frame_%04d.png", $0) })
        // Plain HTTP against the TLS port fails the handshake without hurting the server.
        let plain = try TestSocket(port: service.port)
        plain.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        _ = plain.readAll(timeout: 5)
        XCTAssertEqual(try run(curl, ["-k", "-s", "--max-time", "10", "\(base)/healthz"]).output, #"{"status":"ok"}"#)
    }

    func testHealthReadinessMetricsAndContract() throws {
        let (service, client) = try startService(testConfig())
        let health = try client.get("/healthz")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json["status"] as? String, "ok")
        let ready = try client.get("/readyz")
        XCTAssertEqual(ready.status, 200, ready.text)
        XCTAssertEqual((ready.json["checks"] as? [String: Any])?["workers_alive"] as? Int, 1)
        let head = try client.request("HEAD", "/healthz")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body.count, 0)

        let scene = Synthetic.scene()
        let id = try submit(client, Multipart([("measurement", scene.measurementNPY), ("mask", scene.maskNPY)], options: #"{"iterations": 2}"#))
        try wait(client, id)
        _ = try client.get("/v1/jobs/\(id)")
        _ = try client.get("/v1/jobs/nonsense")
        let metrics = try client.get("/metrics")
        XCTAssertEqual(metrics.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        let text = metrics.text
        for expected in [
            #"revsci_http_requests_total{route="/v1/jobs",method="POST",status="202"} 1"#,
            #"revsci_http_requests_total{route="/v1/jobs/{id}",method="GET",status="404"} 1"#,
            #"revsci_jobs{state="succeeded"} 1"#, "revsci_queue_depth 0", "revsci_jobs_submitted_total 1",
            #"revsci_reconstruction_seconds_count{algorithm="gaptv"} 1"#, #"revsci_reconstruction_seconds_bucket{algorithm="gaptv",le="+Inf"} 1"#,
            "# TYPE revsci_reconstruction_seconds histogram", "revsci_workers 1", #"revsci_store_bytes{kind="jobs"}"#,
        ] {
            XCTAssertTrue(text.contains(expected), "missing \(expected) in\n\(text)")
        }
        // Every sample line is `name{labels} value`.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            XCTAssertNotNil(line.range(of: #"^[a-z_]+(\{.*\})? [-+0-9.eInfNa]+$"#, options: .regularExpression), String(line))
        }

        // The served contract is the repository's openapi.yaml.
        let spec = try client.get("/openapi.yaml")
        XCTAssertEqual(spec.header("Content-Type"), "application/yaml; charset=utf-8")
        let file = try String(contentsOf: SharedData.packageRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        XCTAssertEqual(spec.text, file, "run scripts/embed-openapi.sh after editing openapi.yaml")
        for path in ["/v1/jobs:", "/v1/jobs/{id}:", "/v1/jobs/{id}/frames/{k}.png:", "/v1/jobs/{id}/frames.zip:",
                     "/v1/jobs/{id}/result.npy:", "/v1/masks:", "/v1/masks/{id}:", "/v1/models:", "/healthz:", "/readyz:", "/metrics:"] {
            XCTAssertTrue(file.contains("\n  \(path)\n"), path)
        }

        let models = try client.get("/v1/models").json
        let names = (models["models"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        XCTAssertEqual(names, ["gaptv", "pnp-ffdnet", "revsci-cacti50", "revsci-color", "revsci-default", "revsci-paper"])
        XCTAssertEqual(models["default_algorithm"] as? String, "gaptv")
        let paper = (models["models"] as? [[String: Any]])?.first { $0["name"] as? String == "revsci-paper" }
        XCTAssertEqual(paper?["frames"] as? Int, 8)
        XCTAssertEqual((paper?["architecture"] as? [String: Any])?["layout"] as? String, "multigroup")

        // Shutting down: not ready, no new jobs.
        service.shutdown(grace: 0)
        XCTAssertThrowsError(try client.get("/healthz"))
    }

    private func tool(_ name: String) -> String? {
        ["/usr/bin/\(name)", "/usr/local/bin/\(name)", "/bin/\(name)"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
