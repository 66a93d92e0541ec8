import Foundation
import Formats
import HTTP
import SCICore

/// /v1/masks: upload a camera's mask once and refer to it by id (its content hash).
struct MaskRoutes: Sendable {
    let service: ReconstructionService

    /// Raw (non-multipart) bodies accepted as a mask file; the content's magic bytes decide the format.
    static let rawTypes = ["application/octet-stream", "application/x-npy", "application/x-matlab-data",
                           "application/zip", "image/png"]

    /// POST /v1/masks: the mask as a multipart field `mask`, or as the raw body. 201 when new,
    /// 200 when the same mask was already stored (the id is its content hash).
    func upload(_ request: HTTPRequest) throws -> HTTPResponse {
        try service.requireAccepting()
        let bytes: Data
        let mediaType = request.mediaType
        if mediaType == "multipart/form-data" {
            let parts = try JobSubmission.multipartParts(request, allowed: ["mask"], what: "a mask")
            guard let part = parts["mask"] else {
                throw ProblemDocument(.badRequest, kind: .missingPart,
                                      detail: "The form has no 'mask' part: send the mask file (T x H x W) as a field named 'mask'.")
            }
            bytes = part.body
        } else if Self.rawTypes.contains(mediaType) {
            bytes = try JobSubmission.body(of: request)
        } else {
            throw ProblemDocument(.unsupportedMediaType, kind: .unsupportedMediaType,
                detail: "Send the mask as multipart/form-data (field 'mask') or as a raw file body with Content-Type application/octet-stream (got '\(mediaType.prefix(80))').")
        }
        let part = MultipartFormData.Part(name: "mask", filename: nil, contentType: nil, headers: HTTPHeaders(), body: bytes)
        let file = try service.decoding {
            try JobSubmission.decodePart(part, role: "mask", defaultName: "mask", limits: service.decodeLimits)
        }
        let mask = try Self.maskStack(from: file)
        let incoming = Int64(mask.values.count * 4)
        guard service.janitor.reserve(incoming) else { throw service.quotaProblem() }
        defer { service.janitor.release(incoming) }
        let stored: (info: MaskInfo, created: Bool)
        do {
            stored = try service.storageLock.withLock { try service.masks.put(mask, source: .upload) }
        } catch {
            throw ProblemDocument.internalError("The mask could not be stored: \(error)")
        }
        if stored.created { service.log("mask \(stored.info.id): stored (\(mask.frames)x\(mask.height)x\(mask.width))") }
        var response = HTTPResponse.json(raw: stored.info.json(jobs: jobsUsing(stored.info.id)).bytes,
                                         status: stored.created ? .created : .ok)
        response.headers.add(name: "Location", value: "/v1/masks/\(stored.info.id)")
        return response
    }

    /// The mask in a decoded file: the array named mask/Phi, or the file's only array.
    static func maskStack(from file: ArrayFile) throws -> MaskStack {
        var array = ReconstructionInput.maskNames.lazy.compactMap { file.array($0) }.first
        if array == nil, file.arrays.count == 1 { array = file.arrays[0].array }
        guard let array else {
            throw ProblemDocument.invalidInput("The mask file holds \(file.arrays.map(\.name).joined(separator: ", ")); name the mask one of \(ReconstructionInput.maskNames.joined(separator: ", ")).")
        }
        do {
            return try SCIInput.mask(array, order: file.planeOrder)
        } catch let error as SCIError {
            throw ProblemDocument.invalidInput(error.message)
        }
    }

    /// GET /v1/masks.
    func list() -> HTTPResponse {
        let all = service.masks.all()
        let jobs = service.store.all()
        let items = all.map { info in info.json(jobs: jobs.filter { $0.maskID == info.id }.map(\.id)) }
        return .json(raw: JSONValue.object([("masks", .array(items)), ("count", .int(items.count))]).bytes)
    }

    /// GET /v1/masks/{id}.
    func get(_ id: String) throws -> HTTPResponse {
        let info = try find(id)
        return .json(raw: info.json(jobs: jobsUsing(id)).bytes)
    }

    /// DELETE /v1/masks/{id}: 204; 409 while queued or running jobs need it.
    func delete(_ id: String) throws -> HTTPResponse {
        _ = try find(id)
        try service.storageLock.withLock {
            let active = service.store.all().filter { $0.maskID == id && !$0.state.isFinished }
            guard active.isEmpty else {
                throw ProblemDocument(.conflict, kind: .maskInUse,
                    detail: "Mask \(id) is needed by \(active.count) queued or running job(s) (\(active.prefix(5).map(\.id).joined(separator: ", "))): wait for them or cancel them first.",
                    extensions: [("jobs", .array(active.map { .string($0.id) }))])
            }
            service.masks.remove(id)
        }
        service.log("mask \(id): removed")
        return .empty(.noContent)
    }

    private func find(_ id: String) throws -> MaskInfo {
        guard MaskStore.isValidID(id) else {
            throw ProblemDocument.notFound("'\(id.prefix(80))' is not a mask id: mask ids are the 64 lowercase hex digits returned by POST /v1/masks.")
        }
        guard let info = service.masks.info(id) else {
            throw ProblemDocument.notFound("There is no mask \(id): upload it with POST /v1/masks.")
        }
        return info
    }

    private func jobsUsing(_ id: String) -> [String] {
        service.store.all().filter { $0.maskID == id }.map(\.id)
    }
}
