/// Why a `multipart/form-data` body was rejected; `message` says what is wrong and is meant
/// to be shown to the client (e.g. as the detail of a 400 response).
public struct MultipartError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The category of problem.
    public enum Kind: Sendable, Equatable {
        /// The Content-Type is not `multipart/form-data`.
        case notMultipart
        /// The Content-Type has no usable `boundary` parameter.
        case invalidBoundary
        /// The boundary does not occur in the body.
        case boundaryNotFound
        /// The body ends without the closing `--boundary--` line.
        case missingClosingBoundary
        /// The body ends inside a part's headers or content.
        case truncated
        /// More parts than `Limits.maxParts`.
        case tooManyParts
        /// A part's header section exceeds `Limits.maxPartHeaderBytes` or `maxPartHeaderCount`.
        case partHeadersTooLarge
        /// A part header line or Content-Disposition is malformed or missing.
        case malformedPart
    }

    /// The category of problem.
    public let kind: Kind
    /// A sentence saying what is wrong and how to fix it.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// A readable explanation.
    public var description: String { message }
}
