import Foundation
import Reconstruction

/// A FIFO queue of job ids served by N worker threads (plain threads: a reconstruction blocks
/// for seconds and must not sit on the Swift concurrency pool). The queue is bounded: a
/// submission first reserves a slot, so two concurrent requests can never both take the last one.
public final class WorkerPool: @unchecked Sendable {
    /// Why a running job is being stopped.
    public enum Interruption: Sendable {
        /// The client cancelled it (DELETE): it ends `cancelled`.
        case cancel
        /// The server is shutting down: it goes back to `queued` for the next start.
        case shutdown
    }

    /// Handed to the job being run: its cancellation token and why it was interrupted.
    public final class Control: @unchecked Sendable {
        public let token = CancellationToken()
        private let lock = NSLock()
        private var why: Interruption?

        public var interruption: Interruption? { lock.withLock { why } }

        func interrupt(_ reason: Interruption) {
            lock.withLock { if why == nil { why = reason } }
            token.cancel()
        }
    }

    public let capacity: Int
    private let execute: @Sendable (String, Control) -> Void
    private let condition = NSCondition()
    private var queue: [String] = []
    private var reservations = 0
    private var running: [String: Control] = [:]
    private var stopping = false
    private var alive = 0
    private var target = 0

    /// - Parameters:
    ///   - capacity: Queued jobs (reservations included) beyond which `reserve()` fails.
    ///   - execute: Runs one job on a worker thread.
    public init(capacity: Int, execute: @escaping @Sendable (String, Control) -> Void) {
        self.capacity = capacity
        self.execute = execute
    }

    /// Starts `count` worker threads.
    public func start(workers count: Int) {
        condition.withLock { target = count }
        for index in 0 ..< count {
            let thread = Thread { [self] in work() }
            thread.name = "revsci-worker-\(index)"
            thread.stackSize = 8 << 20
            condition.withLock { alive += 1 }
            thread.start()
        }
    }

    private func work() {
        condition.lock()
        while true {
            while !stopping && queue.isEmpty { condition.wait() }
            if stopping { break }
            let id = queue.removeFirst()
            let control = Control()
            running[id] = control
            condition.unlock()
            execute(id, control)
            condition.lock()
            running[id] = nil
            condition.broadcast()
        }
        alive -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Takes a queue slot for a job about to be stored; false when the queue is full or stopping.
    public func reserve() -> Bool {
        condition.withLock {
            guard !stopping, queue.count + reservations < capacity else { return false }
            reservations += 1
            return true
        }
    }

    /// Whether a slot is free now (nothing reserved): the head-only check before a body is read.
    public var hasRoom: Bool {
        condition.withLock { !stopping && queue.count + reservations < capacity }
    }

    /// Gives back a slot whose job was not stored after all.
    public func release() {
        condition.withLock { reservations = max(0, reservations - 1) }
    }

    /// Queues a job (using its reservation when `reserved`). Jobs re-queued at start ignore the capacity.
    public func enqueue(_ id: String, reserved: Bool) {
        condition.withLock {
            if reserved { reservations = max(0, reservations - 1) }
            queue.append(id)
            condition.signal()
        }
    }

    /// Takes a job out of the queue before it started; false when it is not waiting there.
    public func removeQueued(_ id: String) -> Bool {
        condition.withLock {
            guard let index = queue.firstIndex(of: id) else { return false }
            queue.remove(at: index)
            return true
        }
    }

    /// Stops a running job; false when it is not running.
    @discardableResult
    public func interrupt(_ id: String, _ reason: Interruption) -> Bool {
        condition.withLock {
            guard let control = running[id] else { return false }
            control.interrupt(reason)
            return true
        }
    }

    /// Jobs waiting for a worker.
    public var queueDepth: Int { condition.withLock { queue.count } }
    /// Jobs being reconstructed now.
    public var runningCount: Int { condition.withLock { running.count } }
    /// Worker threads alive, and how many were started.
    public var workerCounts: (alive: Int, expected: Int) { condition.withLock { (alive, target) } }

    /// Whether a job is waiting in the queue.
    public func isQueued(_ id: String) -> Bool { condition.withLock { queue.contains(id) } }

    /// Stops the pool: no new job starts; running jobs get `grace` seconds to finish, then are
    /// interrupted for shutdown (their runner puts them back to `queued`). Returns when every
    /// worker has exited, or after `grace + hardLimit` seconds at most.
    public func stop(grace: Double, hardLimit: Double = 30) {
        condition.lock()
        stopping = true
        condition.broadcast()
        let graceEnd = Date(timeIntervalSinceNow: max(0, grace))
        while !running.isEmpty && Date() < graceEnd { _ = condition.wait(until: graceEnd) }
        for control in running.values { control.interrupt(.shutdown) }
        let end = Date(timeIntervalSinceNow: hardLimit)
        while alive > 0 && Date() < end { _ = condition.wait(until: end) }
        condition.unlock()
    }
}
