import Foundation
import Reconstruction

/// A job's settings after defaults were applied: what the `options` part asked for, checked.
public struct JobOptions: Codable, Sendable, Equatable {
    /// "gaptv", "revsci" or "pnp-ffdnet".
    public var algorithm: String
    /// The RevSCI model (configs/models name); nil for GAP-TV.
    public var model: String?
    /// The white level the client stated; nil when it is inferred.
    public var whiteLevel: Double?
    /// Keep only the first N snapshots of the measurement.
    public var snapshots: Int?
    /// Default bit depth of the PNG downloads: 8 or 16.
    public var pngBits: Int
    /// GAP-TV parameters (nil for RevSCI).
    public var iterations: Int?
    public var tvWeight: Double?
    public var tvIterations: Int?
    /// PnP-FFDNet: "warm" or "published", its noise levels (0-255 scale), GAP iterations per
    /// level, and GAP-TV iterations before the first FFDNet one (nil for other algorithms).
    public var schedule: String?
    public var sigmas: [Double]?
    public var sigmaIterations: Int?
    public var warmIterations: Int?

    enum CodingKeys: String, CodingKey {
        case algorithm, model, whiteLevel = "white_level", snapshots, pngBits = "png_bits"
        case iterations, tvWeight = "tv_weight", tvIterations = "tv_iterations"
        case schedule, sigmas, sigmaIterations = "sigma_iterations", warmIterations = "warm_iterations"
    }

    /// The option names a client may send.
    public static let knownKeys = ["algorithm", "model", "white_level", "snapshots", "png_bits",
                                   "iterations", "tv_weight", "tv_iterations",
                                   "schedule", "sigmas", "sigma_iterations", "warm_iterations"]

    /// The algorithms a job may ask for.
    public static let algorithms = ["gaptv", "revsci", "pnp-ffdnet"]

    /// Parses the `options` part (JSON object text; empty means all defaults).
    /// - Throws: `ProblemDocument` 400 when the text is not a JSON object, 422 for unknown keys,
    ///   wrong types and values out of range.
    public static func parse(_ text: [UInt8]?, config: ServiceConfig) throws -> JobOptions {
        var object: [String: ParsedJSON] = [:]
        if let text, !text.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }) {
            switch ParsedJSON.parse(text) {
            case .failure(let error):
                throw ProblemDocument(.badRequest, kind: .invalidOptions,
                    detail: "The 'options' part is not valid JSON (\(error.message)); send a JSON object such as {\"algorithm\": \"gaptv\", \"snapshots\": 1}.")
            case .success(.object(let o)): object = o
            case .success:
                throw ProblemDocument(.badRequest, kind: .invalidOptions,
                    detail: "The 'options' part must be a JSON object such as {\"algorithm\": \"gaptv\"}.")
            }
        }
        var reader = JSONObjectReader(source: "options: ", object: object, path: "") {
            ProblemDocument(.unprocessableContent, kind: .invalidOptions, detail: $0)
        }
        var algorithm = try reader.string("algorithm")
        let model = try reader.string("model")
        let whiteLevel = try reader.double("white_level")
        let snapshots = try reader.int("snapshots")
        let pngBits = try reader.int("png_bits")
        let iterations = try reader.int("iterations")
        let tvWeight = try reader.double("tv_weight")
        let tvIterations = try reader.int("tv_iterations")
        let schedule = try reader.string("schedule")
        let sigmas = try reader.doubleList("sigmas")
        let sigmaIterations = try reader.int("sigma_iterations")
        let warmIterations = try reader.int("warm_iterations")
        try reader.finish(hint: "known options: \(knownKeys.joined(separator: ", "))")

        func invalid(_ message: String) -> ProblemDocument {
            ProblemDocument(.unprocessableContent, kind: .invalidOptions, detail: "options: " + message)
        }
        if algorithm == "gap-tv" { algorithm = "gaptv" }
        if let a = algorithm, !algorithms.contains(a) {
            throw invalid("'algorithm' must be \"gaptv\", \"revsci\" or \"pnp-ffdnet\" (got \"\(a)\"); GET /v1/models lists what this server runs")
        }
        let resolved = algorithm ?? (model != nil ? "revsci" : config.defaultAlgorithm)
        if let whiteLevel, !(whiteLevel > 0 && whiteLevel.isFinite && whiteLevel <= 1e30) {
            throw invalid("'white_level' must be a positive number (the value of a white pixel in one frame, e.g. 255), got \(whiteLevel)")
        }
        if let snapshots, snapshots < 1 { throw invalid("'snapshots' must be at least 1, got \(snapshots)") }
        if let pngBits, pngBits != 8 && pngBits != 16 { throw invalid("'png_bits' must be 8 or 16, got \(pngBits)") }
        var options = JobOptions(algorithm: resolved, model: nil, whiteLevel: whiteLevel, snapshots: snapshots,
                                 pngBits: pngBits ?? 8)
        // The TV step's settings, for GAP-TV and PnP-FFDNet's warm start alike.
        func tvSettings() throws -> (Double, Int) {
            let weight = tvWeight ?? config.gaptv.tvWeight
            let inner = tvIterations ?? config.gaptv.tvIterations
            guard weight > 0, weight <= 1000, weight.isFinite else { throw invalid("'tv_weight' must be in (0, 1000], got \(weight)") }
            guard (1 ... 1000).contains(inner) else { throw invalid("'tv_iterations' must be 1...1000, got \(inner)") }
            return (weight, inner)
        }
        let pnpGiven = [("schedule", schedule != nil), ("sigmas", sigmas != nil), ("sigma_iterations", sigmaIterations != nil),
                        ("warm_iterations", warmIterations != nil)].filter(\.1).map(\.0)
        if resolved != "pnp-ffdnet", !pnpGiven.isEmpty {
            throw invalid("\(pnpGiven.map { "'\($0)'" }.joined(separator: ", ")) tune PnP-FFDNet and do not apply to algorithm \"\(resolved)\"")
        }
        if resolved == "pnp-ffdnet" {
            if let model { throw invalid("'model' (\"\(model)\") applies to algorithm \"revsci\" only") }
            if iterations != nil {
                throw invalid("'iterations' is GAP-TV's; for PnP-FFDNet set 'warm_iterations' (GAP-TV iterations first) and 'sigma_iterations' (per noise level)")
            }
            let named = schedule ?? PnPFFDNet.Schedule.warm.rawValue
            guard let chosen = PnPFFDNet.Schedule(rawValue: named) else {
                throw invalid("'schedule' must be \"warm\" or \"published\", got \"\(named)\"")
            }
            if let sigmas {
                guard (1 ... 16).contains(sigmas.count), sigmas.allSatisfy({ $0 > 0 && $0 <= 255 }) else {
                    throw invalid("'sigmas' must list 1 to 16 noise levels in (0, 255] (on the 0-255 scale), e.g. [25, 12, 6]")
                }
            }
            let each = sigmaIterations ?? PnPFFDNet.Schedule.iterationsPerSigma
            guard (1 ... 1000).contains(each) else { throw invalid("'sigma_iterations' must be 1...1000, got \(each)") }
            let warm = warmIterations ?? chosen.warmIterations
            guard (0 ... 10_000).contains(warm) else { throw invalid("'warm_iterations' must be 0...10000, got \(warm)") }
            (options.tvWeight, options.tvIterations) = try tvSettings()
            options.schedule = named
            options.sigmas = sigmas ?? chosen.sigmas
            options.sigmaIterations = each
            options.warmIterations = warm
            return options
        }
        if resolved == "gaptv" {
            if let model { throw invalid("'model' (\"\(model)\") applies to algorithm \"revsci\" only; drop it or set \"algorithm\": \"revsci\"") }
            let it = iterations ?? config.gaptv.iterations
            guard (1 ... 10_000).contains(it) else { throw invalid("'iterations' must be 1...10000, got \(it)") }
            options.iterations = it
            (options.tvWeight, options.tvIterations) = try tvSettings()
        } else {
            let given = [("iterations", iterations != nil), ("tv_weight", tvWeight != nil), ("tv_iterations", tvIterations != nil)]
                .filter(\.1).map(\.0)
            if !given.isEmpty {
                throw invalid("\(given.map { "'\($0)'" }.joined(separator: ", ")) tune GAP-TV and do not apply to algorithm \"revsci\"")
            }
            options.model = model ?? config.defaultModel
        }
        return options
    }

    /// The options as the API shows them.
    public var json: JSONValue {
        var members: [(String, JSONValue)] = [("algorithm", .string(algorithm)), ("model", .string(model)),
                                              ("white_level", .number(whiteLevel)), ("snapshots", .int(snapshots)),
                                              ("png_bits", .int(pngBits))]
        if algorithm == "gaptv" {
            members += [("iterations", .int(iterations)), ("tv_weight", .number(tvWeight)), ("tv_iterations", .int(tvIterations))]
        }
        if algorithm == "pnp-ffdnet" {
            members += [("schedule", .string(schedule)), ("sigmas", .array((sigmas ?? []).map { .number($0) })),
                        ("sigma_iterations", .int(sigmaIterations)), ("warm_iterations", .int(warmIterations)),
                        ("tv_weight", .number(tvWeight)), ("tv_iterations", .int(tvIterations))]
        }
        return .object(members)
    }
}
