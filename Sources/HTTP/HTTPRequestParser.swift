#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An incremental, bounded HTTP/1.1 request parser (RFC 9112).
///
/// Feed bytes with `append(_:)` as they arrive and call `next()` until it returns
/// `.needMoreData`. Requests on one connection come out strictly in order; bytes after a
/// request stay buffered for the next one (pipelining). Memory is bounded by the limits: the
/// head by `maxHeaderBytes`, the body by `maxBodyBytes`, plus at most one appended block.
///
/// After `.failure` the parser stays failed; the connection must be closed because the
/// framing of the byte stream can no longer be trusted.
public struct HTTPRequestParser: Sendable {
    /// Size limits enforced while parsing.
    public struct Limits: Sendable, Equatable {
        /// Maximum bytes of request line plus header section (and, separately, of trailers).
        public var maxHeaderBytes: Int
        /// Maximum number of header fields (and, separately, of trailer fields).
        public var maxHeaderCount: Int
        /// Maximum body size after de-chunking.
        public var maxBodyBytes: Int
        /// Maximum length of one chunk-size line including extensions.
        public var maxChunkLineBytes: Int

        /// Creates limits; the defaults are 16 KiB of head, 100 fields, 512 MiB of body and
        /// 4 KiB per chunk-size line.
        public init(maxHeaderBytes: Int = 16 * 1024, maxHeaderCount: Int = 100,
                    maxBodyBytes: Int = 512 * 1024 * 1024, maxChunkLineBytes: Int = 4096) {
            self.maxHeaderBytes = maxHeaderBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxBodyBytes = maxBodyBytes
            self.maxChunkLineBytes = maxChunkLineBytes
        }
    }

    /// What `next()` found.
    public enum Event: Sendable {
        /// More bytes are needed before anything else can be reported.
        case needMoreData
        /// The head of a request whose body follows (reported once, before the body is read,
        /// so `Expect: 100-continue` can be answered).
        case head(HTTPRequestHead)
        /// A complete request with its de-chunked body: in memory, or (with a spool policy and
        /// a body past its memory limit) in `file`, with `body` empty.
        case request(HTTPRequestHead, body: [UInt8], file: SpooledBody?)
        /// The request is malformed or over a limit; answer with the error and close.
        case failure(HTTPParseError)
    }

    private enum State: Sendable {
        case requestLine
        case headerLines
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }

    private enum LineResult {
        case line(Range<Int>, consumed: Int)
        case incomplete
        case tooLong
    }

    /// The limits this parser enforces.
    public let limits: Limits
    /// Where large bodies go instead of memory; nil keeps every body in memory.
    public var spoolPolicy: BodySpoolPolicy?

    private var buffer: [UInt8] = []
    private var position = 0              // first unconsumed byte in `buffer`
    private var scanned = 0               // bytes after `position` known to contain no LF
    private var state = State.requestLine
    private var headBytes = 0             // head bytes consumed for the current request
    private var lineValidated = 0         // bytes of a partial request line already checked
    private var sawSpaceInRequestLine = false
    private var method = ""
    private var target = ""
    private var version = HTTPVersion.http1_1
    private var fields: [HTTPHeaders.Field] = []
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var bodyFile: SpooledBody?
    private var bodyCount = 0
    private var trailerBytes = 0
    private var trailerCount = 0

    /// Creates a parser with the given limits.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Whether bytes of a request that is not yet complete have been received (including
    /// pipelined bytes waiting in the buffer), or the parser has failed.
    public var hasPartialRequest: Bool {
        if case .requestLine = state { return headBytes > 0 || position < buffer.count }
        return true
    }

    /// Whether the parser is inside a request's head (request line or headers), as opposed to
    /// its body, trailers, or between requests.
    public var isReadingHead: Bool {
        switch state {
        case .requestLine: return headBytes > 0 || position < buffer.count
        case .headerLines: return true
        default: return false
        }
    }

    /// Whether received bytes are waiting to be parsed.
    public var hasBufferedBytes: Bool { position < buffer.count }

    /// Appends received bytes.
    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Appends received bytes.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var input = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        if position == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 256 * 1024)
            position = 0
            scanned = 0
            lineValidated = 0
            // Body bytes go straight to the body when nothing is pending.
            switch state {
            case .fixedBody(let remaining):
                let take = min(remaining, input.count)
                if let error = appendBody(UnsafeBufferPointer(rebasing: input[0..<take])) { _ = fail(error); return }
                state = .fixedBody(remaining: remaining - take)
                input = UnsafeBufferPointer(rebasing: input[take...])
            case .chunkData(let remaining):
                let take = min(remaining, input.count)
                if let error = appendBody(UnsafeBufferPointer(rebasing: input[0..<take])) { _ = fail(error); return }
                state = .chunkData(remaining: remaining - take)
                input = UnsafeBufferPointer(rebasing: input[take...])
            default:
                break
            }
        } else if position >= 64 * 1024 {
            buffer.removeSubrange(0..<position)
            position = 0
        }
        if input.count > 0 { buffer.append(contentsOf: input) }
    }

    /// Parses as far as the buffered bytes allow and reports the next event.
    public mutating func next() -> Event {
        while true {
            switch state {
            case .failed(let error):
                return .failure(error)

            case .requestLine:
                switch takeLine(limit: limits.maxHeaderBytes - headBytes) {
                case .incomplete:
                    if let error = validatePartialRequestLine() { return fail(error) }
                    return .needMoreData
                case .tooLong:
                    return fail(HTTPParseError(.uriTooLong,
                        "The request line is longer than \(limits.maxHeaderBytes) bytes; shorten the request target."))
                case .line(let range, let consumed):
                    headBytes += consumed
                    if range.isEmpty { continue }   // empty lines before a request are ignored
                    if let error = parseRequestLine(range) { return fail(error) }
                    state = .headerLines
                }

            case .headerLines:
                switch takeLine(limit: limits.maxHeaderBytes - headBytes) {
                case .incomplete:
                    return .needMoreData
                case .tooLong:
                    return fail(HTTPParseError(.requestHeaderFieldsTooLarge,
                        "The request line and headers exceed \(limits.maxHeaderBytes) bytes; send fewer or shorter headers."))
                case .line(let range, let consumed):
                    headBytes += consumed
                    if range.isEmpty { return finishHead() }
                    switch parseField(range, kind: "Header") {
                    case .failure(let error): return fail(error)
                    case .success(let field):
                        fields.append(field)
                        if fields.count > limits.maxHeaderCount {
                            return fail(HTTPParseError(.requestHeaderFieldsTooLarge,
                                "The request has more than \(limits.maxHeaderCount) header fields; send fewer headers."))
                        }
                    }
                }

            case .fixedBody(let remaining):
                if remaining > 0 {
                    let take = min(remaining, buffer.count - position)
                    if take == 0 { return .needMoreData }
                    if let error = appendBuffered(take) { return fail(error) }
                    position += take
                    state = .fixedBody(remaining: remaining - take)
                    if take < remaining { return .needMoreData }
                }
                return completeRequest()

            case .chunkSize:
                if position < buffer.count, PercentEncoding.hexValue(buffer[position]) == nil {
                    return fail(HTTPParseError(.badRequest,
                        "A chunk must start with its size in hexadecimal digits; the chunked body is malformed."))
                }
                switch takeLine(limit: limits.maxChunkLineBytes) {
                case .incomplete:
                    return .needMoreData
                case .tooLong:
                    return fail(HTTPParseError(.badRequest,
                        "A chunk-size line is longer than \(limits.maxChunkLineBytes) bytes; shorten the chunk extensions."))
                case .line(let range, _):
                    if let error = parseChunkSize(range) { return fail(error) }
                }

            case .chunkData(let remaining):
                if remaining > 0 {
                    let take = min(remaining, buffer.count - position)
                    if take == 0 { return .needMoreData }
                    if let error = appendBuffered(take) { return fail(error) }
                    position += take
                    state = .chunkData(remaining: remaining - take)
                    if take < remaining { return .needMoreData }
                }
                state = .chunkDataEnd

            case .chunkDataEnd:
                let available = buffer.count - position
                if available == 0 { return .needMoreData }
                if buffer[position] != 13 || (available >= 2 && buffer[position + 1] != 10) {
                    return fail(HTTPParseError(.badRequest,
                        "Chunk data must be followed by CRLF; a chunk size does not match its data."))
                }
                if available < 2 { return .needMoreData }
                position += 2
                state = .chunkSize

            case .trailers:
                switch takeLine(limit: limits.maxHeaderBytes - trailerBytes) {
                case .incomplete:
                    return .needMoreData
                case .tooLong:
                    return fail(HTTPParseError(.requestHeaderFieldsTooLarge,
                        "The trailer section exceeds \(limits.maxHeaderBytes) bytes; send fewer or shorter trailers."))
                case .line(let range, let consumed):
                    trailerBytes += consumed
                    if range.isEmpty { return completeRequest() }
                    if case .failure(let error) = parseField(range, kind: "Trailer") { return fail(error) }
                    trailerCount += 1
                    if trailerCount > limits.maxHeaderCount {
                        return fail(HTTPParseError(.requestHeaderFieldsTooLarge,
                            "The request has more than \(limits.maxHeaderCount) trailer fields; send fewer trailers."))
                    }
                }
            }
        }
    }

    // MARK: - Lines

    /// Takes the next LF-terminated line (a preceding CR is stripped from the range).
    /// `limit` bounds the line length including its terminator.
    private mutating func takeLine(limit: Int) -> LineResult {
        let available = buffer.count - position
        if scanned < available {
            let from = position + scanned
            let found: Int? = buffer.withUnsafeBufferPointer { raw -> Int? in
                guard let base = raw.baseAddress,
                      let hit = memchr(base + from, 10, available - scanned) else { return nil }
                return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            }
            if let lf = found {
                let consumed = lf + 1 - position
                if consumed > limit { return .tooLong }
                var end = lf
                if end > position && buffer[end - 1] == 13 { end -= 1 }
                let range = position..<end
                position = lf + 1
                scanned = 0
                lineValidated = 0
                return .line(range, consumed: consumed)
            }
            scanned = available
        }
        return available > limit ? .tooLong : .incomplete
    }

    /// Rejects garbage early: a partial request line must begin with a method token and
    /// contain only visible ASCII and spaces.
    private mutating func validatePartialRequestLine() -> HTTPParseError? {
        let end = buffer.count
        var i = position + lineValidated
        while i < end {
            let byte = buffer[i]
            let pendingCR = byte == 13 && i == end - 1
            if !sawSpaceInRequestLine {
                if byte == 32 {
                    if i == position {
                        return HTTPParseError(.badRequest, "The request line must start with a method such as GET, not a space.")
                    }
                    sawSpaceInRequestLine = true
                } else if !Self.isTokenByte(byte) && !pendingCR {
                    return HTTPParseError(.badRequest,
                        "This is not an HTTP/1.1 request: the request line must start with a method token such as GET or POST.")
                }
            } else if (byte < 32 || byte >= 127) && !pendingCR {
                return HTTPParseError(.badRequest,
                    "The request line contains control or non-ASCII bytes; percent-encode the request target.")
            }
            i += 1
        }
        lineValidated = end - position
        return nil
    }

    // MARK: - Head

    private mutating func parseRequestLine(_ range: Range<Int>) -> HTTPParseError? {
        let line = buffer[range]
        let spaces = line.indices.filter { line[$0] == 32 }
        guard spaces.count == 2, spaces[0] > range.lowerBound, spaces[1] > spaces[0] + 1,
              spaces[1] < range.upperBound - 1 else {
            return HTTPParseError(.badRequest,
                "The request line must be 'METHOD SP request-target SP HTTP-version', e.g. 'GET /path HTTP/1.1'.")
        }
        let methodBytes = line[range.lowerBound..<spaces[0]]
        let targetBytes = line[(spaces[0] + 1)..<spaces[1]]
        let versionBytes = Array(line[(spaces[1] + 1)...])

        guard methodBytes.allSatisfy(Self.isTokenByte) else {
            return HTTPParseError(.badRequest, "The method is not a valid token; use a method such as GET or POST.")
        }
        method = String(decoding: methodBytes, as: UTF8.self)

        let prefix: [UInt8] = Array("HTTP/".utf8)
        guard versionBytes.count >= 6, Array(versionBytes[0..<5]) == prefix else {
            return HTTPParseError(.badRequest, "The request line must end with the protocol version, e.g. HTTP/1.1.")
        }
        let number = versionBytes[5...]
        if number.count == 3, Self.isDigit(number[5]), number[6] == UInt8(ascii: "."), Self.isDigit(number[7]) {
            let major = Int(number[5] - 48), minor = Int(number[7] - 48)
            guard major == 1 else {
                return HTTPParseError(.httpVersionNotSupported,
                    "HTTP/\(major).\(minor) is not supported by this server; use HTTP/1.1.")
            }
            version = minor == 0 ? .http1_0 : .http1_1
        } else if Self.looksLikeVersionNumber(number) {
            return HTTPParseError(.httpVersionNotSupported,
                "This HTTP version is not supported by this server; use HTTP/1.1.")
        } else {
            return HTTPParseError(.badRequest, "The protocol version is malformed; use HTTP/1.1.")
        }

        for byte in targetBytes where byte <= 32 || byte >= 127 || byte == UInt8(ascii: "#") {
            return HTTPParseError(.badRequest,
                "The request target contains a character that must be percent-encoded (spaces, controls, non-ASCII or '#').")
        }
        target = String(decoding: targetBytes, as: UTF8.self)
        let first = targetBytes.first!
        let lower = target.prefix(8).asciiLowercased()
        if first == UInt8(ascii: "/") || lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let path = HTTPRequest.splitTarget(target).path
            guard PercentEncoding.decode(path) != nil else {
                return HTTPParseError(.badRequest,
                    "The request path has a malformed percent-escape or escapes bytes that are not UTF-8.")
            }
        } else if target == "*" {
            guard method == "OPTIONS" else {
                return HTTPParseError(.badRequest, "The target '*' is only allowed with OPTIONS.")
            }
        } else if method == "CONNECT" {
            return HTTPParseError(.notImplemented, "CONNECT is not supported by this server.")
        } else {
            return HTTPParseError(.badRequest, "The request target must be an absolute path such as /items?id=1.")
        }
        return nil
    }

    private func parseField(_ range: Range<Int>, kind: String) -> Result<HTTPHeaders.Field, HTTPParseError> {
        let first = buffer[range.lowerBound]
        if first == 32 || first == 9 {
            return .failure(HTTPParseError(.badRequest,
                "\(kind) line starts with whitespace (obsolete line folding); send each field on a single line."))
        }
        guard let colon = buffer[range].firstIndex(of: UInt8(ascii: ":")) else {
            return .failure(HTTPParseError(.badRequest, "\(kind) line has no colon; each field must be 'Name: value'."))
        }
        let nameBytes = buffer[range.lowerBound..<colon]
        guard !nameBytes.isEmpty, nameBytes.allSatisfy(Self.isTokenByte) else {
            return .failure(HTTPParseError(.badRequest,
                "\(kind) field name is not a valid token; no whitespace is allowed before the colon."))
        }
        var start = colon + 1, end = range.upperBound
        while start < end, buffer[start] == 32 || buffer[start] == 9 { start += 1 }
        while end > start, buffer[end - 1] == 32 || buffer[end - 1] == 9 { end -= 1 }
        for byte in buffer[start..<end] where (byte < 32 && byte != 9) || byte == 127 {
            let name = String(decoding: nameBytes.prefix(64), as: UTF8.self)
            return .failure(HTTPParseError(.badRequest,
                "\(kind) field '\(name)' contains a control character (CR, LF, NUL or similar) in its value."))
        }
        return .success(HTTPHeaders.Field(name: String(decoding: nameBytes, as: UTF8.self),
                                          value: String(decoding: buffer[start..<end], as: UTF8.self)))
    }

    private mutating func finishHead() -> Event {
        let headers = HTTPHeaders(fields: fields)
        let hosts = headers.values(for: "Host").count
        if hosts > 1 {
            return fail(HTTPParseError(.badRequest, "The request has more than one Host header; send exactly one."))
        }
        if hosts == 0 && version == .http1_1 {
            return fail(HTTPParseError(.badRequest, "HTTP/1.1 requests must carry a Host header."))
        }

        var framing = HTTPRequestHead.Framing.none
        let lengths = headers.values(for: "Content-Length")
        let encodings = headers.values(for: "Transfer-Encoding")
        if !encodings.isEmpty {
            if !lengths.isEmpty {
                return fail(HTTPParseError(.badRequest,
                    "The request has both Content-Length and Transfer-Encoding; send only one of them."))
            }
            if version == .http1_0 {
                return fail(HTTPParseError(.badRequest,
                    "Transfer-Encoding is not defined for HTTP/1.0; send Content-Length or use HTTP/1.1."))
            }
            let codings = headers.listValues(for: "Transfer-Encoding").map { $0.asciiLowercased() }
            if let other = codings.first(where: { $0 != "chunked" }) {
                let shown = String(other.prefix(40))
                return fail(HTTPParseError(.notImplemented,
                    "Transfer coding '\(shown)' is not supported; send the body with 'Transfer-Encoding: chunked' or Content-Length."))
            }
            if codings.count != 1 {
                return fail(HTTPParseError(.badRequest,
                    "Transfer-Encoding must list 'chunked' exactly once."))
            }
            framing = .chunked
        } else if !lengths.isEmpty {
            if lengths.count > 1 {
                return fail(HTTPParseError(.badRequest, "Content-Length appears more than once; send it exactly once."))
            }
            let digits = Array(lengths[0].utf8)
            guard !digits.isEmpty, digits.allSatisfy(Self.isDigit) else {
                return fail(HTTPParseError(.badRequest,
                    "Content-Length must be a single non-negative decimal integer (digits only)."))
            }
            let significant = digits.drop { $0 == UInt8(ascii: "0") }
            guard significant.count <= 18, let length = Int(String(decoding: digits, as: UTF8.self)),
                  length <= limits.maxBodyBytes else {
                return fail(HTTPParseError(.contentTooLarge,
                    "The body (Content-Length \(String(decoding: digits.prefix(24), as: UTF8.self))) is larger than the \(limits.maxBodyBytes) bytes this server accepts."))
            }
            if length > 0 { framing = .contentLength(length) }
        }

        let connection = headers.listValues(for: "Connection").map { $0.asciiLowercased() }
        let keepAlive = version == .http1_1
            ? !connection.contains("close")
            : connection.contains("keep-alive") && !connection.contains("close")

        var expectsContinue = false
        let expectations = headers.values(for: "Expect")
        if !expectations.isEmpty {
            guard expectations.count == 1, expectations[0].asciiLowercased() == "100-continue" else {
                return fail(HTTPParseError(.expectationFailed, "Only 'Expect: 100-continue' is supported."))
            }
            expectsContinue = version == .http1_1 && framing != .none
        }

        let parsed = HTTPRequestHead(method: method, target: target, version: version, headers: headers,
                                     framing: framing, keepAlive: keepAlive, expectsContinue: expectsContinue)
        head = parsed
        body = []
        bodyFile = nil
        bodyCount = 0
        switch framing {
        case .none:
            return completeRequest()
        case .contentLength(let length):
            if let spoolPolicy, length > spoolPolicy.memoryLimit {
                do { bodyFile = try SpooledBody(directory: spoolPolicy.directory) } catch let error as HTTPParseError {
                    return fail(error)
                } catch {
                    return fail(HTTPParseError(.serviceUnavailable, "The server cannot store the upload right now; retry later."))
                }
            } else {
                body.reserveCapacity(min(length, 1 << 20))
            }
            state = .fixedBody(remaining: length)
        case .chunked:
            state = .chunkSize
        }
        return .head(parsed)
    }

    // MARK: - Chunked body

    private mutating func parseChunkSize(_ range: Range<Int>) -> HTTPParseError? {
        var i = range.lowerBound
        var size = 0
        while i < range.upperBound, let digit = PercentEncoding.hexValue(buffer[i]) {
            let (shifted, overflow) = size.multipliedReportingOverflow(by: 16)
            if overflow {
                return HTTPParseError(.contentTooLarge,
                    "A chunk size overflows; the body may be at most \(limits.maxBodyBytes) bytes.")
            }
            size = shifted + Int(digit)
            i += 1
        }
        if i == range.lowerBound {
            return HTTPParseError(.badRequest, "A chunk size is not a hexadecimal number.")
        }
        while i < range.upperBound, buffer[i] == 32 || buffer[i] == 9 { i += 1 }
        if i < range.upperBound {
            guard buffer[i] == UInt8(ascii: ";") else {
                return HTTPParseError(.badRequest,
                    "Unexpected characters after a chunk size; only ';' chunk extensions may follow it.")
            }
            for byte in buffer[i..<range.upperBound] where (byte < 32 && byte != 9) || byte == 127 {
                return HTTPParseError(.badRequest, "A chunk extension contains a control character.")
            }
        }
        if size > limits.maxBodyBytes - bodyCount {
            return HTTPParseError(.contentTooLarge,
                "The chunked body is larger than the \(limits.maxBodyBytes) bytes this server accepts.")
        }
        if size == 0 {
            trailerBytes = 0
            trailerCount = 0
            state = .trailers
        } else {
            state = .chunkData(remaining: size)
        }
        return nil
    }

    // MARK: - Completion

    /// Adds body bytes to memory or to the spool file (opened when a chunked body outgrows
    /// the memory limit); an error when the file cannot be written.
    private mutating func appendBody(_ bytes: UnsafeBufferPointer<UInt8>) -> HTTPParseError? {
        bodyCount += bytes.count
        if bodyFile == nil, let spoolPolicy, body.count + bytes.count > spoolPolicy.memoryLimit {
            do {
                let file = try SpooledBody(directory: spoolPolicy.directory)
                try body.withUnsafeBufferPointer { try file.append($0) }
                body = []
                bodyFile = file
            } catch let error as HTTPParseError {
                return error
            } catch {
                return HTTPParseError(.serviceUnavailable, "The server cannot store the upload right now; retry later.")
            }
        }
        if let bodyFile {
            do { try bodyFile.append(bytes) } catch let error as HTTPParseError { return error } catch {
                return HTTPParseError(.serviceUnavailable, "The server could not store the upload; retry later.")
            }
            return nil
        }
        body.append(contentsOf: bytes)
        return nil
    }

    /// Moves `count` buffered bytes at `position` into the body.
    private mutating func appendBuffered(_ count: Int) -> HTTPParseError? {
        let start = position
        let copy = buffer
        return copy.withUnsafeBufferPointer { appendBody(UnsafeBufferPointer(rebasing: $0[start..<(start + count)])) }
    }

    private mutating func completeRequest() -> Event {
        guard let finished = head else {
            return fail(HTTPParseError(.internalServerError, "The request parser lost the request head."))
        }
        let content = body
        let file = bodyFile
        bodyFile = nil
        bodyCount = 0
        body = []
        head = nil
        fields = []
        headBytes = 0
        lineValidated = 0
        sawSpaceInRequestLine = false
        state = .requestLine
        return .request(finished, body: content, file: file)
    }

    private mutating func fail(_ error: HTTPParseError) -> Event {
        state = .failed(error)
        body = []
        bodyFile = nil
        fields = []
        return .failure(error)
    }

    // MARK: - Character classes

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    /// `1*DIGIT [ "." 1*DIGIT ]`: a version number we do not speak (e.g. `2`, `3.0`, `10.1`).
    private static func looksLikeVersionNumber(_ bytes: ArraySlice<UInt8>) -> Bool {
        let pieces = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return (1...2).contains(pieces.count) && pieces.allSatisfy { !$0.isEmpty && $0.allSatisfy(isDigit) }
    }
}
