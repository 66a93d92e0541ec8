/// Helpers for `Authorization: Bearer` tokens (RFC 6750).
public enum HTTPAuth {
    /// Compares two secrets in time that depends only on their lengths, not on where they
    /// differ (use it to check tokens).
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        constantTimeEquals(Array(a.utf8), Array(b.utf8))
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt(bitPattern: a.count ^ b.count)
        let length = max(a.count, b.count)
        for i in 0..<length {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= UInt(x ^ y)
        }
        return difference == 0
    }

    /// The token of a single `Authorization: Bearer <token>` header, or `nil` when the header
    /// is missing, repeated, uses another scheme, or the token is not RFC 6750 `b64token`.
    public static func bearerToken(from request: HTTPRequest) -> String? {
        let values = request.headers.values(for: "Authorization")
        guard values.count == 1 else { return nil }
        return bearerToken(fromAuthorization: values[0])
    }

    /// The token in an Authorization header value such as `Bearer abc.def`, or `nil`.
    public static func bearerToken(fromAuthorization value: String) -> String? {
        let bytes = Array(value.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count + 1,
              zip(bytes, scheme).allSatisfy({ HTTPHeaders.asciiLower($0) == $1 }),
              bytes[scheme.count] == 32 else { return nil }
        var start = scheme.count
        while start < bytes.count && bytes[start] == 32 { start += 1 }
        let token = bytes[start...]
        guard !token.isEmpty else { return nil }
        var seenPadding = false
        for byte in token {
            if byte == UInt8(ascii: "=") {
                seenPadding = true
                continue
            }
            guard !seenPadding else { return nil }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                continue
            default:
                return nil
            }
        }
        if token.first == UInt8(ascii: "=") { return nil }
        return String(decoding: token, as: UTF8.self)
    }

    /// A 401 problem response with `WWW-Authenticate: Bearer` (add `realm` if given).
    public static func unauthorized(detail: String = "A valid 'Authorization: Bearer <token>' header is required.",
                                    realm: String? = nil) -> HTTPResponse {
        var response = HTTPResponse.problem(.unauthorized, detail: detail)
        let challenge = realm.map { "Bearer realm=\(HTTPResponse.jsonString($0))" } ?? "Bearer"
        response.headers.add(name: "WWW-Authenticate", value: challenge)
        return response
    }
}
