/// Why a request was rejected while it was being read: the status to answer with and a
/// sentence telling the client what to fix. The server sends it as `application/problem+json`.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The status to answer with (400, 408, 413, 414, 417, 431, 501 or 505).
    public let status: HTTPStatus
    /// What was wrong and what to change.
    public let detail: String

    /// Creates a parse error.
    public init(_ status: HTTPStatus, _ detail: String) {
        self.status = status
        self.detail = detail
    }

    /// A readable explanation.
    public var description: String { "\(status): \(detail)" }
}
