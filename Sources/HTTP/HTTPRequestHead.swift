/// The parsed head of a request (request line and header section) and what it implies for
/// framing and connection reuse.
public struct HTTPRequestHead: Sendable {
    /// How the request's body is delimited (RFC 9112 §6).
    public enum Framing: Sendable, Equatable {
        /// No body.
        case none
        /// A body of exactly this many bytes (`Content-Length`).
        case contentLength(Int)
        /// `Transfer-Encoding: chunked`.
        case chunked
    }

    /// The method token.
    public var method: String
    /// The request-target as sent.
    public var target: String
    /// The protocol version (HTTP/1.x with x > 1 is reported as 1.1).
    public var version: HTTPVersion
    /// The header fields in order.
    public var headers: HTTPHeaders
    /// How the body is delimited.
    public var framing: Framing
    /// Whether the connection may stay open after this request (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool
    /// Whether the client sent `Expect: 100-continue` and waits before sending the body.
    public var expectsContinue: Bool
}
