import ArgumentParser
import Foundation
import Service

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP reconstruction service (job queue, worker pool, job store on disk).",
        discussion: """
        Settings come from --config (default: configs/server.json when it exists, else built-in
        defaults that equal it); --host, --port, --data-dir and --workers override the file.
        The API is described by openapi.yaml, also served at /openapi.yaml.

        Jobs are written to the data directory before they are accepted and re-queued at the
        next start if the server stops (or dies) before they finish. SIGTERM or SIGINT stops
        gracefully: no new connections, running jobs get shutdown_grace_seconds to finish and
        otherwise stay queued for the next start. A second signal exits at once.
        """
    )

    @Option(help: "Server configuration (JSON; see configs/server.json for every key).")
    var config: String?

    @Option(help: "Address to listen on (e.g. 127.0.0.1, 0.0.0.0, ::).")
    var host: String?

    @Option(help: "TCP port (0 picks a free one).")
    var port: Int?

    @Option(help: "Data directory for the job and mask stores.")
    var dataDir: String?

    @Option(help: "Worker threads (reconstructions at the same time).")
    var workers: Int?

    func run() throws {
        var settings: ServiceConfig
        let defaultPath = "configs/server.json"
        do {
            if let config {
                settings = try ServiceConfig.load(path: config)
            } else if FileManager.default.fileExists(atPath: defaultPath) {
                settings = try ServiceConfig.load(path: defaultPath)
            } else {
                settings = ServiceConfig()
            }
            if let host { settings.host = host }
            if let port { settings.port = port }
            if let dataDir { settings.dataDir = dataDir }
            if let workers { settings.workers = workers }
            try settings.validate()
        } catch let error as ConfigError {
            throw ValidationError(error.message)
        }
        let service = try ReconstructionService(config: settings)
        try service.start()
        service.runUntilSignalled()
    }
}
