import Foundation
import Formats
import HTTP
import Reconstruction
import SCICore

/// One request's decoding budget: every part is decoded within what the earlier parts left of
/// `max_decode_mib`, so three parts cannot each take the whole budget.
struct DecodeBudget {
    var limits: DecodeLimits

    init(_ limits: DecodeLimits) { self.limits = limits }

    mutating func decode(_ part: MultipartFormData.Part, role: String, defaultName: String) throws -> ArrayFile {
        guard limits.maxInflatedBytes > 0 else {
            throw ProblemDocument(.contentTooLarge, kind: .invalidInput,
                detail: "The files before '\(role)' already used this server's decoding budget; send smaller arrays.",
                extensions: [("part", .string(role))])
        }
        let file = try JobSubmission.decodePart(part, role: role, defaultName: defaultName, limits: limits)
        let decoded = file.arrays.reduce(0) { $0 + $1.array.byteCount }
        limits.maxInflatedBytes = max(0, limits.maxInflatedBytes - decoded)
        return file
    }
}

/// A `POST /v1/jobs` body taken apart and checked completely: files decoded, arrays built and
/// checked against each other and against the chosen algorithm. Nothing is stored yet; a
/// request that gets this far will be accepted unless the queue or disk is full.
struct JobSubmission {
    /// A file part to keep in the job's folder.
    struct File {
        var role: String
        var kind: ArrayFileKind
        var bytes: Data
        var filename: String?
        var storedName: String { role + "." + kind.rawValue }
    }

    var options: JobOptions
    var input: ReconstructionInput
    var files: [File]
    /// The mask came from the store (`mask_id`) rather than with the request.
    var maskFromStore: String?

    static let partNames = ["measurement", "mask", "mask_id", "ground_truth", "options"]

    /// Parses and validates the request; throws a `ProblemDocument` saying what to fix.
    static func parse(_ request: HTTPRequest, config: ServiceConfig, masks: MaskStore, models: ModelRegistry,
                      limits: DecodeLimits) throws -> JobSubmission {
        let parts = try multipartParts(request, allowed: partNames, what: "a job")
        var budget = DecodeBudget(limits)
        guard let measurementPart = parts["measurement"] else {
            throw ProblemDocument(.badRequest, kind: .missingPart,
                detail: "The form has no 'measurement' part: send the coded snapshot(s) as a file field named 'measurement' (.npy, .npz, .mat or .png).")
        }
        if parts["mask"] != nil && parts["mask_id"] != nil {
            throw ProblemDocument(.badRequest, kind: .badRequest,
                detail: "Send either a 'mask' file or a 'mask_id', not both.")
        }
        let options = try JobOptions.parse(parts["options"].map { Array($0.body) }, config: config)

        let measurement = try budget.decode(measurementPart, role: "measurement", defaultName: "meas")
        var files = [File(role: "measurement", kind: measurement.kind, bytes: measurementPart.body, filename: measurementPart.filename)]
        var maskFile: ArrayFile?
        var maskFromStore: String?
        if let part = parts["mask"] {
            maskFile = try budget.decode(part, role: "mask", defaultName: "mask")
        } else if let part = parts["mask_id"] {
            let id = part.text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard MaskStore.isValidID(id), masks.info(id) != nil else {
                throw ProblemDocument(.unprocessableContent, kind: .unknownMask,
                    detail: MaskStore.isValidID(id)
                        ? "No mask with id \(id) is stored here: upload it with POST /v1/masks (or send the 'mask' file) and use the id that returns."
                        : "'mask_id' must be the 64-hex-digit id returned by POST /v1/masks.",
                    extensions: [("mask_id", .string(String(id.prefix(100))))])
            }
            do {
                maskFile = try ArrayFile.decode(try DurableFile.read(masks.npyPath(id)), defaultName: "mask")
            } catch {
                throw ProblemDocument.internalError("The stored mask \(id) cannot be read: \(error)")
            }
            maskFromStore = id
        } else if measurement.arrays.count <= 1 {
            throw ProblemDocument(.badRequest, kind: .missingPart,
                detail: "No mask: send a 'mask' file (T x H x W), a 'mask_id' from POST /v1/masks, or a .mat/.npz measurement that also holds 'mask'.")
        }
        var truthFile: ArrayFile?
        if let part = parts["ground_truth"] {
            let file = try budget.decode(part, role: "ground_truth", defaultName: "orig")
            truthFile = file
            files.append(File(role: "ground_truth", kind: file.kind, bytes: part.body, filename: part.filename))
        }

        let input = try buildInput(measurement: measurement, mask: maskFile, groundTruth: truthFile, options: options)
        try check(input, options: options, config: config, models: models)
        return JobSubmission(options: options, input: input, files: files, maskFromStore: maskFromStore)
    }

    /// Builds the reconstruction input as the worker will (same function), mapping user errors to 422.
    static func buildInput(measurement: ArrayFile, mask: ArrayFile?, groundTruth: ArrayFile?, options: JobOptions) throws -> ReconstructionInput {
        do {
            return try ReconstructionInput(measurement: measurement, mask: mask, groundTruth: groundTruth,
                                           whiteLevel: options.whiteLevel.map { Float($0) }, snapshotLimit: options.snapshots)
        } catch let error as SCIError {
            throw ProblemDocument.invalidInput(serviceWording(error.message))
        } catch let error as FormatError {
            throw ProblemDocument.invalidInput(error.description)
        }
    }

    /// ReconstructionInput words its hints for the command line; say them the API's way.
    static func serviceWording(_ message: String) -> String {
        var text = message
        if let range = text.range(of: #"--snapshots (\d+) on the command line"#, options: .regularExpression) {
            let digits = text[range].split(separator: " ")[1]
            text.replaceSubrange(range, with: "send options {\"snapshots\": \(digits)}")
        }
        return text
    }

    /// Checks what depends on the algorithm and the server's limits.
    static func check(_ input: ReconstructionInput, options: JobOptions, config: ServiceConfig, models: ModelRegistry) throws {
        let mask = input.mask
        let (outputs, overflow) = (input.snapshots.count * mask.frames).multipliedReportingOverflow(by: mask.height * mask.width)
        if overflow || outputs > config.maxOutputValues {
            throw ProblemDocument.invalidInput(
                "The job would reconstruct \(input.snapshots.count) snapshot(s) x \(mask.frames) frames of \(mask.height)x\(mask.width) = \(outputs) values; this server takes at most \(config.maxOutputValues) per job: send fewer snapshots (options 'snapshots') or split the stack.")
        }
        // GAP-TV's buffers pad each row to whole vectors (and one more), and TV adds a row: a
        // frame 2 pixels wide costs 16-32 values per pixel. Bound that working set too.
        let paddedRow = (mask.width + 15) / 16 * 16 + 16
        let (working, workingOverflow) = (mask.frames * (mask.height + 1)).multipliedReportingOverflow(by: paddedRow)
        if workingOverflow || working > config.maxOutputValues {
            throw ProblemDocument.invalidInput(
                "Frames of \(mask.height)x\(mask.width) take \(workingOverflow ? "too many" : String(working)) working values per snapshot once rows are padded for vector arithmetic; this server allows \(config.maxOutputValues): send wider, shorter frames (transpose a tall narrow stack) or fewer frames.")
        }
        if options.algorithm == "pnp-ffdnet" {
            guard mask.height % 2 == 0, mask.width % 2 == 0 else {
                throw ProblemDocument.invalidInput(
                    "PnP-FFDNet needs an even height and width (FFDNet works on 2x2 cells); this measurement is \(mask.height)x\(mask.width): crop one row or column, or use algorithm \"gaptv\".")
            }
            // FFDNet holds about three 64-channel activations of a half-resolution frame (with
            // their padding): about 150 bytes a pixel. Frames beyond 2048 x 2048 (600 MB) are refused.
            guard mask.height * mask.width <= 1 << 22 else {
                throw ProblemDocument.invalidInput(
                    "PnP-FFDNet on this server takes frames of at most 4,194,304 pixels (2048 x 2048; FFDNet needs about 150 bytes a pixel); this one is \(mask.height)x\(mask.width): crop it into tiles, or use algorithm \"gaptv\".")
            }
            _ = try models.ffdnet()
            return
        }
        guard options.algorithm == "revsci", let name = options.model else { return }
        let model = try models.config(named: name)
        guard mask.frames == model.frames else {
            throw ProblemDocument.invalidInput(
                "The mask has \(mask.frames) frames but model '\(name)' reconstructs \(model.frames) per snapshot: send a \(model.frames)-frame mask or use algorithm \"gaptv\".")
        }
        guard mask.height % 2 == 0, mask.width % 2 == 0 else {
            throw ProblemDocument.invalidInput(
                "RevSCI needs an even height and width; this measurement is \(mask.height)x\(mask.width): crop one row or column, or use algorithm \"gaptv\".")
        }
        _ = try models.reconstructor(named: name)
    }

    /// Decodes one file part, or says why it cannot be used (415 unknown format, 422 broken file).
    static func decodePart(_ part: MultipartFormData.Part, role: String, defaultName: String,
                           limits: DecodeLimits = .default) throws -> ArrayFile {
        let bytes = Array(part.body)
        guard !bytes.isEmpty else {
            throw ProblemDocument.invalidInput("The '\(role)' part is empty: attach the file's content.")
        }
        guard ArrayFileKind.detect(bytes) != nil else {
            let hdf5: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
            let advice = bytes.starts(with: hdf5)
                ? "it is an HDF5 file (MATLAB v7.3?): re-save with save(f, vars, '-v7') or send .npy"
                : "its first bytes match none of .npy, .npz, MATLAB v5 .mat or PNG (the content decides, not the name or Content-Type)"
            throw ProblemDocument(.unsupportedMediaType, kind: .unsupportedMediaType,
                                  detail: "The '\(role)' part is not a supported file: \(advice).",
                                  extensions: [("part", .string(role))])
        }
        do {
            return try ArrayFile.decode(bytes, defaultName: defaultName, limits: limits)
        } catch let error as FormatError {
            throw ProblemDocument(.unprocessableContent, kind: .invalidInput,
                                  detail: "The '\(role)' part cannot be read: \(error.description)",
                                  extensions: [("part", .string(role))])
        } catch {
            throw ProblemDocument.invalidInput("The '\(role)' part cannot be read: \(error)")
        }
    }

    /// The request's body, from memory or mapped from its spool file (500 if that fails).
    static func body(of request: HTTPRequest) throws -> Data {
        do { return try request.bodyBytes() } catch let error as HTTPParseError {
            throw ProblemDocument.internalError(error.detail)
        }
    }

    /// Splits a multipart/form-data request into named parts; 415 for other content types,
    /// 400 for broken bodies, unknown or repeated fields.
    static func multipartParts(_ request: HTTPRequest, allowed: [String], what: String) throws -> [String: MultipartFormData.Part] {
        guard let contentType = request.contentType else {
            throw ProblemDocument(.unsupportedMediaType, kind: .unsupportedMediaType,
                detail: "Send \(what) as multipart/form-data (the request has no Content-Type).")
        }
        let parts: [MultipartFormData.Part]
        do {
            parts = try MultipartFormData.parse(data: try body(of: request), contentType: contentType)
        } catch let error as MultipartError {
            if error.kind == .notMultipart {
                throw ProblemDocument(.unsupportedMediaType, kind: .unsupportedMediaType,
                    detail: "Send \(what) as multipart/form-data with fields \(allowed.joined(separator: ", ")); \(error.message)")
            }
            throw ProblemDocument(.badRequest, kind: .invalidMultipart, detail: error.message)
        }
        var named: [String: MultipartFormData.Part] = [:]
        for part in parts {
            guard allowed.contains(part.name) else {
                throw ProblemDocument(.badRequest, kind: .badRequest,
                    detail: "Unknown form field '\(part.name.prefix(100))'; the fields are \(allowed.joined(separator: ", ")).")
            }
            guard named[part.name] == nil else {
                throw ProblemDocument(.badRequest, kind: .badRequest, detail: "The form field '\(part.name)' is sent more than once.")
            }
            named[part.name] = part
        }
        return named
    }
}
