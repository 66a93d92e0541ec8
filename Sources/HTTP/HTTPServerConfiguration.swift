extension HTTPServer {
    /// Listening address, limits and timeouts of an `HTTPServer`.
    public struct Configuration: Sendable {
        /// PEM files for HTTPS.
        public struct TLS: Sendable, Equatable {
            /// The certificate chain (leaf first), PEM.
            public var certificatePath: String
            /// The private key of the leaf certificate, PEM, unencrypted.
            public var privateKeyPath: String

            /// Creates a TLS configuration.
            public init(certificatePath: String, privateKeyPath: String) {
                self.certificatePath = certificatePath
                self.privateKeyPath = privateKeyPath
            }
        }

        /// Numeric address to listen on: `127.0.0.1` (default), `::1`, `0.0.0.0` or `::`
        /// (dual-stack). Host names are resolved and the first address is used.
        public var host: String
        /// TCP port; 0 lets the system pick a free one (read it from `boundPort`).
        public var port: Int
        /// Maximum bytes of request line plus headers (and of trailers); beyond: 431
        /// (414 when the request line alone is longer).
        public var maxHeaderBytes: Int
        /// Maximum number of header fields (and of trailer fields); beyond: 431.
        public var maxHeaderCount: Int
        /// Maximum request body in bytes; beyond: 413, decided from Content-Length before the
        /// body is read, or as soon as a chunked body grows past it.
        public var maxBodyBytes: Int
        /// Seconds allowed to receive one whole request (head and body), counted from its
        /// first byte; slower senders get 408 and the connection is closed.
        public var readTimeout: Double
        /// Seconds allowed to receive a request's head (request line and headers), counted from
        /// its first byte, and to complete a TLS handshake: a client that trickles its head
        /// gets 408 long before `readTimeout`.
        public var headTimeout: Double
        /// Seconds allowed to send one whole response; a client that reads too slowly is
        /// disconnected when it runs out (progress within `writeTimeout` is not enough).
        public var responseTimeout: Double
        /// Most simultaneous connections from one client address (IP, any port); beyond it the
        /// client's new connections get 503, so one host cannot take every slot.
        public var maxConnectionsPerClient: Int
        /// Where bodies too large for memory are written while they arrive; nil keeps every
        /// body in memory.
        public var bodySpool: BodySpoolPolicy?
        /// Seconds a connection may wait for the next request (keep-alive, or the first
        /// request after connecting) before it is closed silently.
        public var idleTimeout: Double
        /// Seconds a response write may make no progress (the client reads nothing) before
        /// the connection is dropped.
        public var writeTimeout: Double
        /// Maximum simultaneous connections; beyond it new connections get 503 and are closed.
        public var maxConnections: Int
        /// Listen backlog.
        public var backlog: Int32
        /// HTTPS when set; plain HTTP otherwise.
        public var tls: TLS?
        /// The `Server` header value, or `nil` to send none.
        public var serverName: String?

        /// Creates a configuration; every parameter has a default.
        public init(host: String = "127.0.0.1",
                    port: Int = 8080,
                    maxHeaderBytes: Int = 16 * 1024,
                    maxHeaderCount: Int = 100,
                    maxBodyBytes: Int = 512 * 1024 * 1024,
                    readTimeout: Double = 30,
                    headTimeout: Double = 10,
                    idleTimeout: Double = 60,
                    writeTimeout: Double = 30,
                    responseTimeout: Double = 600,
                    maxConnections: Int = 256,
                    maxConnectionsPerClient: Int = 64,
                    bodySpool: BodySpoolPolicy? = nil,
                    backlog: Int32 = 128,
                    tls: TLS? = nil,
                    serverName: String? = "swift-http") {
            self.host = host
            self.port = port
            self.maxHeaderBytes = maxHeaderBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxBodyBytes = maxBodyBytes
            self.readTimeout = readTimeout
            self.headTimeout = headTimeout
            self.responseTimeout = responseTimeout
            self.maxConnectionsPerClient = maxConnectionsPerClient
            self.bodySpool = bodySpool
            self.idleTimeout = idleTimeout
            self.writeTimeout = writeTimeout
            self.maxConnections = maxConnections
            self.backlog = backlog
            self.tls = tls
            self.serverName = serverName
        }

        /// The parser limits implied by this configuration.
        public var parserLimits: HTTPRequestParser.Limits {
            HTTPRequestParser.Limits(maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount,
                                     maxBodyBytes: maxBodyBytes)
        }

        /// Throws `HTTPServerError.invalidConfiguration` for out-of-range values.
        func validate() throws {
            func check(_ condition: Bool, _ message: String) throws {
                if !condition { throw HTTPServerError.invalidConfiguration(message) }
            }
            try check((0...65535).contains(port), "port must be 0...65535")
            try check(maxHeaderBytes >= 64, "maxHeaderBytes must be at least 64")
            try check(maxHeaderCount >= 1, "maxHeaderCount must be at least 1")
            try check(maxBodyBytes >= 0, "maxBodyBytes must not be negative")
            try check(readTimeout > 0 && idleTimeout > 0 && writeTimeout > 0 && headTimeout > 0 && responseTimeout > 0,
                      "timeouts must be positive")
            try check(maxConnections >= 1, "maxConnections must be at least 1")
            try check(maxConnectionsPerClient >= 1, "maxConnectionsPerClient must be at least 1")
            if let bodySpool {
                try check(bodySpool.memoryLimit >= 0, "bodySpool.memoryLimit must not be negative")
                try check(!bodySpool.directory.isEmpty, "bodySpool.directory must name a directory")
            }
            try check(backlog >= 1, "backlog must be at least 1")
            if let serverName {
                try check(!serverName.utf8.contains { $0 < 32 || $0 == 127 }, "serverName must not contain control characters")
            }
        }
    }
}
