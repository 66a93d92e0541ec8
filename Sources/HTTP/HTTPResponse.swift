import Foundation

/// A response produced by the handler.
///
/// The server owns message framing: it always sets `Content-Length` (except for 1xx, 204 and
/// 304), adds `Date` and `Server`, and manages `Connection`; any `Content-Length`,
/// `Transfer-Encoding` or `Date` set here is replaced. A `Connection: close` set here is honored.
public struct HTTPResponse: Sendable {
    /// The status code and reason phrase.
    public var status: HTTPStatus
    /// The header fields to send.
    public var headers: HTTPHeaders
    /// The content bytes (not sent for HEAD requests, 1xx, 204 and 304).
    public var body: [UInt8]
    /// For a HEAD answer whose body was never built: the length GET would send, if known
    /// cheaply (sent as Content-Length), else nil (no Content-Length, as RFC 9110 §9.3.2 allows).
    public var headOnlyLength: Int??

    /// Sent instead of `body` when set: the content of an open file, streamed in slices.
    public var bodyFile: ResponseBodyFile?

    /// A response whose content is `file`, sent from disk.
    public static func file(_ file: ResponseBodyFile, status: HTTPStatus = .ok, headers: HTTPHeaders) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers)
        response.bodyFile = file
        return response
    }

    /// A HEAD answer: the headers GET would send, without building the body.
    public static func headOnly(status: HTTPStatus = .ok, headers: HTTPHeaders, length: Int?) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers)
        response.headOnlyLength = .some(length)
        return response
    }

    /// Creates a response.
    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Creates a response whose body is `data`.
    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), data: Data) {
        self.init(status: status, headers: headers, body: [UInt8](data))
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// An `application/json` response with already-serialized JSON.
    public static func json(raw: [UInt8], status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: raw)
    }

    /// An `application/json` response encoding `value` (keys sorted). If encoding fails the
    /// result is a 500 problem document saying so.
    public static func json<T: Encodable>(_ value: T, status: HTTPStatus = .ok,
                                          encoder: JSONEncoder? = nil) -> HTTPResponse {
        let encoder = encoder ?? {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return e
        }()
        do {
            return json(raw: [UInt8](try encoder.encode(value)), status: status)
        } catch {
            return problem(.internalServerError, detail: "The response could not be encoded as JSON: \(error)")
        }
    }

    /// An empty response (e.g. 204 No Content).
    public static func empty(_ status: HTTPStatus = .noContent) -> HTTPResponse {
        HTTPResponse(status: status)
    }

    /// An RFC 9457 `application/problem+json` document:
    /// `{"type":…,"title":…,"status":…,"detail":…}`; `title` defaults to the reason phrase.
    public static func problem(_ status: HTTPStatus, detail: String, title: String? = nil,
                               type: String = "about:blank") -> HTTPResponse {
        let body = "{\"type\":\(jsonString(type)),\"title\":\(jsonString(title ?? status.reasonPhrase))"
            + ",\"status\":\(status.code),\"detail\":\(jsonString(detail))}"
        return HTTPResponse(status: status, headers: ["Content-Type": "application/problem+json"],
                            body: Array(body.utf8))
    }

    /// Whether the response asks for the connection to be closed (`Connection: close`).
    public var requestsClose: Bool {
        headers.listValues(for: "Connection").contains { $0.asciiLowercased() == "close" }
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
