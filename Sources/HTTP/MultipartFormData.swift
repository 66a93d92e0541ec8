import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A parser for `multipart/form-data` bodies (RFC 7578, delimiters per RFC 2046 §5.1.1).
///
/// The body is scanned once: delimiters are found with a Horspool skip search, part contents are
/// returned as slices of the input, so the cost is linear in the body size and no bytes are
/// copied. The preamble before the first boundary and the epilogue after the closing one are
/// ignored.
public enum MultipartFormData {
    /// Bounds on the structure of a body.
    public struct Limits: Sendable, Equatable {
        /// Most parts accepted.
        public var maxParts: Int
        /// Most bytes in one part's header section (including line ends).
        public var maxPartHeaderBytes: Int
        /// Most header fields in one part.
        public var maxPartHeaderCount: Int

        /// Creates limits; defaults: 1000 parts, 16 KiB and 32 fields of headers per part.
        public init(maxParts: Int = 1000, maxPartHeaderBytes: Int = 16 * 1024, maxPartHeaderCount: Int = 32) {
            self.maxParts = maxParts
            self.maxPartHeaderBytes = maxPartHeaderBytes
            self.maxPartHeaderCount = maxPartHeaderCount
        }
    }

    /// The `boundary` parameter of a `multipart/form-data` Content-Type (quoted or not).
    /// - Throws: `MultipartError` if the type is not `multipart/form-data` or the boundary is
    ///   missing, longer than 70 characters, or uses characters outside RFC 2046 `bchars`.
    public static func boundary(fromContentType contentType: String) throws -> String {
        guard let parsed = HeaderParameters(contentType) else {
            throw MultipartError(.invalidBoundary, "The Content-Type parameters are malformed; expected 'multipart/form-data; boundary=…'.")
        }
        guard parsed.value.asciiLowercased() == "multipart/form-data" else {
            throw MultipartError(.notMultipart, "The Content-Type is '\(parsed.value.prefix(100))', not multipart/form-data.")
        }
        guard let boundary = parsed["boundary"], !boundary.isEmpty else {
            throw MultipartError(.invalidBoundary, "The Content-Type has no boundary parameter; send 'multipart/form-data; boundary=…'.")
        }
        guard boundary.utf8.count <= 70 else {
            throw MultipartError(.invalidBoundary, "The multipart boundary is longer than 70 characters.")
        }
        guard boundary.utf8.allSatisfy(isBoundaryByte), boundary.utf8.last != 32 else {
            throw MultipartError(.invalidBoundary,
                "The multipart boundary contains characters not allowed by RFC 2046 (letters, digits and '()+_,-./:=? only; no trailing space).")
        }
        return boundary
    }

    /// Splits a `multipart/form-data` body into its parts.
    /// - Parameters:
    ///   - body: The complete request body.
    ///   - contentType: The request's Content-Type header (it carries the boundary).
    ///   - limits: Structural bounds.
    /// - Throws: `MultipartError` for a bad content type or boundary, a body that does not
    ///   contain the boundary, a missing closing boundary, a truncated body, too many parts,
    ///   oversized or malformed part headers, or a part without a `form-data` disposition and name.
    public static func parse(body: [UInt8], contentType: String, limits: Limits = Limits()) throws -> [Part] {
        try parse(data: Data(body), contentType: contentType, limits: limits)
    }

    /// Splits a body held as `Data` (for instance mapped from a spooled upload); the parts'
    /// contents are slices of it, so nothing is copied.
    public static func parse(data: Data, contentType: String, limits: Limits = Limits()) throws -> [Part] {
        let boundary = try boundary(fromContentType: contentType)
        let delimiter: [UInt8] = [13, 10, 45, 45] + Array(boundary.utf8)   // CRLF "--" boundary
        return try data.withUnsafeBytes { raw in
            let buffer = raw.bindMemory(to: UInt8.self)
            var scanner = Scanner(buffer: buffer, delimiter: delimiter, boundary: boundary, limits: limits)
            return try scanner.parse(data)
        }
    }

    /// RFC 2046 `bchars`.
    static func isBoundaryByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "+"), UInt8(ascii: "_"),
             UInt8(ascii: ","), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: ":"),
             UInt8(ascii: "="), UInt8(ascii: "?"), UInt8(ascii: " "):
            return true
        default:
            return false
        }
    }

    /// Walks one body.
    private struct Scanner {
        let buffer: UnsafeBufferPointer<UInt8>
        let delimiter: [UInt8]          // CRLF + "--" + boundary
        let boundary: String
        let limits: Limits
        let shifts: [Int]               // Horspool bad-character shifts

        init(buffer: UnsafeBufferPointer<UInt8>, delimiter: [UInt8], boundary: String, limits: Limits) {
            self.buffer = buffer
            self.delimiter = delimiter
            self.boundary = boundary
            self.limits = limits
            var shifts = [Int](repeating: delimiter.count, count: 256)
            for (index, byte) in delimiter.dropLast().enumerated() {
                shifts[Int(byte)] = delimiter.count - 1 - index
            }
            self.shifts = shifts
        }

        var count: Int { buffer.count }

        mutating func parse(_ body: Data) throws -> [Part] {
            var position = try firstDelimiterEnd()
            var parts: [Part] = []
            while true {
                // `position` is just after a delimiter.
                if position + 1 < count && buffer[position] == 45 && buffer[position + 1] == 45 {
                    return parts   // close delimiter; the epilogue is ignored
                }
                if position + 1 == count && buffer[position] == 45 {
                    throw MultipartError(.missingClosingBoundary,
                        "The body ends inside the closing boundary; it must end with '--\(boundary)--'.")
                }
                while position < count && (buffer[position] == 32 || buffer[position] == 9) { position += 1 }
                if position >= count || (buffer[position] == 13 && position + 1 == count) {
                    throw MultipartError(.missingClosingBoundary,
                        "The body ends after a boundary line without the closing '--\(boundary)--'; it was truncated or not terminated.")
                }
                guard buffer[position] == 13 && buffer[position + 1] == 10 else {
                    throw MultipartError(.malformedPart,
                        "A boundary line is followed by unexpected characters; each '--\(boundary)' must end with CRLF.")
                }
                position += 2
                if position == count {
                    throw MultipartError(.missingClosingBoundary,
                        "The body ends after a boundary line without the closing '--\(boundary)--'; it was truncated or not terminated.")
                }
                guard parts.count < limits.maxParts else {
                    throw MultipartError(.tooManyParts, "The body has more than \(limits.maxParts) parts; send fewer fields or files.")
                }
                let number = parts.count + 1
                let headers = try readHeaders(at: &position, partNumber: number)
                guard let end = findDelimiter(from: position) else {
                    throw MultipartError(.truncated,
                        "Part \(number) is not followed by a boundary: the body was truncated or its closing '--\(boundary)--' is missing.")
                }
                let start = body.startIndex
                parts.append(try makePart(headers: headers, body: body[(start + position)..<(start + end)], number: number))
                position = end + delimiter.count
            }
        }

        /// Finds the first boundary line (at the very start, or after the preamble) and
        /// returns the offset just past it.
        func firstDelimiterEnd() throws -> Int {
            let dashBoundary = delimiter.count - 2
            if count >= dashBoundary && matches(at: 0, from: 2) && isDelimiterEnd(at: dashBoundary) {
                return dashBoundary
            }
            guard let found = findDelimiter(from: 0) else {
                throw MultipartError(.boundaryNotFound,
                    "The body does not contain the boundary '--\(boundary)' announced in Content-Type.")
            }
            return found + delimiter.count
        }

        /// Whether `delimiter[from...]` occurs at `offset`.
        func matches(at offset: Int, from: Int) -> Bool {
            let length = delimiter.count - from
            guard offset + length <= count else { return false }
            return delimiter.withUnsafeBufferPointer { needle in
                memcmp(buffer.baseAddress! + offset, needle.baseAddress! + from, length) == 0
            }
        }

        /// Whether the bytes at `offset` may follow a delimiter: `--`, optional padding then
        /// CRLF, or the end of the body (reported as truncation by the caller).
        func isDelimiterEnd(at offset: Int) -> Bool {
            if offset >= count { return true }
            if buffer[offset] == 45 { return offset + 1 == count || buffer[offset + 1] == 45 }
            var i = offset
            while i < count && (buffer[i] == 32 || buffer[i] == 9) { i += 1 }
            if i == count { return true }
            return buffer[i] == 13 && (i + 1 == count || buffer[i + 1] == 10)
        }

        /// The offset of the next CRLF--boundary that is a real delimiter, searching from
        /// `start`. Boyer-Moore-Horspool: the window's last byte picks the shift, so typical
        /// data is skipped `delimiter.count` bytes at a time and the worst case stays linear
        /// (at most `delimiter.count` comparisons per byte, and the delimiter is ≤ 74 bytes).
        func findDelimiter(from start: Int) -> Int? {
            guard let base = buffer.baseAddress else { return nil }
            let length = delimiter.count
            let lastByte = delimiter[length - 1]
            return shifts.withUnsafeBufferPointer { table -> Int? in
                delimiter.withUnsafeBufferPointer { needle -> Int? in
                    var i = start
                    let lastStart = count - length
                    while i <= lastStart {
                        let byte = base[i + length - 1]
                        if byte == lastByte && memcmp(base + i, needle.baseAddress!, length - 1) == 0
                            && isDelimiterEnd(at: i + length) {
                            return i
                        }
                        i += table[Int(byte)]
                    }
                    return nil
                }
            }
        }

        /// Reads header lines up to the empty line.
        func readHeaders(at position: inout Int, partNumber: Int) throws -> HTTPHeaders {
            guard let base = buffer.baseAddress else {
                throw MultipartError(.truncated, "The body ends inside the headers of part \(partNumber).")
            }
            var headers = HTTPHeaders()
            let start = position
            while true {
                let used = position - start
                let window = min(count - position, limits.maxPartHeaderBytes - used)
                guard window > 0, let hit = memchr(base + position, 10, window) else {
                    if count - position < limits.maxPartHeaderBytes - used {
                        throw MultipartError(.truncated,
                            "The body ends inside the headers of part \(partNumber); it was truncated.")
                    }
                    throw MultipartError(.partHeadersTooLarge,
                        "The headers of part \(partNumber) exceed \(limits.maxPartHeaderBytes) bytes.")
                }
                let lf = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                guard lf > position, buffer[lf - 1] == 13 else {
                    throw MultipartError(.malformedPart, "A header line of part \(partNumber) does not end with CRLF.")
                }
                let lineEnd = lf - 1
                defer { position = lf + 1 }
                if lineEnd == position {
                    position = lf + 1
                    return headers
                }
                let line = buffer[position..<lineEnd]
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > position,
                      buffer[position..<colon].allSatisfy(HTTPRequestParser.isTokenByte) else {
                    throw MultipartError(.malformedPart,
                        "A header line of part \(partNumber) is not 'Name: value' (folded lines are not allowed).")
                }
                if line.contains(where: { ($0 < 32 && $0 != 9) || $0 == 127 }) {
                    throw MultipartError(.malformedPart, "A header of part \(partNumber) contains a control character.")
                }
                let name = String(decoding: buffer[position..<colon], as: UTF8.self)
                let value = String(decoding: buffer[(colon + 1)..<lineEnd], as: UTF8.self).trimmingHTTPWhitespace()
                headers.add(name: name, value: value)
                if headers.count > limits.maxPartHeaderCount {
                    throw MultipartError(.partHeadersTooLarge,
                        "Part \(partNumber) has more than \(limits.maxPartHeaderCount) header fields.")
                }
            }
        }

        func makePart(headers: HTTPHeaders, body: Data, number: Int) throws -> Part {
            guard let disposition = headers["Content-Disposition"] else {
                throw MultipartError(.malformedPart,
                    "Part \(number) has no Content-Disposition header; each part needs 'Content-Disposition: form-data; name=\"…\"'.")
            }
            guard let parsed = HeaderParameters(disposition), parsed.value.asciiLowercased() == "form-data" else {
                throw MultipartError(.malformedPart,
                    "Part \(number) has a malformed Content-Disposition; expected 'form-data; name=\"…\"'.")
            }
            guard let name = parsed["name"] else {
                throw MultipartError(.malformedPart, "Part \(number) has no name parameter in its Content-Disposition.")
            }
            let filename = parsed["filename*"].flatMap(HeaderParameters.decodeExtendedValue) ?? parsed["filename"]
            return Part(name: name, filename: filename, contentType: headers["Content-Type"], headers: headers, body: body)
        }
    }
}
