import HTTP

/// An RFC 9457 problem document (`application/problem+json`): the service's one error shape.
/// `detail` says what to fix; `type` is a stable relative URI (`/problems/<kind>`) clients can
/// switch on; extra members (e.g. `job_id`, `state`) carry the facts the detail mentions.
public struct ProblemDocument: Error, Sendable, CustomStringConvertible {
    /// The problem types the service uses; the raw value is the last path segment of `type`.
    public enum Kind: String, Sendable, CaseIterable {
        case badRequest = "bad-request"
        case invalidMultipart = "invalid-multipart"
        case missingPart = "missing-part"
        case invalidOptions = "invalid-options"
        case unsupportedMediaType = "unsupported-media-type"
        case invalidInput = "invalid-input"
        case unknownMask = "unknown-mask"
        case modelUnavailable = "model-unavailable"
        case notFound = "not-found"
        case methodNotAllowed = "method-not-allowed"
        case unauthorized = "unauthorized"
        case jobNotFinished = "job-not-succeeded"
        case maskInUse = "mask-in-use"
        case queueFull = "queue-full"
        case quotaExceeded = "quota-exceeded"
        case shuttingDown = "shutting-down"
        case notReady = "not-ready"
        case internalError = "internal-error"
    }

    public var status: HTTPStatus
    public var kind: Kind
    public var title: String
    public var detail: String
    /// Extra members of the document.
    public var extensions: [(String, JSONValue)]
    /// Extra response headers (Retry-After, Allow, WWW-Authenticate).
    public var headers: [(String, String)]

    public init(_ status: HTTPStatus, kind: Kind, detail: String, title: String? = nil,
                extensions: [(String, JSONValue)] = [], headers: [(String, String)] = []) {
        self.status = status
        self.kind = kind
        self.title = title ?? Self.defaultTitle(kind, status)
        self.detail = detail
        self.extensions = extensions
        self.headers = headers
    }

    public var description: String { "\(status.code) \(title): \(detail)" }

    /// The `type` member.
    public var type: String { "/problems/\(kind.rawValue)" }

    /// The document as JSON.
    public func json(instance: String?) -> JSONValue {
        var members: [(String, JSONValue)] = [("type", .string(type)), ("title", .string(title)),
                                              ("status", .int(status.code)), ("detail", .string(detail))]
        if let instance { members.append(("instance", .string(instance))) }
        members += extensions
        return .object(members)
    }

    /// The HTTP response carrying the document.
    public func response(instance: String? = nil) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: ["Content-Type": "application/problem+json"],
                                    body: json(instance: instance).bytes)
        for (name, value) in headers { response.headers.add(name: name, value: value) }
        return response
    }

    static func defaultTitle(_ kind: Kind, _ status: HTTPStatus) -> String {
        switch kind {
        case .badRequest: return "Bad request"
        case .invalidMultipart: return "Malformed multipart/form-data body"
        case .missingPart: return "Missing form field"
        case .invalidOptions: return "Invalid job options"
        case .unsupportedMediaType: return "Unsupported media type"
        case .invalidInput: return "Invalid input arrays"
        case .unknownMask: return "Unknown mask"
        case .modelUnavailable: return "Model not available"
        case .notFound: return "Not found"
        case .methodNotAllowed: return "Method not allowed"
        case .unauthorized: return "Authentication required"
        case .jobNotFinished: return "Job has no result"
        case .maskInUse: return "Mask in use"
        case .queueFull: return "Job queue full"
        case .quotaExceeded: return "Storage quota exceeded"
        case .shuttingDown: return "Server shutting down"
        case .notReady: return "Not ready"
        case .internalError: return status.reasonPhrase
        }
    }

    // MARK: - Common problems

    static func notFound(_ detail: String) -> ProblemDocument {
        ProblemDocument(.notFound, kind: .notFound, detail: detail)
    }

    static func badRequest(_ detail: String) -> ProblemDocument {
        ProblemDocument(.badRequest, kind: .badRequest, detail: detail)
    }

    static func invalidInput(_ detail: String) -> ProblemDocument {
        ProblemDocument(.unprocessableContent, kind: .invalidInput, detail: detail)
    }

    static func internalError(_ detail: String) -> ProblemDocument {
        ProblemDocument(.internalServerError, kind: .internalError, detail: detail)
    }
}
