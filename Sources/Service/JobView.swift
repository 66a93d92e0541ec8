import Foundation

/// The job document the API returns (GET /v1/jobs/{id}, list entries, the 202 of POST /v1/jobs).
/// Every key is always present (null when it does not apply), in a fixed order.
enum JobView {
    static func json(_ job: Job, now: Date = Date()) -> JSONValue {
        let base = "/v1/jobs/\(job.id)"
        let end = job.finished ?? now
        let queueSeconds = (job.started ?? (job.state == .queued ? now : end)).timeIntervalSince(job.created)
        let runSeconds = job.started.map { end.timeIntervalSince($0) }
        var links: [(String, JSONValue)] = [("self", .string(base)), ("mask", .string("/v1/masks/\(job.maskID)"))]
        if job.state == .succeeded {
            links += [("frames_zip", .string(base + "/frames.zip")), ("result_npy", .string(base + "/result.npy")),
                      ("frame_png", .string(base + "/frames/{k}.png"))]
        }
        let metrics: JSONValue = job.metrics.map { scores in
            .object([
                ("mean_psnr", .double(scores.meanPSNR)), ("mean_ssim", .double(scores.meanSSIM)),
                ("psnr", .array(scores.psnr.map { .double($0) })), ("ssim", .array(scores.ssim.map { .double($0) })),
            ])
        } ?? .null
        let error: JSONValue = job.failure.map { .object([("title", .string($0.title)), ("detail", .string($0.detail))]) } ?? .null
        return .object([
            ("id", .string(job.id)),
            ("state", .string(job.state.rawValue)),
            ("progress", .double(job.state == .succeeded ? 1 : job.progress)),
            ("algorithm", .string(job.options.algorithm)),
            ("model", .string(job.options.model)),
            ("options", job.options.json),
            ("shape", .object([
                ("snapshots", .int(job.shape.snapshots)), ("frames_per_snapshot", .int(job.shape.framesPerSnapshot)),
                ("frames", .int(job.shape.frames)), ("height", .int(job.shape.height)), ("width", .int(job.shape.width)),
            ])),
            ("white_level", .double(job.whiteLevel)),
            ("white_level_source", .string(job.whiteLevelSource)),
            ("mask_id", .string(job.maskID)),
            ("ground_truth", .bool(job.hasGroundTruth)),
            ("inputs", .array(job.inputs.map { input in
                .object([("role", .string(input.role)), ("format", .string(input.format)), ("bytes", .int(input.bytes)),
                         ("filename", .string(input.filename))])
            })),
            ("timings", .object([
                ("created", .string(Timestamp.format(job.created))),
                ("started", Timestamp.json(job.started)),
                ("finished", Timestamp.json(job.finished)),
                ("queue_seconds", .double(max(0, queueSeconds))),
                ("run_seconds", .number(runSeconds.map { max(0, $0) })),
                ("reconstruction_seconds", .number(job.reconstructionSeconds)),
                ("total_seconds", .double(max(0, end.timeIntervalSince(job.created)))),
            ])),
            ("attempts", .int(job.attempts)),
            ("cancel_requested", .bool(job.cancelRequested)),
            ("metrics", metrics),
            ("error", error),
            ("links", .object(links)),
        ])
    }
}
