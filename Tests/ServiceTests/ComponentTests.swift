import Foundation
import SCICore
@testable import Service
import TestSupport
import XCTest

/// The pieces on their own: hashing, configuration, options, JSON, the janitor.
final class ComponentTests: ServiceTestCase {
    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Fed in odd-sized pieces: the same digest as in one go.
        let bytes = (0 ..< 1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var pieces = SHA256()
        var offset = 0
        for size in [1, 63, 64, 65, 200, 607] {
            pieces.update(bytes[offset ..< offset + size])
            offset += size
        }
        XCTAssertEqual(pieces.finalizeHex(), SHA256.hex(bytes))
        XCTAssertEqual(SHA256.hex([UInt8](repeating: 0x61, count: 1_000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testMaskIDIgnoresTheFileButNotTheShape() throws {
        let a = try MaskStack(frames: 2, height: 2, width: 3, values: [1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1])
        let b = try MaskStack(frames: 2, height: 3, width: 2, values: [1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1])
        let negativeZero = try MaskStack(frames: 2, height: 2, width: 3, values: [1, -0.0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1])
        XCTAssertNotEqual(MaskStore.contentID(a), MaskStore.contentID(b))
        XCTAssertEqual(MaskStore.contentID(a), MaskStore.contentID(negativeZero))
        XCTAssertTrue(MaskStore.isValidID(MaskStore.contentID(a)))
    }

    func testConfigFileDefaultsAndErrors() throws {
        // configs/server.json states exactly the built-in defaults.
        let file = try ServiceConfig.load(path: SharedData.packageRoot.appendingPathComponent("configs/server.json").path)
        XCTAssertEqual(file, ServiceConfig())
        XCTAssertEqual(file.port, 8080)
        XCTAssertEqual(file.maxBodyMiB, 512)
        XCTAssertEqual(file.httpConfiguration.maxBodyBytes, 512 << 20)

        let custom = try ServiceConfig.parse(Array(#"{"port": 9000, "workers": 2, "auth": {"enabled": true, "tokens": ["abc"]}, "queue_full_status": 429}"#.utf8))
        XCTAssertEqual(custom.port, 9000)
        XCTAssertEqual(custom.workers, 2)
        XCTAssertEqual(try custom.resolvedTokens(), ["abc"])
        XCTAssertEqual(custom.queueFullStatus, 429)
        XCTAssertEqual(custom.maxQueue, 64)

        for (text, fragment) in [
            (#"{"prot": 1}"#, "unknown key 'prot'"),
            (#"{"tls": {"enabled": true, "cert": "x"}}"#, "'tls.cert'"),
            (#"{"port": "8080"}"#, "'port' must be an integer"),
            (#"{"workers": 1.5}"#, "'workers' must be an integer"),
            (#"{"access_log": 1}"#, "true or false"),
            (#"{"port": 70000}"#, "port must be"),
            (#"{"auth": {"enabled": true}}"#, "no token"),
            (#"{"auth": {"tokens": ["has space"]}}"#, "auth tokens"),
            (#"{"queue_full_status": 500}"#, "429 or 503"),
            (#"{"tls": {"enabled": true}}"#, "tls.certificate"),
            ("[1]", "JSON object"),
            ("{", "not valid JSON"),
        ] {
            XCTAssertThrowsError(try ServiceConfig.parse(Array(text.utf8)), text) {
                XCTAssertTrue("\($0)".contains(fragment), "\(text): \($0)")
            }
        }
        let tokens = temporaryDirectory("tok") + "/tokens"
        try Data("# lab scripts\none\n\n  two  \n".utf8).write(to: URL(fileURLWithPath: tokens))
        let fromFile = try ServiceConfig.parse(Array(#"{"auth": {"enabled": true, "tokens_file": "\#(tokens)"}}"#.utf8))
        XCTAssertEqual(try fromFile.resolvedTokens(), ["one", "two"])
    }

    func testOptionsDefaultsAndChecks() throws {
        let config = ServiceConfig()
        let defaults = try JobOptions.parse(nil, config: config)
        XCTAssertEqual(defaults, JobOptions(algorithm: "gaptv", model: nil, whiteLevel: nil, snapshots: nil, pngBits: 8,
                                            iterations: 40, tvWeight: 0.3, tvIterations: 5))
        XCTAssertEqual(try JobOptions.parse(Array(" \n".utf8), config: config), defaults)
        let revsci = try JobOptions.parse(Array(#"{"model": "revsci-paper", "white_level": 255, "snapshots": 2, "png_bits": 16}"#.utf8), config: config)
        XCTAssertEqual(revsci.algorithm, "revsci")
        XCTAssertEqual(revsci.model, "revsci-paper")
        XCTAssertEqual(revsci.whiteLevel, 255)
        XCTAssertNil(revsci.iterations)
        XCTAssertEqual(try JobOptions.parse(Array(#"{"algorithm": "revsci"}"#.utf8), config: config).model, "revsci-default")
        for (text, status) in [("nope", 400), (#""gaptv""#, 400), (#"{"model": "x", "algorithm": "gaptv"}"#, 422),
                               (#"{"white_level": 0}"#, 422), (#"{"tv_weight": -1}"#, 422), (#"{"tv_iterations": 1001}"#, 422),
                               (#"{"algorithm": "revsci", "iterations": 3}"#, 422), (#"{"png_bits": true}"#, 422)] {
            XCTAssertThrowsError(try JobOptions.parse(Array(text.utf8), config: config), text) {
                XCTAssertEqual(($0 as? ProblemDocument)?.status.code, status, "\(text): \($0)")
            }
        }
    }

    func testJSONValueWriting() {
        let value: JSONValue = .object([("b", 1), ("a", .array([.double(0.5), .double(.infinity), .null, true])),
                                        ("s", .string("q\"\\\n\u{1}é"))])
        XCTAssertEqual(String(decoding: value.bytes, as: UTF8.self), #"{"b":1,"a":[0.5,null,null,true],"s":"q\"\\\n\u0001é"}"#)
        XCTAssertEqual(JSONValue.format(3), "3")
        XCTAssertEqual(JSONValue.format(34.56789012345), "34.56789012345")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: 1_700_000_000.25)), "2023-11-14T22:13:20.250Z")
    }

    /// Retention removes old finished jobs; the quota removes the oldest finished ones; queued
    /// jobs and uploaded masks stay; masks that came with removed jobs go.
    func testJanitorRetentionAndQuota() throws {
        let root = temporaryDirectory("janitor")
        let store = try JobStore(root: root, log: .silent)
        let masks = try MaskStore(directory: root + "/masks", staging: store.stagingDirectory, log: .silent)
        let jobMask = try MaskStack(frames: 1, height: 2, width: 2, values: [1, 0, 0, 1])
        let uploaded = try MaskStack(frames: 1, height: 2, width: 2, values: [0, 1, 1, 0])
        let jobMaskID = try masks.put(jobMask, source: .job).info.id
        let uploadedID = try masks.put(uploaded, source: .upload).info.id
        let now = Date()
        func make(_ state: JobState, finishedHoursAgo: Double?, payload: Int) throws -> String {
            let id = JobStore.newID()
            let job = Job(id: id, sequence: store.takeSequence(), state: state, progress: 0, created: now.addingTimeInterval(-1e6),
                          started: nil, finished: finishedHoursAgo.map { now.addingTimeInterval(-$0 * 3600) },
                          reconstructionSeconds: nil, attempts: 0, cancelRequested: false,
                          options: try JobOptions.parse(nil, config: ServiceConfig()),
                          shape: .init(snapshots: 1, framesPerSnapshot: 1, height: 2, width: 2), whiteLevel: 1,
                          whiteLevelSource: "inferred", maskID: jobMaskID, inputs: [], hasGroundTruth: false, metrics: nil, failure: nil)
            try store.create(job, files: [("measurement.npy", Data(repeating: 1, count: payload))])
            return id
        }
        let old = try make(.succeeded, finishedHoursAgo: 200, payload: 10)
        let oldQueued = try make(.queued, finishedHoursAgo: nil, payload: 10)
        let older = try make(.failed, finishedHoursAgo: 5, payload: 600_000)
        let newer = try make(.succeeded, finishedHoursAgo: 1, payload: 600_000)

        var config = ServiceConfig()
        config.retentionHours = 168
        config.quotaMiB = 1
        let janitor = Janitor(store: store, masks: masks, config: config, storageLock: NSLock(), log: .silent)
        let removed = janitor.sweep(now: now)
        XCTAssertEqual(Set(removed), [old, older])
        XCTAssertEqual(Set(store.all().map(\.id)), [oldQueued, newer])
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.jobsDirectory + "/" + old))
        XCTAssertNotNil(masks.info(jobMaskID), "still used by the queued job")

        store.remove(oldQueued)
        store.remove(newer)
        janitor.sweep(now: now)
        XCTAssertNil(masks.info(jobMaskID), "a job's mask goes with its last job")
        XCTAssertNotNil(masks.info(uploadedID), "uploaded masks stay until deleted")

        // A reopened store sees the same jobs and masks.
        let reopened = try MaskStore(directory: root + "/masks", staging: store.stagingDirectory, log: .silent)
        XCTAssertEqual(reopened.all().map(\.id), [uploadedID])
        XCTAssertEqual(try reopened.load(uploadedID), uploaded)
    }
}
