import Foundation
import XCTest
@testable import HTTP

final class TLSTests: XCTestCase {
    /// Runs a command, returning its exit status and standard output.
    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private func tool(_ name: String) -> String? {
        ["/usr/bin/\(name)", "/usr/local/bin/\(name)", "/bin/\(name)"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    func testTLSRoundTripWithSelfSignedCertificate() throws {
        guard let openssl = tool("openssl"), let curl = tool("curl") else {
            throw XCTSkip("openssl and curl are needed for the TLS round trip")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("http-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = directory.appendingPathComponent("k.pem").path
        let certificate = directory.appendingPathComponent("c.pem").path
        let generated = try run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                          "-out", certificate, "-days", "1", "-subj", "/CN=localhost"])
        XCTAssertEqual(generated.status, 0)

        let server = try TestServers.start {
            $0.tls = .init(certificatePath: certificate, privateKeyPath: key)
        }
        defer { server.shutdown(gracePeriod: 1) }
        let base = "https://127.0.0.1:\(server.boundPort)"
        // Two requests on one connection (curl reuses it), one with a body.
        let result = try run(curl, ["-k", "-s", "--max-time", "10", "--http1.1",
                                    "\(base)/first?x=1", "--next", "-k", "-s", "--max-time", "10", "--http1.1",
                                    "-d", "posted body", "\(base)/second"])
        XCTAssertEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("\"path\":\"/first\""), result.output)
        XCTAssertTrue(result.output.contains("\"body\":\"posted body\""), result.output)

        // A plain-text request to the TLS port fails the handshake without hurting the server.
        let plain = try RawClient(port: server.boundPort)
        plain.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertNotNil(plain.readUntilClosed(timeout: 5))
        let again = try run(curl, ["-k", "-s", "--max-time", "10", "\(base)/again"])
        XCTAssertTrue(again.output.contains("\"path\":\"/again\""))
    }

    func testMissingCertificateFailsToStart() {
        let server = HTTPServer(configuration: .init(port: 0, tls: .init(certificatePath: "/nonexistent/c.pem",
                                                                          privateKeyPath: "/nonexistent/k.pem"))) { _ in .text("") }
        XCTAssertThrowsError(try server.start()) { error in
            guard case .tls = error as? HTTPServerError else { return XCTFail("\(error)") }
        }
    }
}
