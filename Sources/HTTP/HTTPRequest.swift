import Foundation

/// A complete HTTP request as delivered to the handler: head, fully read body and peer.
public struct HTTPRequest: Sendable {
    /// The method token, case-sensitive as sent (e.g. `GET`).
    public var method: String
    /// The request-target exactly as sent (origin-form `/p?q`, absolute-form or `*`).
    public var target: String
    /// The protocol version of the request.
    public var version: HTTPVersion
    /// The header fields in order; lookup is case-insensitive.
    public var headers: HTTPHeaders
    /// The body, de-chunked (empty when the request has none, or when it was spooled to a file).
    public var body: [UInt8]
    /// The body written to a temporary file while it arrived (large uploads, when the server
    /// has a spool policy); then `body` is empty. Read it with `bodyBytes()`.
    public var spooledBody: SpooledBody?
    /// The peer as `host:port` (`[v6addr]:port` for IPv6); empty when unknown.
    public var remoteAddress: String

    /// The path part of the target before `?`, still percent-encoded.
    public let rawPath: String
    /// The path, percent-decoded (equal to `rawPath` if it cannot be decoded).
    public let path: String
    /// The raw query string after `?`, or `nil` when the target has none.
    public let query: String?
    /// The decoded query parameters in order.
    public let queryItems: [HTTPQueryItem]

    /// Creates a request and splits `target` into path and query.
    public init(method: String, target: String, version: HTTPVersion = .http1_1,
                headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], spooledBody: SpooledBody? = nil,
                remoteAddress: String = "") {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.spooledBody = spooledBody
        self.remoteAddress = remoteAddress
        let parts = Self.splitTarget(target)
        rawPath = parts.path
        query = parts.query
        path = PercentEncoding.decode(parts.path) ?? parts.path
        queryItems = parts.query.map { PercentEncoding.parseQuery($0) } ?? []
    }

    /// The path's segments between `/`, each percent-decoded separately (so `%2F` stays
    /// inside its segment); empty segments are dropped.
    public var pathComponents: [String] {
        rawPath.split(separator: "/").map { PercentEncoding.decode($0) ?? String($0) }
    }

    /// The first query value named `name`, or `nil`.
    public func queryValue(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    /// The first value of header `name` (case-insensitive), or `nil`.
    public func header(_ name: String) -> String? { headers[name] }

    /// The `Content-Type` header, if any.
    public var contentType: String? { headers["Content-Type"] }

    /// The body as `Data` (a copy).
    public var bodyData: Data { Data(body) }

    /// The body's bytes wherever they are: mapped from the spool file, or a copy of `body`.
    public func bodyBytes() throws -> Data {
        if let spooledBody { return try spooledBody.mapped() }
        return Data(body)
    }

    /// Splits a request-target into its path and query. Absolute-form targets
    /// (`http://host/p?q`) yield their path; `*` yields `*`.
    static func splitTarget(_ target: String) -> (path: String, query: String?) {
        var rest = Substring(target)
        let lower = target.prefix(8).asciiLowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            rest = rest[rest.index(rest.startIndex, offsetBy: lower.hasPrefix("http://") ? 7 : 8)...]
            if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) {
                rest = rest[slash...]
            } else {
                rest = ""
            }
            if !rest.hasPrefix("/") { rest = "/" + rest }
        }
        if let q = rest.firstIndex(of: "?") {
            return (String(rest[..<q]), String(rest[rest.index(after: q)...]))
        }
        return (String(rest), nil)
    }
}
