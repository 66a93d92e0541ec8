/// Parses header values of the form `value; name=token; name="quoted string"` (Content-Type,
/// Content-Disposition; RFC 9110 §5.6.6).
struct HeaderParameters {
    /// The value before the first `;`, trimmed.
    let value: String
    /// Parameters in order, names lowercased, quoted values unescaped.
    let parameters: [(name: String, value: String)]

    /// The first parameter named `name` (case-insensitive).
    subscript(name: String) -> String? {
        let lower = name.asciiLowercased()
        return parameters.first { $0.name == lower }?.value
    }

    /// Returns `nil` when a parameter is malformed (missing `=`, empty name, unterminated quote).
    init?(_ text: String) {
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count && bytes[i] != UInt8(ascii: ";") { i += 1 }
        value = String(decoding: bytes[0..<i], as: UTF8.self).trimmingHTTPWhitespace()
        var parameters: [(name: String, value: String)] = []
        func skipWhitespace() {
            while i < bytes.count && (bytes[i] == 32 || bytes[i] == 9) { i += 1 }
        }
        while true {
            skipWhitespace()
            if i >= bytes.count { break }
            guard bytes[i] == UInt8(ascii: ";") else { return nil }
            i += 1
            skipWhitespace()
            if i >= bytes.count { break }
            if bytes[i] == UInt8(ascii: ";") { continue }
            let nameStart = i
            while i < bytes.count && HTTPRequestParser.isTokenByte(bytes[i]) { i += 1 }
            guard i > nameStart else { return nil }
            let name = String(decoding: bytes[nameStart..<i], as: UTF8.self).asciiLowercased()
            skipWhitespace()
            guard i < bytes.count && bytes[i] == UInt8(ascii: "=") else { return nil }
            i += 1
            skipWhitespace()
            var value: [UInt8] = []
            if i < bytes.count && bytes[i] == UInt8(ascii: "\"") {
                i += 1
                var closed = false
                while i < bytes.count {
                    let byte = bytes[i]
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        i += 1
                        break
                    }
                    // A backslash escapes only '"' and '\'; elsewhere it is kept (Windows paths).
                    if byte == UInt8(ascii: "\\") && i + 1 < bytes.count
                        && (bytes[i + 1] == UInt8(ascii: "\"") || bytes[i + 1] == UInt8(ascii: "\\")) {
                        value.append(bytes[i + 1])
                        i += 2
                        continue
                    }
                    value.append(byte)
                    i += 1
                }
                guard closed else { return nil }
            } else {
                while i < bytes.count && bytes[i] != UInt8(ascii: ";") && bytes[i] != 32 && bytes[i] != 9 {
                    value.append(bytes[i])
                    i += 1
                }
            }
            parameters.append((name, String(decoding: value, as: UTF8.self)))
        }
        self.parameters = parameters
    }

    /// Decodes an RFC 8187 extended value (`UTF-8''na%C3%AFve.txt`); `nil` if malformed or
    /// not UTF-8/ISO-8859-1.
    static func decodeExtendedValue(_ text: String) -> String? {
        let pieces = text.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard pieces.count == 3 else { return nil }
        let charset = pieces[0].asciiLowercased()
        if charset == "utf-8" { return PercentEncoding.decode(pieces[2]) }
        if charset == "iso-8859-1" {
            guard let latin = PercentEncoding.decodeBytes(pieces[2]) else { return nil }
            return String(String.UnicodeScalarView(latin.map { Unicode.Scalar($0) }))
        }
        return nil
    }
}
