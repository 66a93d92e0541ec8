import COpenSSL

/// SHA-256, used to name masks by their content: OpenSSL's digest (libcrypto is linked for TLS
/// anyway), behind the small streaming interface the mask store needs.
public struct SHA256: ~Copyable {
    /// The OpenSSL digest context; noncopyable so that no two hashers share (or double-free) it.
    private let context: OpaquePointer

    /// A fresh hasher.
    public init() {
        // Allocation or init fails only when the process is out of memory.
        guard let p = EVP_MD_CTX_new(), EVP_DigestInit_ex(p, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL could not start a SHA-256 digest")
        }
        context = p
    }

    deinit { EVP_MD_CTX_free(context) }

    /// The digest of `bytes` as 64 lowercase hex characters.
    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    /// Feeds more bytes.
    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let fed = bytes.withContiguousStorageIfAvailable { buffer in
            EVP_DigestUpdate(context, buffer.baseAddress, buffer.count)
        }
        if fed == nil {
            let copy = Array(bytes)
            _ = copy.withUnsafeBufferPointer { EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        }
    }

    /// The 32-byte digest (the hasher should not be used afterwards).
    public mutating func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = digest.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        return digest
    }

    /// The digest as 64 lowercase hex characters.
    public mutating func finalizeHex() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in finalize() {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
