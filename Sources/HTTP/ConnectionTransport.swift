#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The byte stream of one accepted connection: plain TCP or TLS over it.
protocol ConnectionTransport: AnyObject {
    /// The underlying socket.
    var fd: Int32 { get }
    /// Completes any protocol handshake; `false` closes the connection.
    func handshake(deadline: Deadline) -> Bool
    /// Reads some bytes; watches `wakeFD` (if any) to return `.woken` early.
    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline, wakeFD: Int32?) -> ReadOutcome
    /// Writes every byte, or returns `false` when the peer is gone or accepted no byte for
    /// `stallTimeout` seconds.
    func write(_ bytes: UnsafeRawBufferPointer, stallTimeout: Double) -> Bool
    /// Says goodbye at the protocol level (TLS close_notify); best effort, never blocks.
    func closeNotify()
}

/// Plain TCP.
final class PlainTransport: ConnectionTransport {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }

    func handshake(deadline: Deadline) -> Bool { true }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline, wakeFD: Int32?) -> ReadOutcome {
        SocketIO.read(fd: fd, into: buffer, deadline: deadline, wakeFD: wakeFD)
    }

    func write(_ bytes: UnsafeRawBufferPointer, stallTimeout: Double) -> Bool {
        SocketIO.writeAll(fd: fd, bytes, stallTimeout: stallTimeout)
    }

    func closeNotify() {}
}
