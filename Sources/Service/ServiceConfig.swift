import Foundation
import HTTP

/// Everything `revsci serve` can be told, as read from a JSON file (configs/server.json holds
/// the defaults below). Keys are snake_case; a key left out keeps its default; an unknown key
/// is an error, so a typo never goes unnoticed. Relative paths are resolved against the
/// current directory.
public struct ServiceConfig: Sendable, Equatable {
    /// Bearer-token authentication of the /v1 routes.
    public struct Auth: Sendable, Equatable {
        /// When on, every /v1 request needs `Authorization: Bearer <token>`.
        public var enabled = false
        /// Accepted tokens (RFC 6750 b64token characters).
        public var tokens: [String] = []
        /// A file with one accepted token per line (blank lines and `#` comments ignored),
        /// read at start; keeps secrets out of the config file.
        public var tokensFile: String?
        public init(enabled: Bool = false, tokens: [String] = [], tokensFile: String? = nil) {
            self.enabled = enabled
            self.tokens = tokens
            self.tokensFile = tokensFile
        }
    }

    /// HTTPS.
    public struct TLS: Sendable, Equatable {
        public var enabled = false
        /// PEM certificate chain, leaf first.
        public var certificate: String?
        /// PEM private key of the leaf, unencrypted.
        public var privateKey: String?
        public init(enabled: Bool = false, certificate: String? = nil, privateKey: String? = nil) {
            self.enabled = enabled
            self.certificate = certificate
            self.privateKey = privateKey
        }
    }

    /// Default GAP-TV parameters (jobs may override each one in their options).
    public struct GAPTVDefaults: Sendable, Equatable {
        public var iterations = 40
        public var tvWeight = 0.3
        public var tvIterations = 5
        public init(iterations: Int = 40, tvWeight: Double = 0.3, tvIterations: Int = 5) {
            self.iterations = iterations
            self.tvWeight = tvWeight
            self.tvIterations = tvIterations
        }
    }

    public var host = "127.0.0.1"
    public var port = 8080
    /// Job store and mask store root.
    public var dataDir = "./revsci-data"
    /// Reconstructions run at the same time (each one already uses every core).
    public var workers = 1
    /// Queued jobs (not counting running ones) beyond which submissions are refused.
    public var maxQueue = 64
    /// 503 (default) or 429 when the queue is full.
    public var queueFullStatus = 503
    /// Seconds sent in `Retry-After` with 429/503.
    public var retryAfterSeconds = 30
    /// A job found running at start (the server died under it) is re-queued until it has been
    /// started this many times; then it fails, so one poisonous input cannot crash-loop the server.
    public var maxAttempts = 3
    /// Finished jobs older than this are removed by the janitor; 0 keeps them until the quota
    /// needs the space.
    public var retentionHours = 168.0
    /// Disk space for jobs and masks; the janitor removes the oldest finished jobs beyond it,
    /// and new jobs are refused (503) while unfinished ones alone exceed it. 0: no quota.
    public var quotaMiB = 20480
    /// Seconds between janitor runs (it also runs at start and after each finished job).
    public var janitorIntervalSeconds = 300.0
    /// Largest request body (a job's files together).
    public var maxBodyMiB = 512
    /// Largest reconstruction a job may ask for, in output values (frames x H x W).
    public var maxOutputValues = 1 << 28
    /// Seconds to receive one whole request; slower senders get 408.
    public var readTimeoutSeconds = 300.0
    /// Seconds to receive a request's head (and to finish a TLS handshake); slower get 408.
    public var headTimeoutSeconds = 10.0
    /// Seconds to send one whole response; slower readers are disconnected.
    public var responseTimeoutSeconds = 600.0
    /// Seconds an idle keep-alive connection stays open.
    public var idleTimeoutSeconds = 60.0
    /// Simultaneous connections; beyond it new ones get 503.
    public var maxConnections = 128
    /// Simultaneous connections from one client address; beyond it its new ones get 503.
    public var maxConnectionsPerClient = 32
    /// Request bodies up to this size stay in memory while they arrive; larger ones are written
    /// to the store's tmp/ folder as they arrive.
    public var memoryBodyKiB = 256
    /// Bytes that decoding one request's files may produce (inflated data and decoded arrays
    /// together); a file declaring more is refused (422) before anything is inflated.
    public var maxDecodeMiB = 1024
    /// Requests decoding uploaded files at the same time; others wait their turn (their bodies
    /// are already on disk), so memory stays bounded however many clients upload at once.
    public var maxConcurrentDecodes = 2
    /// On SIGTERM/SIGINT: seconds running jobs get to finish before they are stopped and kept
    /// queued for the next start.
    public var shutdownGraceSeconds = 30.0
    /// One log line per request on standard error.
    public var accessLog = true
    /// Folder of model configs (`<name>.json`).
    public var modelsDir = "configs/models"
    /// Weights per model name, overriding (or supplying) the config's own `weights`.
    public var modelWeights: [String: String] = [:]
    /// Algorithm of jobs whose options name none: "gaptv" or "revsci".
    public var defaultAlgorithm = "gaptv"
    /// Model of revsci jobs whose options name none.
    public var defaultModel = "revsci-default"
    public var gaptv = GAPTVDefaults()
    public var auth = Auth()
    public var tls = TLS()

    public init() {}

    /// The configuration in `path`, on top of the defaults.
    public static func load(path: String) throws -> ServiceConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read the configuration file \(path)")
        }
        return try parse([UInt8](data), source: path)
    }

    /// Parses JSON configuration text (every key optional).
    public static func parse(_ bytes: [UInt8], source: String = "configuration") throws -> ServiceConfig {
        let root: [String: ParsedJSON]
        switch ParsedJSON.parse(bytes) {
        case .failure(let error): throw ConfigError("\(source) is not valid JSON: \(error.message)")
        case .success(.object(let object)): root = object
        case .success: throw ConfigError("\(source) must hold a JSON object")
        }
        var config = ServiceConfig()
        var reader = JSONObjectReader(source: source + ": ", object: root, path: "")
        config.host = try reader.string("host") ?? config.host
        config.port = try reader.int("port") ?? config.port
        config.dataDir = try reader.string("data_dir") ?? config.dataDir
        config.workers = try reader.int("workers") ?? config.workers
        config.maxQueue = try reader.int("max_queue") ?? config.maxQueue
        config.queueFullStatus = try reader.int("queue_full_status") ?? config.queueFullStatus
        config.retryAfterSeconds = try reader.int("retry_after_seconds") ?? config.retryAfterSeconds
        config.maxAttempts = try reader.int("max_attempts") ?? config.maxAttempts
        config.retentionHours = try reader.double("retention_hours") ?? config.retentionHours
        config.quotaMiB = try reader.int("quota_mib") ?? config.quotaMiB
        config.janitorIntervalSeconds = try reader.double("janitor_interval_seconds") ?? config.janitorIntervalSeconds
        config.maxBodyMiB = try reader.int("max_body_mib") ?? config.maxBodyMiB
        config.maxOutputValues = try reader.int("max_output_values") ?? config.maxOutputValues
        config.readTimeoutSeconds = try reader.double("read_timeout_seconds") ?? config.readTimeoutSeconds
        config.headTimeoutSeconds = try reader.double("head_timeout_seconds") ?? config.headTimeoutSeconds
        config.responseTimeoutSeconds = try reader.double("response_timeout_seconds") ?? config.responseTimeoutSeconds
        config.idleTimeoutSeconds = try reader.double("idle_timeout_seconds") ?? config.idleTimeoutSeconds
        config.maxConnections = try reader.int("max_connections") ?? config.maxConnections
        config.maxConnectionsPerClient = try reader.int("max_connections_per_client") ?? config.maxConnectionsPerClient
        config.memoryBodyKiB = try reader.int("memory_body_kib") ?? config.memoryBodyKiB
        config.maxDecodeMiB = try reader.int("max_decode_mib") ?? config.maxDecodeMiB
        config.maxConcurrentDecodes = try reader.int("max_concurrent_decodes") ?? config.maxConcurrentDecodes
        config.shutdownGraceSeconds = try reader.double("shutdown_grace_seconds") ?? config.shutdownGraceSeconds
        config.accessLog = try reader.bool("access_log") ?? config.accessLog
        config.modelsDir = try reader.string("models_dir") ?? config.modelsDir
        config.modelWeights = try reader.stringMap("model_weights") ?? config.modelWeights
        config.defaultAlgorithm = try reader.string("default_algorithm") ?? config.defaultAlgorithm
        config.defaultModel = try reader.string("default_model") ?? config.defaultModel
        if var sub = try reader.object("gaptv") {
            config.gaptv.iterations = try sub.int("iterations") ?? config.gaptv.iterations
            config.gaptv.tvWeight = try sub.double("tv_weight") ?? config.gaptv.tvWeight
            config.gaptv.tvIterations = try sub.int("tv_iterations") ?? config.gaptv.tvIterations
            try sub.finish()
        }
        if var sub = try reader.object("auth") {
            config.auth.enabled = try sub.bool("enabled") ?? config.auth.enabled
            config.auth.tokens = try sub.stringList("tokens") ?? config.auth.tokens
            config.auth.tokensFile = try sub.optionalString("tokens_file") ?? config.auth.tokensFile
            try sub.finish()
        }
        if var sub = try reader.object("tls") {
            config.tls.enabled = try sub.bool("enabled") ?? config.tls.enabled
            config.tls.certificate = try sub.optionalString("certificate") ?? config.tls.certificate
            config.tls.privateKey = try sub.optionalString("private_key") ?? config.tls.privateKey
            try sub.finish()
        }
        try reader.finish()
        try config.validate()
        return config
    }

    /// Throws `ConfigError` for values out of range or inconsistent settings.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ConfigError(message) } }
        try check(!host.isEmpty, "host must not be empty")
        try check((0 ... 65535).contains(port), "port must be 0...65535 (got \(port))")
        try check(!dataDir.isEmpty, "data_dir must not be empty")
        try check((1 ... 64).contains(workers), "workers must be 1...64 (got \(workers))")
        try check(maxQueue >= 1, "max_queue must be at least 1")
        try check(queueFullStatus == 429 || queueFullStatus == 503, "queue_full_status must be 429 or 503")
        try check(retryAfterSeconds >= 0, "retry_after_seconds must not be negative")
        try check(maxAttempts >= 1, "max_attempts must be at least 1")
        try check(retentionHours >= 0 && retentionHours.isFinite, "retention_hours must be 0 (keep) or positive")
        try check(quotaMiB >= 0, "quota_mib must be 0 (no quota) or positive")
        try check(janitorIntervalSeconds > 0 && janitorIntervalSeconds.isFinite, "janitor_interval_seconds must be positive")
        // Below 4 GiB: zlib and CRC-32 take one 32-bit length per call.
        try check(maxBodyMiB >= 1 && maxBodyMiB <= 4095, "max_body_mib must be 1...4095")
        try check(maxOutputValues >= 1 && maxOutputValues <= 1 << 36, "max_output_values must be 1...68719476736")
        try check(readTimeoutSeconds > 0 && idleTimeoutSeconds > 0 && headTimeoutSeconds > 0 && responseTimeoutSeconds > 0
                  && [readTimeoutSeconds, idleTimeoutSeconds, headTimeoutSeconds, responseTimeoutSeconds].allSatisfy(\.isFinite),
                  "timeouts must be positive")
        try check(maxConnections >= 1 && maxConnections <= 65536, "max_connections must be 1...65536")
        try check(maxConnectionsPerClient >= 1, "max_connections_per_client must be at least 1")
        try check(memoryBodyKiB >= 0 && memoryBodyKiB <= 1 << 20, "memory_body_kib must be 0...1048576")
        try check(maxDecodeMiB >= 1 && maxDecodeMiB <= 1 << 20, "max_decode_mib must be 1...1048576")
        try check(maxConcurrentDecodes >= 1 && maxConcurrentDecodes <= 64, "max_concurrent_decodes must be 1...64")
        try check(shutdownGraceSeconds >= 0 && shutdownGraceSeconds.isFinite, "shutdown_grace_seconds must not be negative")
        try check(["gaptv", "revsci"].contains(defaultAlgorithm), "default_algorithm must be gaptv or revsci")
        try check(gaptv.iterations >= 1 && gaptv.tvIterations >= 1 && gaptv.tvWeight > 0,
                  "gaptv.iterations, gaptv.tv_iterations and gaptv.tv_weight must be positive")
        if auth.enabled {
            try check(!(auth.tokens.isEmpty && auth.tokensFile == nil),
                      "auth is enabled but no token is configured: set auth.tokens or auth.tokens_file")
        }
        for token in auth.tokens {
            try check(Self.isValidToken(token), "auth tokens use letters, digits and -._~+/ only (with optional trailing '=')")
        }
        if tls.enabled {
            try check(tls.certificate != nil && tls.privateKey != nil, "tls is enabled: set tls.certificate and tls.private_key")
        }
    }

    /// The accepted tokens: `auth.tokens` plus the lines of `auth.tokens_file`.
    public func resolvedTokens() throws -> [String] {
        var tokens = auth.tokens
        if let file = auth.tokensFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigError("cannot read auth.tokens_file \(file)")
            }
            for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
                let token = line.trimmingCharacters(in: .whitespaces)
                if token.isEmpty || token.hasPrefix("#") { continue }
                guard Self.isValidToken(token) else { throw ConfigError("auth.tokens_file holds a token with characters outside -._~+/ letters and digits") }
                tokens.append(token)
            }
        }
        if auth.enabled && tokens.isEmpty { throw ConfigError("auth is enabled but no token was found") }
        return tokens
    }

    static func isValidToken(_ token: String) -> Bool {
        HTTPAuth.bearerToken(fromAuthorization: "Bearer " + token) == token
    }

    /// The HTTP server settings this configuration implies.
    public var httpConfiguration: HTTPServer.Configuration {
        HTTPServer.Configuration(
            host: host, port: port, maxBodyBytes: maxBodyMiB << 20, readTimeout: readTimeoutSeconds,
            headTimeout: headTimeoutSeconds, idleTimeout: idleTimeoutSeconds, writeTimeout: 60,
            responseTimeout: responseTimeoutSeconds, maxConnections: maxConnections,
            maxConnectionsPerClient: maxConnectionsPerClient,
            bodySpool: BodySpoolPolicy(directory: dataDir + "/tmp", memoryLimit: memoryBodyKiB << 10),
            tls: tls.enabled ? .init(certificatePath: tls.certificate ?? "", privateKeyPath: tls.privateKey ?? "") : nil,
            serverName: "revsci")
    }

    /// The configuration as JSON (tokens masked), for the startup log and configs/server.json.
    public var json: JSONValue {
        .object([
            ("host", .string(host)), ("port", .int(port)), ("data_dir", .string(dataDir)), ("workers", .int(workers)),
            ("max_queue", .int(maxQueue)), ("queue_full_status", .int(queueFullStatus)),
            ("retry_after_seconds", .int(retryAfterSeconds)), ("max_attempts", .int(maxAttempts)),
            ("retention_hours", .double(retentionHours)), ("quota_mib", .int(quotaMiB)),
            ("janitor_interval_seconds", .double(janitorIntervalSeconds)), ("max_body_mib", .int(maxBodyMiB)),
            ("max_output_values", .int(maxOutputValues)), ("read_timeout_seconds", .double(readTimeoutSeconds)),
            ("head_timeout_seconds", .double(headTimeoutSeconds)), ("response_timeout_seconds", .double(responseTimeoutSeconds)),
            ("idle_timeout_seconds", .double(idleTimeoutSeconds)), ("max_connections", .int(maxConnections)),
            ("max_connections_per_client", .int(maxConnectionsPerClient)), ("memory_body_kib", .int(memoryBodyKiB)),
            ("max_decode_mib", .int(maxDecodeMiB)), ("max_concurrent_decodes", .int(maxConcurrentDecodes)),
            ("shutdown_grace_seconds", .double(shutdownGraceSeconds)), ("access_log", .bool(accessLog)),
            ("models_dir", .string(modelsDir)),
            ("model_weights", .object(modelWeights.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("default_algorithm", .string(defaultAlgorithm)), ("default_model", .string(defaultModel)),
            ("gaptv", .object([("iterations", .int(gaptv.iterations)), ("tv_weight", .double(gaptv.tvWeight)),
                               ("tv_iterations", .int(gaptv.tvIterations))])),
            ("auth", .object([("enabled", .bool(auth.enabled)),
                              ("tokens", .array(auth.tokens.map { _ in .string("***") })),
                              ("tokens_file", .string(auth.tokensFile))])),
            ("tls", .object([("enabled", .bool(tls.enabled)), ("certificate", .string(tls.certificate)),
                             ("private_key", .string(tls.privateKey))])),
        ])
    }
}

/// A configuration file that cannot be used; the message names the key and what to change.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Reads typed keys out of a parsed JSON object and remembers which ones were used, so
/// `finish` can reject the rest.
struct JSONObjectReader {
    let source: String
    let object: [String: ParsedJSON]
    let path: String
    var used: Set<String> = []
    /// Builds the error for a key whose value has the wrong type or range.
    var makeError: @Sendable (String) -> any Error = { ConfigError($0) }

    init(source: String, object: [String: ParsedJSON], path: String, makeError: @escaping @Sendable (String) -> any Error = { ConfigError($0) }) {
        self.source = source
        self.object = object
        self.path = path
        self.makeError = makeError
    }

    private mutating func value(_ key: String) -> ParsedJSON? {
        used.insert(key)
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    func fail(_ key: String, _ expected: String) -> any Error {
        makeError("\(source)'\(path)\(key)' must be \(expected)")
    }

    mutating func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw fail(key, "a string") }
        return s
    }

    mutating func optionalString(_ key: String) throws -> String? { try string(key) }

    mutating func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard case .number(let d) = v, d == d.rounded(), abs(d) < 9e15 else { throw fail(key, "an integer") }
        return Int(d)
    }

    mutating func double(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard case .number(let d) = v else { throw fail(key, "a number") }
        return d
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw fail(key, "true or false") }
        return b
    }

    mutating func doubleList(_ key: String) throws -> [Double]? {
        guard let v = value(key) else { return nil }
        guard case .array(let items) = v else { throw fail(key, "a list of numbers") }
        return try items.map { item in
            guard case .number(let d) = item else { throw fail(key, "a list of numbers") }
            return d
        }
    }

    mutating func stringList(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard case .array(let items) = v else { throw fail(key, "a list of strings") }
        return try items.map { item in
            guard case .string(let s) = item else { throw fail(key, "a list of strings") }
            return s
        }
    }

    mutating func stringMap(_ key: String) throws -> [String: String]? {
        guard let v = value(key) else { return nil }
        guard case .object(let map) = v else { throw fail(key, "an object of strings") }
        return try map.mapValues { item in
            guard case .string(let s) = item else { throw fail(key, "an object of strings") }
            return s
        }
    }

    mutating func object(_ key: String) throws -> JSONObjectReader? {
        guard let v = value(key) else { return nil }
        guard case .object(let map) = v else { throw fail(key, "an object") }
        return JSONObjectReader(source: source, object: map, path: path + key + ".", makeError: makeError)
    }

    /// Throws for every key that was never asked for.
    func finish(hint: String = "see configs/server.json for the keys") throws {
        let unknown = Set(object.keys).subtracting(used).sorted()
        guard unknown.isEmpty else {
            throw makeError("\(source)unknown key\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\(path)\($0)'" }.joined(separator: ", ")) (\(hint))")
        }
    }
}

/// JSON as parsed for reading settings: numbers as Double, objects unordered.
enum ParsedJSON: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([ParsedJSON])
    case object([String: ParsedJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let b = try? container.decode(Bool.self) { self = .bool(b); return }
        if let d = try? container.decode(Double.self) { self = .number(d); return }
        if let s = try? container.decode(String.self) { self = .string(s); return }
        if let a = try? container.decode([ParsedJSON].self) { self = .array(a); return }
        if let o = try? container.decode([String: ParsedJSON].self) { self = .object(o); return }
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "unsupported JSON value")
    }

    /// Parses JSON text; `nil` with the parser's message when it is not valid JSON.
    static func parse(_ bytes: [UInt8]) -> Result<ParsedJSON, ConfigError> {
        do {
            return .success(try JSONDecoder().decode(ParsedJSON.self, from: Data(bytes)))
        } catch let DecodingError.dataCorrupted(context) {
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return .failure(ConfigError(underlying ?? context.debugDescription))
        } catch {
            return .failure(ConfigError("\(error)"))
        }
    }
}
