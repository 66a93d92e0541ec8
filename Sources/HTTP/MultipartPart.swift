import Foundation
extension MultipartFormData {
    /// One part of a `multipart/form-data` body (RFC 7578 §4).
    public struct Part: Sendable {
        /// The form field name (`Content-Disposition: form-data; name="…"`).
        public let name: String
        /// The file name, if the part is a file (`filename*` is preferred when present).
        public let filename: String?
        /// The part's `Content-Type`, if sent (RFC 7578 implies `text/plain` otherwise).
        public let contentType: String?
        /// All header fields of the part, in order.
        public let headers: HTTPHeaders
        /// The part's content: a slice of the original body (no copy), so its indices are
        /// positions in that body. Use `Array(part.body)` for a zero-based copy.
        public let body: Data

        /// Creates a part.
        public init(name: String, filename: String?, contentType: String?, headers: HTTPHeaders,
                    body: Data) {
            self.name = name
            self.filename = filename
            self.contentType = contentType
            self.headers = headers
            self.body = body
        }

        /// The content decoded as UTF-8 (invalid sequences replaced).
        public var text: String { String(decoding: body, as: UTF8.self) }
    }
}
