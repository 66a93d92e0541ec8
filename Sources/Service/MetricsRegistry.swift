import Foundation

/// Counters and histograms the service keeps, rendered in the Prometheus text exposition
/// format (version 0.0.4). Gauges that describe current state (jobs by state, queue depth,
/// disk use) are read from their owners at render time and passed in.
public final class MetricsRegistry: @unchecked Sendable {
    /// A cumulative histogram with fixed upper bounds.
    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = [Int](repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            count += 1
        }
    }

    /// A gauge sample supplied at render time.
    public struct Gauge {
        public var name: String
        public var help: String
        public var samples: [(labels: [(String, String)], value: Double)]
        public init(name: String, help: String, samples: [(labels: [(String, String)], value: Double)]) {
            self.name = name
            self.help = help
            self.samples = samples
        }
    }

    private struct RequestKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    static let requestBounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    static let reconstructionBounds = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]

    private let lock = NSLock()
    private var requests: [RequestKey: Int] = [:]
    private var requestDurations: [String: Histogram] = [:]
    private var reconstructions: [String: Histogram] = [:]
    private var submitted = 0
    private var finished: [String: Int] = [:]
    private let started = Date()

    public init() {}

    /// Counts one answered request; `route` is the route template (`/v1/jobs/{id}`), never the raw path.
    public func recordRequest(route: String, method: String, status: Int, seconds: Double) {
        lock.withLock {
            requests[RequestKey(route: route, method: method, status: status), default: 0] += 1
            requestDurations[route, default: Histogram(bounds: Self.requestBounds)].observe(seconds)
        }
    }

    /// Counts an accepted job.
    public func recordSubmission() { lock.withLock { submitted += 1 } }

    /// Counts a job reaching a final state, with its reconstruction time when it ran to the end.
    public func recordFinished(state: JobState, algorithm: String, seconds: Double?) {
        lock.withLock {
            finished[state.rawValue, default: 0] += 1
            if let seconds {
                reconstructions[algorithm, default: Histogram(bounds: Self.reconstructionBounds)].observe(seconds)
            }
        }
    }

    /// The exposition text.
    public func render(gauges: [Gauge]) -> String {
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func labels(_ pairs: [(String, String)]) -> String {
            pairs.isEmpty ? "" : "{" + pairs.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        func histogram(_ name: String, _ label: String, _ values: [(String, Histogram)]) {
            for (key, h) in values {
                for (bound, count) in zip(h.bounds, h.counts) {
                    out += "\(name)_bucket\(labels([(label, key), ("le", Self.number(bound))])) \(count)\n"
                }
                out += "\(name)_bucket\(labels([(label, key), ("le", "+Inf")])) \(h.count)\n"
                out += "\(name)_sum\(labels([(label, key)])) \(Self.number(h.sum))\n"
                out += "\(name)_count\(labels([(label, key)])) \(h.count)\n"
            }
        }
        lock.lock()
        let requests = self.requests, durations = self.requestDurations, reconstructions = self.reconstructions
        let submitted = self.submitted, finished = self.finished
        lock.unlock()

        header("revsci_http_requests_total", "counter", "HTTP requests answered by the service, by route template, method and status.")
        for (key, count) in requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "revsci_http_requests_total\(labels([("route", key.route), ("method", key.method), ("status", String(key.status))])) \(count)\n"
        }
        header("revsci_http_request_duration_seconds", "histogram", "Time to produce a response, by route template.")
        histogram("revsci_http_request_duration_seconds", "route", durations.sorted { $0.key < $1.key })
        header("revsci_jobs_submitted_total", "counter", "Jobs accepted (202) since the server started.")
        out += "revsci_jobs_submitted_total \(submitted)\n"
        header("revsci_jobs_finished_total", "counter", "Jobs that reached a final state since the server started.")
        for state in [JobState.succeeded, .failed, .cancelled] {
            out += "revsci_jobs_finished_total\(labels([("state", state.rawValue)])) \(finished[state.rawValue] ?? 0)\n"
        }
        header("revsci_reconstruction_seconds", "histogram", "Time spent reconstructing a job (jobs that ran to the end), by algorithm.")
        var algorithms = reconstructions
        for name in ["gaptv", "revsci"] where algorithms[name] == nil { algorithms[name] = Histogram(bounds: Self.reconstructionBounds) }
        histogram("revsci_reconstruction_seconds", "algorithm", algorithms.sorted { $0.key < $1.key })
        for gauge in gauges {
            header(gauge.name, "gauge", gauge.help)
            for sample in gauge.samples { out += "\(gauge.name)\(labels(sample.labels)) \(Self.number(sample.value))\n" }
        }
        header("revsci_uptime_seconds", "gauge", "Seconds since the service started.")
        out += "revsci_uptime_seconds \(Self.number(Date().timeIntervalSince(started)))\n"
        return out
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
