/// An error a user can cause with the data they send: wrong shapes, values that are not finite,
/// a mask that cannot have produced the measurement. The message says what to fix.
public struct SCIError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How many of `values` are NaN or infinite.
public func nonFiniteCount(_ values: [Float]) -> Int {
    values.withUnsafeBufferPointer { $0.reduce(0) { $1.isFinite ? $0 : $0 + 1 } }
}

/// Throws an `SCIError` naming `what` when `values` holds a NaN or an infinity.
public func requireFinite(_ values: [Float], _ what: String) throws {
    for (i, v) in values.enumerated() where !v.isFinite {
        throw SCIError("\(what) holds a non-finite value (\(v)) at element \(i); send finite numbers only")
    }
}
