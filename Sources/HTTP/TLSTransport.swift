import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A server-side OpenSSL context loaded from PEM files; shared by all connections and freed
/// when the last one is done with it.
final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer

    /// Loads the certificate chain and private key and checks that they match.
    init(certificatePath: String, privateKeyPath: String) throws {
        guard let method = TLS_server_method(), let context = SSL_CTX_new(method) else {
            throw HTTPServerError.tls("Could not create a TLS context: \(TLSContext.errorQueue())")
        }
        self.context = context
        _ = copenssl_ctx_set_min_tls12(context)
        _ = copenssl_ctx_set_modes(context)
        _ = copenssl_ctx_disable_renegotiation(context)
        ERR_clear_error()
        guard SSL_CTX_use_certificate_chain_file(context, certificatePath) == 1 else {
            throw HTTPServerError.tls("Could not load the certificate '\(certificatePath)': \(TLSContext.errorQueue())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw HTTPServerError.tls("Could not load the private key '\(privateKeyPath)': \(TLSContext.errorQueue())")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw HTTPServerError.tls("The private key does not match the certificate: \(TLSContext.errorQueue())")
        }
    }

    deinit { SSL_CTX_free(context) }

    /// Drains OpenSSL's per-thread error queue into one line.
    static func errorQueue() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            messages.append(SocketIO.string(text))
        }
        return messages.isEmpty ? "unknown error" : messages.joined(separator: "; ")
    }
}

/// TLS over an accepted non-blocking socket (SSL_accept / SSL_read / SSL_write).
final class TLSTransport: ConnectionTransport {
    let fd: Int32
    private let ssl: OpaquePointer
    private let context: TLSContext   // keeps SSL_CTX alive while this connection uses it

    init?(fd: Int32, context: TLSContext) {
        guard let ssl = SSL_new(context.context) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else {
            SSL_free(ssl)
            return nil
        }
        self.fd = fd
        self.ssl = ssl
        self.context = context
    }

    deinit { SSL_free(ssl) }

    func handshake(deadline: Deadline) -> Bool {
        while true {
            ERR_clear_error()
            let result = SSL_accept(ssl)
            if result == 1 { return true }
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_READ:
                guard case .ready = SocketIO.wait(fd: fd, events: Int16(POLLIN), deadline: deadline) else { return false }
            case SSL_ERROR_WANT_WRITE:
                guard case .ready = SocketIO.wait(fd: fd, events: Int16(POLLOUT), deadline: deadline) else { return false }
            case SSL_ERROR_SYSCALL where errno == EINTR:
                continue
            default:
                ERR_clear_error()
                return false
            }
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline, wakeFD: Int32?) -> ReadOutcome {
        let count = Int32(min(buffer.count, Int(Int32.max)))
        while true {
            ERR_clear_error()
            let n = SSL_read(ssl, buffer.baseAddress, count)
            if n > 0 { return .bytes(Int(n)) }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_READ:
                switch SocketIO.wait(fd: fd, events: Int16(POLLIN), deadline: deadline, wakeFD: wakeFD) {
                case .ready: continue
                case .timedOut: return .timedOut
                case .woken: return .woken
                }
            case SSL_ERROR_WANT_WRITE:
                guard case .ready = SocketIO.wait(fd: fd, events: Int16(POLLOUT), deadline: deadline) else { return .timedOut }
            case SSL_ERROR_ZERO_RETURN:
                return .closed
            case SSL_ERROR_SYSCALL where errno == EINTR:
                continue
            case SSL_ERROR_SYSCALL:
                ERR_clear_error()
                return .closed   // peer vanished without close_notify
            default:
                ERR_clear_error()
                return .failed
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, stallTimeout: Double) -> Bool {
        guard var pointer = bytes.baseAddress else { return true }
        var remaining = bytes.count
        while remaining > 0 {
            ERR_clear_error()
            let n = SSL_write(ssl, pointer, Int32(min(remaining, 1 << 30)))
            if n > 0 {
                pointer += Int(n)
                remaining -= Int(n)
                continue
            }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_WRITE:
                guard case .ready = SocketIO.wait(fd: fd, events: Int16(POLLOUT), deadline: .after(stallTimeout)) else { return false }
            case SSL_ERROR_WANT_READ:
                guard case .ready = SocketIO.wait(fd: fd, events: Int16(POLLIN), deadline: .after(stallTimeout)) else { return false }
            case SSL_ERROR_SYSCALL where errno == EINTR:
                continue
            default:
                ERR_clear_error()
                return false
            }
        }
        return true
    }

    func closeNotify() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        ERR_clear_error()
    }
}
