/// Serializes responses: the server's framing headers plus the handler's fields.
enum ResponseWriter {
    /// What the `Connection` header says.
    enum ConnectionHeader {
        case none
        case close
        case keepAlive
    }

    /// Fields the server controls; the handler's values for them are dropped.
    private static let managed: Set<String> = ["content-length", "transfer-encoding", "connection", "date", "keep-alive"]

    /// The status line and header section, and whether the body must follow.
    static func head(for response: HTTPResponse, isHEAD: Bool, connection: ConnectionHeader,
                     serverName: String?) -> (bytes: [UInt8], sendBody: Bool) {
        let reason = String(response.status.reasonPhrase.unicodeScalars.filter { $0.value >= 32 && $0.value != 127 })
        var text = "HTTP/1.1 \(response.status.code) \(reason)\r\n"
        var hasServer = false
        for field in response.headers {
            let lower = field.name.asciiLowercased()
            guard !managed.contains(lower), isValidName(field.name), isValidValue(field.value) else { continue }
            if lower == "server" { hasServer = true }
            text += "\(field.name): \(field.value)\r\n"
        }
        if !hasServer, let serverName { text += "Server: \(serverName)\r\n" }
        text += "Date: \(HTTPDate.string())\r\n"
        switch connection {
        case .none: break
        case .close: text += "Connection: close\r\n"
        case .keepAlive: text += "Connection: keep-alive\r\n"
        }
        let forbidsBody = response.status.forbidsBody
        if let file = response.bodyFile {
            if !forbidsBody { text += "Content-Length: \(file.count)\r\n" }
            text += "\r\n"
            return (Array(text.utf8), !forbidsBody && !isHEAD && file.count > 0)
        }
        if let headOnly = response.headOnlyLength {
            if !forbidsBody, let length = headOnly { text += "Content-Length: \(length)\r\n" }
        } else if !forbidsBody {
            text += "Content-Length: \(response.body.count)\r\n"
        }
        text += "\r\n"
        return (Array(text.utf8), !forbidsBody && !isHEAD && !response.body.isEmpty)
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(HTTPRequestParser.isTokenByte)
    }

    static func isValidValue(_ value: String) -> Bool {
        !value.utf8.contains { ($0 < 32 && $0 != 9) || $0 == 127 }
    }
}
