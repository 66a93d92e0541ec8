import Foundation
import HTTP

/// Routes for operators and tooling: /, /healthz, /readyz, /metrics, /openapi.yaml, /v1/models.
struct SystemRoutes: Sendable {
    let service: ReconstructionService

    /// GET /: where things are.
    func index() -> HTTPResponse {
        .json(raw: JSONValue.object([
            ("service", "revsci"),
            ("description", "Video snapshot compressive imaging reconstruction (GAP-TV, RevSCI-net)"),
            ("links", .object([
                ("openapi", "/openapi.yaml"), ("jobs", "/v1/jobs"), ("masks", "/v1/masks"), ("models", "/v1/models"),
                ("health", "/healthz"), ("ready", "/readyz"), ("metrics", "/metrics"),
            ])),
        ]).bytes)
    }

    /// GET /healthz: the process is alive and answering.
    func health() -> HTTPResponse {
        .json(raw: JSONValue.object([("status", "ok")]).bytes)
    }

    /// GET /readyz: 200 when the store is writable, every worker thread is alive and the server
    /// is not shutting down; 503 (problem document with the checks) otherwise.
    func readiness() -> HTTPResponse {
        let writable = service.store.isWritable()
        let workers = service.pool.workerCounts
        let accepting = service.isAccepting
        let checks: JSONValue = .object([
            ("store_writable", .bool(writable)), ("workers_alive", .int(workers.alive)),
            ("workers_expected", .int(workers.expected)), ("accepting_jobs", .bool(accepting)),
            ("queue_depth", .int(service.pool.queueDepth)), ("queue_capacity", .int(service.config.maxQueue)),
        ])
        guard writable, workers.alive == workers.expected, workers.expected > 0, accepting else {
            var reasons: [String] = []
            if !writable { reasons.append("the data directory \(service.config.dataDir) is not writable") }
            if workers.alive != workers.expected || workers.expected == 0 {
                reasons.append("\(workers.alive) of \(workers.expected) workers are running")
            }
            if !accepting { reasons.append("the server is shutting down") }
            return ProblemDocument(.serviceUnavailable, kind: .notReady, detail: "Not ready: " + reasons.joined(separator: "; ") + ".",
                                   extensions: [("checks", checks)]).response(instance: "/readyz")
        }
        return .json(raw: JSONValue.object([("status", "ready"), ("checks", checks)]).bytes)
    }

    /// GET /metrics: Prometheus text exposition.
    func metricsText() -> HTTPResponse {
        let jobs = service.store.all()
        var byState: [JobState: Int] = [:]
        for job in jobs { byState[job.state, default: 0] += 1 }
        let workers = service.pool.workerCounts
        let gauges: [MetricsRegistry.Gauge] = [
            .init(name: "revsci_jobs", help: "Jobs in the store, by state.",
                  samples: JobState.allCases.map { (labels: [("state", $0.rawValue)], value: Double(byState[$0] ?? 0)) }),
            .init(name: "revsci_queue_depth", help: "Jobs waiting for a worker.",
                  samples: [(labels: [], value: Double(service.pool.queueDepth))]),
            .init(name: "revsci_queue_capacity", help: "Queued jobs beyond which submissions are refused.",
                  samples: [(labels: [], value: Double(service.config.maxQueue))]),
            .init(name: "revsci_jobs_running", help: "Jobs being reconstructed now.",
                  samples: [(labels: [], value: Double(service.pool.runningCount))]),
            .init(name: "revsci_workers", help: "Worker threads alive.",
                  samples: [(labels: [], value: Double(workers.alive))]),
            .init(name: "revsci_store_bytes", help: "Disk space used by the data directory, by kind.",
                  samples: [(labels: [("kind", "jobs")], value: Double(service.store.totalBytes)),
                            (labels: [("kind", "masks")], value: Double(service.masks.totalBytes))]),
            .init(name: "revsci_store_quota_bytes", help: "Disk quota of the data directory (0: none).",
                  samples: [(labels: [], value: Double(Int64(service.config.quotaMiB) << 20))]),
            .init(name: "revsci_masks", help: "Masks in the mask store.",
                  samples: [(labels: [], value: Double(service.masks.all().count))]),
        ]
        return HTTPResponse(status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                            body: Array(service.metrics.render(gauges: gauges).utf8))
    }

    /// GET /openapi.yaml: the API contract.
    func openAPI() -> HTTPResponse {
        HTTPResponse(status: .ok, headers: ["Content-Type": "application/yaml; charset=utf-8"],
                     body: Array((OpenAPISpec.yaml + "\n").utf8))
    }

    /// GET /v1/models.
    func models() -> HTTPResponse {
        .json(raw: service.models.listing(config: service.config).bytes)
    }
}
