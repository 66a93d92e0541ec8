import Foundation
import HTTP

/// Maps requests to handlers: matches the path against the route templates, enforces bearer
/// auth on /v1, turns thrown `ProblemDocument`s (and anything unexpected) into problem
/// responses, and counts every answer in the metrics under its route template.
final class Router: @unchecked Sendable {
    let service: ReconstructionService

    init(service: ReconstructionService) {
        self.service = service
    }

    /// A matched route: its template (for metrics and logs), the methods it takes, and the handler.
    struct Match {
        var template: String
        var handlers: [String: () throws -> HTTPResponse]
        /// False for a /v1 path no route matches (answered 404 after the auth check).
        var exists = true
    }

    /// Answers one request (blocking; called off the concurrency pool).
    func handle(_ request: HTTPRequest) -> HTTPResponse {
        let start = Date()
        let method = request.method == "HEAD" ? "GET" : request.method
        var template = "unmatched"
        var response: HTTPResponse
        do {
            response = try resolve(request, method: method, template: &template).handler()
        } catch let problem as ProblemDocument {
            response = problem.response(instance: String(request.rawPath.prefix(200)))
        } catch {
            service.log("internal error on \(request.method) \(request.rawPath.prefix(200)): \(error)")
            response = ProblemDocument.internalError("The server failed to answer: \(error)")
                .response(instance: String(request.rawPath.prefix(200)))
        }
        let seconds = Date().timeIntervalSince(start)
        record(request, method: method, template: template, status: response.status.code, seconds: seconds,
               outcome: "\(response.body.count) \(String(format: "%.3f", seconds))s")
        return response
    }

    /// The matched route and the handler for `method`, after the auth check (401), the route's
    /// existence (404) and the method (405): what both the head check and the handler path
    /// decide. `template` is set as soon as the route is known (for metrics).
    func resolve(_ request: HTTPRequest, method: String, template: inout String) throws -> (match: Match, handler: () throws -> HTTPResponse) {
        let match = try route(request)
        template = match.template
        if template.hasPrefix("/v1") { try authorize(request) }
        guard match.exists else { throw Self.noRoute(request) }
        guard let handler = match.handlers[method] else { throw Self.methodNotAllowed(match, request) }
        return (match, handler)
    }

    /// Counts an answer in the metrics under its route template and writes the access-log line.
    func record(_ request: HTTPRequest, method: String, template: String, status: Int, seconds: Double, outcome: String) {
        let methodLabel = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"].contains(method) ? method : "OTHER"
        service.metrics.recordRequest(route: template, method: methodLabel, status: status, seconds: seconds)
        if service.config.accessLog {
            service.log("\(request.remoteAddress) \"\(request.method.prefix(20)) \(request.target.prefix(200))\" \(status) \(outcome)")
        }
    }

    /// Decides from a request's head, before its body is read, whether the body is wanted:
    /// route and method, authentication, content type, shutdown, queue room and disk quota.
    /// Nil takes the body; a problem response refuses it (no `100 Continue`, nothing read).
    func admit(_ head: HTTPRequestHead, remoteAddress: String) -> HTTPResponse? {
        let request = HTTPRequest(method: head.method, target: head.target, version: head.version,
                                  headers: head.headers, remoteAddress: remoteAddress)
        let method = request.method == "HEAD" ? "GET" : request.method
        var template = "unmatched"
        do {
            _ = try resolve(request, method: method, template: &template)
            let declared: Int64
            if case .contentLength(let length) = head.framing { declared = Int64(length) } else { declared = 0 }
            switch (template, method) {
            case ("/v1/jobs", "POST"):
                try service.requireAccepting()
                try requireMediaType(request, ["multipart/form-data"], what: "a job")
                guard service.pool.hasRoom else { throw service.queueFullProblem() }
                try service.requireQuota(for: declared)
            case ("/v1/masks", "POST"):
                try service.requireAccepting()
                try requireMediaType(request, ["multipart/form-data"] + MaskRoutes.rawTypes, what: "a mask")
                try service.requireQuota(for: declared)
            default:
                break
            }
            return nil
        } catch let problem as ProblemDocument {
            let response = problem.response(instance: String(request.rawPath.prefix(200)))
            record(request, method: method, template: template, status: response.status.code, seconds: 0, outcome: "refused before the body")
            return response
        } catch {
            return ProblemDocument.internalError("The server failed to check the request: \(error)").response(instance: nil)
        }
    }

    /// 415 unless the request's media type is one of `types`.
    func requireMediaType(_ request: HTTPRequest, _ types: [String], what: String) throws {
        let mediaType = request.mediaType
        guard types.contains(mediaType) else {
            throw ProblemDocument(.unsupportedMediaType, kind: .unsupportedMediaType,
                detail: "Send \(what) as \(types.joined(separator: " or ")) (the request's Content-Type is '\(mediaType.prefix(80))').")
        }
    }

    /// Finds the route for the request's path; 404 when none matches.
    func route(_ request: HTTPRequest) throws -> Match {
        let c = request.pathComponents
        let jobs = service.jobRoutes, masks = service.maskRoutes, system = service.systemRoutes
        switch c.count {
        case 0:
            return Match(template: "/", handlers: ["GET": { system.index() }])
        case 1:
            switch c[0] {
            case "healthz": return Match(template: "/healthz", handlers: ["GET": { system.health() }])
            case "readyz": return Match(template: "/readyz", handlers: ["GET": { system.readiness() }])
            case "metrics": return Match(template: "/metrics", handlers: ["GET": { system.metricsText() }])
            case "openapi.yaml": return Match(template: "/openapi.yaml", handlers: ["GET": { system.openAPI() }])
            default: break
            }
        default:
            guard c[0] == "v1" else { break }
            switch (c.count, c[1]) {
            case (2, "jobs"):
                return Match(template: "/v1/jobs", handlers: ["GET": { try jobs.list(request) }, "POST": { try jobs.submit(request) }])
            case (3, "jobs"):
                let id = c[2]
                return Match(template: "/v1/jobs/{id}", handlers: ["GET": { try jobs.get(id) }, "DELETE": { try jobs.delete(id) }])
            case (4, "jobs") where c[3] == "frames.zip":
                let id = c[2]
                return Match(template: "/v1/jobs/{id}/frames.zip", handlers: ["GET": { try jobs.framesZip(id, request) }])
            case (4, "jobs") where c[3] == "result.npy":
                let id = c[2]
                return Match(template: "/v1/jobs/{id}/result.npy", handlers: ["GET": { try jobs.resultNPY(id, request) }])
            case (5, "jobs") where c[3] == "frames":
                let id = c[2], name = c[4]
                return Match(template: "/v1/jobs/{id}/frames/{k}.png", handlers: ["GET": { try jobs.framePNG(id, name, request) }])
            case (2, "masks"):
                return Match(template: "/v1/masks", handlers: ["GET": { masks.list() }, "POST": { try masks.upload(request) }])
            case (3, "masks"):
                let id = c[2]
                return Match(template: "/v1/masks/{id}", handlers: ["GET": { try masks.get(id) }, "DELETE": { try masks.delete(id) }])
            case (2, "models"):
                return Match(template: "/v1/models", handlers: ["GET": { system.models() }])
            default: break
            }
            // Unknown /v1 paths still check auth first, so they reveal nothing to anonymous clients.
            return Match(template: "/v1/unmatched", handlers: [:], exists: false)
        }
        throw Self.noRoute(request)
    }

    /// 405 with `Allow`.
    static func methodNotAllowed(_ match: Match, _ request: HTTPRequest) -> ProblemDocument {
        var allowed = match.handlers.keys.sorted()
        if allowed.contains("GET") { allowed.append("HEAD") }
        return ProblemDocument(.methodNotAllowed, kind: .methodNotAllowed,
                               detail: "\(match.template) answers \(allowed.joined(separator: ", ")), not \(request.method.prefix(20)).",
                               headers: [("Allow", allowed.joined(separator: ", "))])
    }

    static func noRoute(_ request: HTTPRequest) -> ProblemDocument {
        ProblemDocument.notFound("There is no resource at \(request.rawPath.prefix(200)); GET /openapi.yaml describes the API.")
    }

    /// Throws 401 unless auth is off or the request carries one of the configured tokens.
    func authorize(_ request: HTTPRequest) throws {
        guard service.config.auth.enabled else { return }
        let presented = HTTPAuth.bearerToken(from: request)
        if let presented {
            var matched = false
            for token in service.tokens {   // every token is compared, so timing reveals nothing
                if HTTPAuth.constantTimeEquals(presented, token) { matched = true }
            }
            if matched { return }
        }
        let challenge = presented == nil ? "Bearer realm=\"revsci\"" : "Bearer realm=\"revsci\", error=\"invalid_token\""
        throw ProblemDocument(.unauthorized, kind: .unauthorized,
                              detail: presented == nil
                                ? "This server requires 'Authorization: Bearer <token>' on /v1 requests."
                                : "The bearer token is not accepted by this server.",
                              headers: [("WWW-Authenticate", challenge)])
    }
}

extension HTTPRequest {
    /// The Content-Type without its parameters, lowercased ("" when there is none).
    var mediaType: String {
        (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    }
}
