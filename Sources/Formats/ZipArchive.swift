/// A zip archive read from memory (PKWARE APPNOTE: end-of-central-directory record, ZIP64
/// records and extra fields, central directory, local headers). Entries are stored (method 0)
/// or deflated (method 8); the reader checks every offset and size against the archive before
/// using it, rejects entries whose data overlap, and verifies CRC-32 when data are read.
/// Single-disk archives only; no encryption.
public struct ZipArchive: Sendable {
    static let format = "zip"

    public struct Entry: Sendable {
        public let name: String
        /// Compression method: 0 stored, 8 deflate (others are listed but cannot be read).
        public let method: UInt16
        public let compressedSize: Int
        public let uncompressedSize: Int
        public let crc32: UInt32
        let localHeaderOffset: Int
        /// General purpose bit flags (bit 0: encrypted).
        let flags: UInt16
        /// Where the entry's data start, from the local header's own name and extra lengths.
        let dataOffset: Int

        public var isEncrypted: Bool { flags & 0x0001 != 0 }
        /// True for folder entries ("name/").
        public var isDirectory: Bool { name.hasSuffix("/") }
    }

    /// The whole archive, as passed in (`dataRange(for:)` indexes into it).
    public let bytes: [UInt8]
    public let entries: [Entry]
    let limits: DecodeLimits

    static let localSignature: UInt32 = 0x0403_4B50
    static let centralSignature: UInt32 = 0x0201_4B50
    static let endSignature: UInt32 = 0x0605_4B50
    static let zip64EndSignature: UInt32 = 0x0606_4B50
    static let zip64LocatorSignature: UInt32 = 0x0706_4B50

    public init(_ bytes: [UInt8], limits: DecodeLimits = .default) throws {
        self.bytes = bytes
        self.limits = limits
        let format = Self.format
        if bytes.isEmpty { throw FormatError(format, "empty input: not a zip archive") }

        // End of central directory: 22 bytes plus a comment of up to 65535 bytes.
        guard let end = Self.findEndRecord(bytes) else {
            throw FormatError(format, "not a zip archive: no end-of-central-directory record in the last \(min(bytes.count, 22 + 65535)) bytes")
        }
        var r = ByteReader(bytes, format: format, offset: end + 4)
        let diskNumber = try r.readLE(UInt16.self)
        let directoryDisk = try r.readLE(UInt16.self)
        let entriesOnDisk = try r.readLE(UInt16.self)
        let totalEntries16 = try r.readLE(UInt16.self)
        let directorySize32 = try r.readLE(UInt32.self)
        let directoryOffset32 = try r.readLE(UInt32.self)

        var entryCount = Int(totalEntries16)
        var directorySize = Int(directorySize32)
        var directoryOffset = Int(directoryOffset32)
        var directoryLimit = end // the central directory must end before this offset

        // ZIP64: a locator just before the end record points to the ZIP64 end record.
        if end >= 20, Self.readUInt32(bytes, end - 20) == Self.zip64LocatorSignature {
            var l = ByteReader(bytes, format: format, offset: end - 16)
            let zip64Disk = try l.readLE(UInt32.self)
            let zip64Offset = try l.readLE(UInt64.self)
            let diskCount = try l.readLE(UInt32.self)
            guard zip64Disk == 0, diskCount <= 1 else {
                throw FormatError(format, "multi-disk (split) archives are not supported")
            }
            guard end - 20 >= 56, zip64Offset <= UInt64(end - 20 - 56) else {
                throw FormatError(format, "the ZIP64 end record offset \(zip64Offset) lies outside the archive")
            }
            let recordOffset = Int(zip64Offset)
            var z = ByteReader(bytes, format: format, offset: recordOffset)
            guard try z.readLE(UInt32.self, "ZIP64 end record") == Self.zip64EndSignature else {
                throw FormatError(format, "no ZIP64 end-of-central-directory record at offset \(recordOffset)")
            }
            let recordSize = try z.readLE(UInt64.self, "ZIP64 end record")
            guard recordSize >= 44, recordSize <= UInt64(end - 20 - recordOffset - 12) else {
                throw FormatError(format, "ZIP64 end record size \(recordSize) is inconsistent with the archive")
            }
            try z.skip(4, "ZIP64 end record") // versions made by / needed
            let disk = try z.readLE(UInt32.self, "ZIP64 end record")
            let dirDisk = try z.readLE(UInt32.self, "ZIP64 end record")
            let onDisk = try z.readLE(UInt64.self, "ZIP64 end record")
            let total = try z.readLE(UInt64.self, "ZIP64 end record")
            let size = try z.readLE(UInt64.self, "ZIP64 end record")
            let offset = try z.readLE(UInt64.self, "ZIP64 end record")
            guard disk == 0, dirDisk == 0, onDisk == total else {
                throw FormatError(format, "multi-disk (split) archives are not supported")
            }
            guard total <= UInt64(bytes.count), size <= UInt64(bytes.count), offset <= UInt64(bytes.count) else {
                throw FormatError(format, "ZIP64 end record declares \(total) entries, a \(size)-byte directory at offset \(offset): beyond the \(bytes.count)-byte archive")
            }
            entryCount = Int(total)
            directorySize = Int(size)
            directoryOffset = Int(offset)
            directoryLimit = recordOffset
        } else {
            guard diskNumber == 0, directoryDisk == 0, entriesOnDisk == totalEntries16 else {
                throw FormatError(format, "multi-disk (split) archives are not supported")
            }
            if totalEntries16 == 0xFFFF || directorySize32 == 0xFFFF_FFFF || directoryOffset32 == 0xFFFF_FFFF {
                throw FormatError(format, "the end record defers to a ZIP64 record, but there is no ZIP64 locator")
            }
        }

        guard directoryOffset <= directoryLimit, directorySize <= directoryLimit - directoryOffset else {
            throw FormatError(format, "the central directory (\(directorySize) bytes at offset \(directoryOffset)) does not lie before the end record at offset \(directoryLimit)")
        }
        // Every central header takes at least 46 bytes: bounds the entry count before allocating.
        guard entryCount <= directorySize / 46 else {
            throw FormatError(format, "\(entryCount) entries cannot fit in a \(directorySize)-byte central directory")
        }

        var list = [Entry]()
        list.reserveCapacity(entryCount)
        var c = ByteReader(bytes, format: format, offset: directoryOffset)
        let directoryEnd = directoryOffset + directorySize
        for index in 0 ..< entryCount {
            let entry = try Self.readCentralEntry(&c, index: index, directoryEnd: directoryEnd, bytes: bytes)
            list.append(entry)
        }

        // Entry data must lie before the central directory and must not overlap each other.
        let ordered = list.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        var previousEnd = 0
        var previousName = ""
        for entry in ordered {
            guard entry.localHeaderOffset >= previousEnd else {
                throw FormatError(format, "entry '\(entry.name)' (local header at \(entry.localHeaderOffset)) overlaps the data of '\(previousName)'")
            }
            guard entry.dataOffset <= directoryOffset, entry.compressedSize <= directoryOffset - entry.dataOffset else {
                throw FormatError(format, "the data of entry '\(entry.name)' (\(entry.compressedSize) bytes at offset \(entry.dataOffset)) run into the central directory at \(directoryOffset)")
            }
            previousEnd = entry.dataOffset + entry.compressedSize
            previousName = entry.name
        }
        self.entries = list
    }

    /// The first entry with this exact name.
    public func entry(named name: String) -> Entry? {
        entries.first { $0.name == name }
    }

    /// The uncompressed data of an entry, CRC-checked. Deflated data are inflated up to the
    /// declared size (and at most `limits.maxInflatedBytes`).
    public func data(for entry: Entry) throws -> [UInt8] {
        let format = Self.format
        let range = try checkedRange(entry)
        let output: [UInt8]
        switch entry.method {
        case 0:
            output = Array(bytes[range])
        case 8:
            guard entry.uncompressedSize <= limits.maxInflatedBytes else {
                throw FormatError(format, "entry '\(entry.name)' declares \(entry.uncompressedSize) uncompressed bytes, more than the \(limits.maxInflatedBytes) accepted")
            }
            // Deflate expands at most ~1032:1, so the first buffer never exceeds what the
            // compressed bytes could produce, whatever size is declared.
            let (bound, overflow) = entry.compressedSize.multipliedReportingOverflow(by: 1032)
            let firstBuffer = min(entry.uncompressedSize, overflow ? Int.max : bound + 4096)
            do {
                output = try Zlib.inflate(bytes[range], wrapping: .raw, maxOutput: entry.uncompressedSize,
                                          expectedSize: firstBuffer, format: format)
            } catch let error as FormatError {
                throw FormatError(format, "entry '\(entry.name)': \(error.message) (declared uncompressed size \(entry.uncompressedSize))")
            }
            guard output.count == entry.uncompressedSize else {
                throw FormatError(format, "entry '\(entry.name)' inflates to \(output.count) bytes, not the declared \(entry.uncompressedSize)")
            }
        default:
            throw FormatError(format, "entry '\(entry.name)' uses compression method \(entry.method) (\(Self.methodName(entry.method))); only stored (0) and deflate (8) are supported")
        }
        try verifyCRC(entry, output)
        return output
    }

    /// For a stored entry, where its bytes lie in `bytes` (zero-copy access); the CRC-32 is
    /// verified. Throws for compressed entries.
    public func dataRange(for entry: Entry) throws -> Range<Int> {
        let range = try checkedRange(entry)
        guard entry.method == 0 else {
            throw FormatError(Self.format, "entry '\(entry.name)' is compressed (method \(entry.method)); only stored entries can be accessed in place")
        }
        try verifyCRC(entry, bytes[range])
        return range
    }

    // MARK: - Internals

    private func checkedRange(_ entry: Entry) throws -> Range<Int> {
        let format = Self.format
        if entry.isEncrypted || entry.flags & 0x0040 != 0 {
            throw FormatError(format, "entry '\(entry.name)' is encrypted; encrypted archives are not supported")
        }
        guard entry.dataOffset >= 0, entry.compressedSize >= 0, entry.dataOffset <= bytes.count,
              entry.compressedSize <= bytes.count - entry.dataOffset else {
            throw FormatError(format, "entry '\(entry.name)' lies outside the \(bytes.count)-byte archive")
        }
        if entry.method == 0, entry.compressedSize != entry.uncompressedSize {
            throw FormatError(format, "stored entry '\(entry.name)' declares \(entry.compressedSize) stored but \(entry.uncompressedSize) uncompressed bytes")
        }
        return entry.dataOffset ..< entry.dataOffset + entry.compressedSize
    }

    private func verifyCRC(_ entry: Entry, _ data: some Collection<UInt8>) throws {
        let crc = Zlib.crc32(data)
        guard crc == entry.crc32 else {
            throw FormatError(Self.format, "entry '\(entry.name)' fails its CRC-32 check (computed \(Self.hex(crc)), declared \(Self.hex(entry.crc32))): the archive is corrupt")
        }
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    static func methodName(_ method: UInt16) -> String {
        switch method {
        case 1: return "shrink"
        case 6: return "implode"
        case 9: return "deflate64"
        case 12: return "bzip2"
        case 14: return "LZMA"
        case 93: return "Zstandard"
        case 95: return "xz"
        case 99: return "AES encryption"
        default: return "unknown"
        }
    }

    static func readUInt32(_ bytes: [UInt8], _ offset: Int) -> UInt32? {
        guard offset >= 0, offset + 4 <= bytes.count else { return nil }
        return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    /// Offset of the end-of-central-directory record. Searches backwards over a possible
    /// comment; prefers a record whose comment length reaches exactly to the end of the input.
    static func findEndRecord(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 22 else { return nil }
        let last = bytes.count - 22
        let first = max(0, last - 65535)
        var fallback: Int?
        var position = last
        while position >= first {
            if bytes[position] == 0x50, bytes[position + 1] == 0x4B, bytes[position + 2] == 0x05, bytes[position + 3] == 0x06 {
                let commentLength = Int(bytes[position + 20]) | Int(bytes[position + 21]) << 8
                if position + 22 + commentLength == bytes.count { return position }
                if fallback == nil, position + 22 + commentLength < bytes.count { fallback = position }
            }
            position -= 1
        }
        return fallback
    }

    private static func readCentralEntry(_ c: inout ByteReader, index: Int, directoryEnd: Int, bytes: [UInt8]) throws -> Entry {
        let format = Self.format
        let start = c.offset
        guard directoryEnd - start >= 46 else {
            throw FormatError(format, "central directory entry \(index) runs past the end of the directory")
        }
        guard try c.readLE(UInt32.self, "central directory entry") == centralSignature else {
            throw FormatError(format, "central directory entry \(index) at offset \(start) has a bad signature")
        }
        try c.skip(4) // versions made by / needed
        let flags = try c.readLE(UInt16.self)
        let method = try c.readLE(UInt16.self)
        try c.skip(4) // DOS time and date
        let crc = try c.readLE(UInt32.self)
        let compressed32 = try c.readLE(UInt32.self)
        let uncompressed32 = try c.readLE(UInt32.self)
        let nameLength = Int(try c.readLE(UInt16.self))
        let extraLength = Int(try c.readLE(UInt16.self))
        let commentLength = Int(try c.readLE(UInt16.self))
        let diskStart16 = try c.readLE(UInt16.self)
        try c.skip(6) // internal and external attributes
        let localOffset32 = try c.readLE(UInt32.self)
        guard nameLength + extraLength + commentLength <= directoryEnd - c.offset else {
            throw FormatError(format, "central directory entry \(index) runs past the end of the directory")
        }
        let nameBytes = try c.readBytes(nameLength, "entry name")
        guard let name = strictUTF8(nameBytes) else {
            throw FormatError(format, "the name of entry \(index) is not valid UTF-8")
        }
        let extra = try c.readBytes(extraLength, "extra field")
        try c.skip(commentLength, "entry comment")

        // ZIP64 extended information: the 8-byte values present are those saturated above.
        var uncompressed = UInt64(uncompressed32)
        var compressed = UInt64(compressed32)
        var localOffset = UInt64(localOffset32)
        var diskStart = UInt32(diskStart16)
        let needsZip64 = uncompressed32 == 0xFFFF_FFFF || compressed32 == 0xFFFF_FFFF
            || localOffset32 == 0xFFFF_FFFF || diskStart16 == 0xFFFF
        if needsZip64 {
            guard let field = try Self.extraField(0x0001, in: extra, entry: name) else {
                throw FormatError(format, "entry '\(name)' needs a ZIP64 extra field but has none")
            }
            var z = ByteReader(Array(field), format: format)
            let what = "ZIP64 extra field of '\(name)'"
            if uncompressed32 == 0xFFFF_FFFF { uncompressed = try z.readLE(UInt64.self, what) }
            if compressed32 == 0xFFFF_FFFF { compressed = try z.readLE(UInt64.self, what) }
            if localOffset32 == 0xFFFF_FFFF { localOffset = try z.readLE(UInt64.self, what) }
            if diskStart16 == 0xFFFF { diskStart = try z.readLE(UInt32.self, what) }
        } else {
            _ = try Self.extraField(0x0001, in: extra, entry: name) // validates the extra block layout
        }
        guard diskStart == 0 else {
            throw FormatError(format, "entry '\(name)' starts on disk \(diskStart): multi-disk archives are not supported")
        }
        let size = UInt64(bytes.count)
        guard compressed <= size, localOffset <= size else {
            throw FormatError(format, "entry '\(name)' declares \(compressed) bytes at offset \(localOffset), beyond the \(bytes.count)-byte archive")
        }
        guard uncompressed <= UInt64(Int.max) else {
            throw FormatError(format, "entry '\(name)' declares an impossible uncompressed size \(uncompressed)")
        }
        if method == 0, compressed != uncompressed {
            throw FormatError(format, "stored entry '\(name)' declares \(compressed) stored but \(uncompressed) uncompressed bytes")
        }

        // The local header repeats the name; its extra field may differ (padding, ZIP64).
        var l = ByteReader(bytes, format: format, offset: Int(localOffset))
        guard try l.readLE(UInt32.self, "local header of '\(name)'") == localSignature else {
            throw FormatError(format, "entry '\(name)' points to offset \(localOffset), where there is no local header")
        }
        try l.skip(22, "local header of '\(name)'")
        let localNameLength = Int(try l.readLE(UInt16.self, "local header of '\(name)'"))
        let localExtraLength = Int(try l.readLE(UInt16.self, "local header of '\(name)'"))
        let localName = try l.readBytes(localNameLength, "local header of '\(name)'")
        guard localName.elementsEqual(nameBytes) else {
            throw FormatError(format, "entry '\(name)': the local header names it '\(String(decoding: localName, as: UTF8.self))'")
        }
        try l.skip(localExtraLength, "local extra field of '\(name)'")
        return Entry(name: name, method: method, compressedSize: Int(compressed), uncompressedSize: Int(uncompressed),
                     crc32: crc, localHeaderOffset: Int(localOffset), flags: flags, dataOffset: l.offset)
    }

    /// The data of the extra field with `id`, after checking that the extra block is a
    /// well-formed sequence of (id, size, data) records.
    private static func extraField(_ id: UInt16, in extra: ArraySlice<UInt8>, entry name: String) throws -> ArraySlice<UInt8>? {
        var r = ByteReader(Array(extra), format: format)
        var found: ArraySlice<UInt8>?
        while r.remaining >= 4 {
            let fieldID = try r.readLE(UInt16.self)
            let length = Int(try r.readLE(UInt16.self))
            let data = try r.readBytes(length, "extra field of '\(name)'")
            if fieldID == id, found == nil { found = data }
        }
        return found
    }
}

/// Writes a zip archive in memory: stored or deflated entries, UTF-8 names, a fixed DOS
/// timestamp (1980-01-01 00:00) so that equal input gives equal bytes. Any number of entries:
/// past 65,534 entries, or when the central directory starts beyond 4 GiB, the archive gets a
/// ZIP64 end record and locator (APPNOTE 4.3.14-4.3.15) and entries whose local header lies
/// beyond 4 GiB a ZIP64 extra field (4.5.3). One entry's data must stay below 4 GiB.
public struct ZipWriter: Sendable {
    private var body: [UInt8] = []
    private var directory: [UInt8] = []
    private var count = 0

    static let maxUInt16 = Int(UInt16.max)
    static let maxUInt32 = Int(UInt32.max)

    public init() {}

    /// Adds one entry. Throws for a name over 65,535 bytes or data of 4 GiB or more.
    public mutating func add(name: String, data: [UInt8], compress: Bool) throws {
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= Self.maxUInt16 - 32 else {
            throw FormatError("zip", "entry name of \(nameBytes.count) bytes is too long (at most \(Self.maxUInt16 - 32))")
        }
        let payload = compress ? Zlib.deflate(data[...], wrapping: .raw) : data
        guard data.count < Self.maxUInt32 && payload.count < Self.maxUInt32 else {
            throw FormatError("zip", "entry '\(name.prefix(80))' holds \(data.count) bytes; entries must stay below 4 GiB")
        }
        let method: UInt16 = compress ? 8 : 0
        let crc = Zlib.crc32(data)
        let offset = body.count
        let offsetNeedsZip64 = offset >= Self.maxUInt32
        let flags: UInt16 = nameBytes.allSatisfy { $0 < 0x80 } ? 0 : 0x0800 // bit 11: UTF-8 name
        let version: UInt16 = offsetNeedsZip64 ? 45 : 20 // 4.5: ZIP64, 2.0: deflate
        let dosTime: UInt16 = 0
        let dosDate: UInt16 = (0 << 9) | (1 << 5) | 1 // 1980-01-01

        body.appendLE(ZipArchive.localSignature)
        body.appendLE(version)
        body.appendLE(flags)
        body.appendLE(method)
        body.appendLE(dosTime)
        body.appendLE(dosDate)
        body.appendLE(crc)
        body.appendLE(UInt32(payload.count))
        body.appendLE(UInt32(data.count))
        body.appendLE(UInt16(nameBytes.count))
        body.appendLE(UInt16(0)) // extra length
        body += nameBytes
        body += payload

        directory.appendLE(ZipArchive.centralSignature)
        directory.appendLE(version) // made by: MS-DOS
        directory.appendLE(version)
        directory.appendLE(flags)
        directory.appendLE(method)
        directory.appendLE(dosTime)
        directory.appendLE(dosDate)
        directory.appendLE(crc)
        directory.appendLE(UInt32(payload.count))
        directory.appendLE(UInt32(data.count))
        directory.appendLE(UInt16(nameBytes.count))
        directory.appendLE(UInt16(offsetNeedsZip64 ? 12 : 0)) // extra length
        directory.appendLE(UInt16(0)) // comment length
        directory.appendLE(UInt16(0)) // disk number start
        directory.appendLE(UInt16(0)) // internal attributes
        directory.appendLE(UInt32(0)) // external attributes
        directory.appendLE(offsetNeedsZip64 ? UInt32.max : UInt32(offset))
        directory += nameBytes
        if offsetNeedsZip64 {
            directory.appendLE(UInt16(0x0001)) // ZIP64 extended information
            directory.appendLE(UInt16(8))
            directory.appendLE(UInt64(offset))
        }
        count += 1
    }

    /// The whole archive.
    public func finish() -> [UInt8] {
        let needsZip64 = count >= Self.maxUInt16 || body.count >= Self.maxUInt32 || directory.count >= Self.maxUInt32
        var out = body
        out += directory
        if needsZip64 {
            let recordOffset = out.count
            out.appendLE(ZipArchive.zip64EndSignature)
            out.appendLE(UInt64(44))          // size of the rest of this record
            out.appendLE(UInt16(45))          // made by
            out.appendLE(UInt16(45))          // needed
            out.appendLE(UInt32(0))           // this disk
            out.appendLE(UInt32(0))           // disk with the central directory
            out.appendLE(UInt64(count))
            out.appendLE(UInt64(count))
            out.appendLE(UInt64(directory.count))
            out.appendLE(UInt64(body.count))
            out.appendLE(ZipArchive.zip64LocatorSignature)
            out.appendLE(UInt32(0))           // disk with the ZIP64 end record
            out.appendLE(UInt64(recordOffset))
            out.appendLE(UInt32(1))           // disks in all
        }
        out.appendLE(ZipArchive.endSignature)
        out.appendLE(UInt16(0)) // this disk
        out.appendLE(UInt16(0)) // disk with the central directory
        out.appendLE(UInt16(min(count, Self.maxUInt16)))
        out.appendLE(UInt16(min(count, Self.maxUInt16)))
        out.appendLE(UInt32(min(directory.count, Self.maxUInt32)))
        out.appendLE(UInt32(min(body.count, Self.maxUInt32)))
        out.appendLE(UInt16(0)) // comment length
        return out
    }
}
