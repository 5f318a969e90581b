import CCurl
import Glibc
import Synchronization

/// The part of the event loop that other threads touch: new submissions, cancellations and the
/// stop request, behind one mutex. `curl_multi_wakeup` is the one libcurl call documented as safe
/// from any thread; it is made under the mutex, and only while the loop has not been told to
/// stop, because the loop frees the multi handle after it sees the stop.
final class CurlLoopMailbox: Sendable {
    struct Work {
        var submissions: [Submission]
        var cancellations: [UInt64]
        var jobs: [UnownedJob]
        var stop: Bool
    }

    private struct State {
        /// The multi handle's address (a plain integer keeps the state Sendable); only
        /// curl_multi_wakeup uses it, and only while `stopRequested` is false.
        var multiToWake: UInt
        var stopRequested = false
        var submissions: [Submission] = []
        var cancellations: [UInt64] = []
        var jobs: [UnownedJob] = []
        var thread: pthread_t?
    }

    // ThreadSanitizer (Swift 6.3, Linux) reports false races inside Mutex.withLock under
    // contention: it cannot see the futex slow path. A plain Mutex<Int> counter shows the same.
    private let state: Mutex<State>

    init(multiToWake: UnsafeMutableRawPointer) {
        state = Mutex(State(multiToWake: UInt(bitPattern: multiToWake)))
    }

    /// Queues a submission for the loop, or fails it at once with `.cancelled` when its task is
    /// already cancelled or the client is shut down.
    func submit(_ submission: Submission) {
        let rejection: String? = state.withLock { state in
            if state.stopRequested { return "the HTTP client was shut down" }
            // Checked under the lock: a cancellation after this point queues its id behind this
            // submission, so the loop always sees the submission first.
            if Task.isCancelled { return "the task was cancelled" }
            state.submissions.append(submission)
            curl_multi_wakeup(UnsafeMutableRawPointer(bitPattern: state.multiToWake))
            return nil
        }
        if let rejection {
            submission.continuation.resume(
                returning: .failure(
                    HTTPTransportError(kind: .cancelled, target: submission.request.target, reason: rejection)))
        }
    }

    /// Queues a Swift job for the loop thread. Once the loop has stopped, jobs run on the global
    /// executor instead, so no task waiting on this executor is ever stranded.
    func enqueue(_ job: UnownedJob) {
        let accepted = state.withLock { state in
            guard !state.stopRequested else { return false }
            state.jobs.append(job)
            curl_multi_wakeup(UnsafeMutableRawPointer(bitPattern: state.multiToWake))
            return true
        }
        if !accepted { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }

    func cancel(_ id: UInt64) {
        state.withLock { state in
            guard !state.stopRequested else { return }
            state.cancellations.append(id)
            curl_multi_wakeup(UnsafeMutableRawPointer(bitPattern: state.multiToWake))
        }
    }

    /// Called by the loop thread only.
    func takeWork() -> Work {
        state.withLock { state in
            let work = Work(
                submissions: state.submissions, cancellations: state.cancellations,
                jobs: state.jobs, stop: state.stopRequested)
            state.submissions = []
            state.cancellations = []
            state.jobs = []
            if work.stop { state.multiToWake = 0 }
            return work
        }
    }

    func loopStarted(on thread: pthread_t) {
        state.withLock { $0.thread = thread }
    }

    /// The loop never ran (its thread could not start): refuse all work from now on.
    func loopFailedToStart() {
        state.withLock { state in
            state.stopRequested = true
            state.multiToWake = 0
        }
    }

    /// Tells the loop to stop and waits for it to have freed everything. Idempotent.
    func stopAndJoin() {
        let thread: pthread_t? = state.withLock { state in
            if !state.stopRequested {
                state.stopRequested = true
                curl_multi_wakeup(UnsafeMutableRawPointer(bitPattern: state.multiToWake))
            }
            defer { state.thread = nil }
            return state.thread
        }
        guard let thread else { return }
        if pthread_equal(thread, pthread_self()) != 0 {
            pthread_detach(thread)  // joining ourselves would deadlock; the loop exits on its own
        } else {
            pthread_join(thread, nil)
        }
    }
}

/// The event loop: one dedicated thread owns the multi handle, the share handle and every easy
/// handle, so no blocking libcurl call ever runs on Swift's cooperative pool, and no libcurl
/// object is used from two threads. It is also a task executor (`CurlLoopExecutor`) for tasks
/// that send requests back to back.
final class CurlEventLoop {
    let mailbox: CurlLoopMailbox
    private let multi: MultiHandle
    private let share: ShareHandle
    private let settings: TransferSettings
    private var transfers: [UInt64: CurlTransfer] = [:]
    private var transferIDs: [UnsafeMutableRawPointer: UInt64] = [:]
    let executor: CurlLoopExecutor

    /// How long curl_multi_poll sleeps with nothing to do; curl_multi_wakeup or libcurl's own
    /// timers cut it short, so this only bounds an idle loop's wake-ups.
    private static let idlePollMilliseconds: Int32 = 30_000
    /// libcurl 7.88 can leave HTTP/2 data it already read for sibling streams in its buffers
    /// with no socket event or timer to report it: those transfers stalled until their connect
    /// timeout fired (seen with 50 parallel streams to nginx, about 1 round in 40). While
    /// transfers are active, poll at most this long so such data is picked up promptly.
    private static let activePollMilliseconds: Int32 = 20

    init(settings: TransferSettings) throws(HTTPTransportError) {
        self.settings = settings
        multi = try MultiHandle()
        share = try ShareHandle()
        guard let multiRaw = multi.raw else {
            throw HTTPTransportError(kind: .other, target: "", reason: "the multi handle is unavailable")
        }
        // HTTP/2 streams share one connection when the server offers h2 via ALPN.
        try Self.setMultiOption(multiRaw, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        try Self.setMultiOption(multiRaw, CURLMOPT_MAX_HOST_CONNECTIONS, settings.maxConnectionsPerHost)
        // libcurl keeps 4 idle connections per added handle by default, which shrinks to 4 when
        // requests are sequential; keep enough for a few hosts (vaults, Entra ID, IMDS).
        try Self.setMultiOption(multiRaw, CURLMOPT_MAXCONNECTS, max(16, settings.maxConnectionsPerHost * 4))
        mailbox = CurlLoopMailbox(multiToWake: multiRaw)
        executor = CurlLoopExecutor(mailbox: mailbox)
    }

    private static func setMultiOption(_ multi: UnsafeMutableRawPointer, _ option: CURLMoption, _ value: Int)
        throws(HTTPTransportError)
    {
        let code = ccurl_multi_setopt_long(multi, option, value)
        guard code == CURLM_OK else {
            throw HTTPTransportError(
                kind: .other, target: "",
                reason: "curl_multi_setopt(\(option.rawValue)) failed: \(String(cString: curl_multi_strerror(code)))")
        }
    }

    static let threadName = "akvfs-http"

    /// Names the loop thread for `top -H` and `ps -L`, and for tests that check where work runs.
    /// Through /proc because Swift's Glibc module leaves out pthread_setname_np (a GNU extension).
    private static func nameCurrentThread() {
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = threadName.withCString { write(descriptor, $0, strlen($0)) }
        close(descriptor)
    }

    /// Starts the loop thread, which from then on owns this object; the caller keeps only `mailbox`.
    func startThread() throws(HTTPTransportError) {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { context in
                CurlEventLoop.nameCurrentThread()
                let loop = Unmanaged<CurlEventLoop>.fromOpaque(context!).takeRetainedValue()
                loop.run()
                return nil
            }, context)
        guard status == 0 else {
            Unmanaged<CurlEventLoop>.fromOpaque(context).release()
            mailbox.loopFailedToStart()
            throw HTTPTransportError(
                kind: .other, target: "",
                reason: "cannot start the HTTP thread: \(String(cString: strerror(status)))")
        }
        mailbox.loopStarted(on: thread)
    }

    private func run() {
        while true {
            let work = mailbox.takeWork()
            if work.stop {
                for submission in work.submissions {
                    submission.continuation.resume(
                        returning: .failure(
                            HTTPTransportError(
                                kind: .cancelled, target: submission.request.target,
                                reason: "the HTTP client was shut down")))
                }
                // Tasks still preferring this executor go on elsewhere; their requests fail as cancelled.
                for job in work.jobs { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
                break
            }
            for submission in work.submissions { start(submission) }
            for id in work.cancellations { abort(id, reason: "the task was cancelled") }
            // Jobs run after the submissions: the requests they send are queued for the next turn,
            // which comes at once because queueing wakes the poll below.
            for job in work.jobs { job.runSynchronously(on: executor.asUnownedTaskExecutor()) }

            var running: Int32 = 0
            _ = curl_multi_perform(multi.raw, &running)
            finishCompletedTransfers()
            let pollLimit = transfers.isEmpty ? Self.idlePollMilliseconds : Self.activePollMilliseconds
            if curl_multi_poll(multi.raw, nil, 0, pollLimit, nil) != CURLM_OK {
                usleep(10_000)  // should not happen; never spin
            }
        }
        for id in Array(transfers.keys) { abort(id, reason: "the HTTP client was shut down") }
        // Easy handles are gone; now the cached connections, then the caches they may touch.
        multi.close()
        share.close()
    }

    private func start(_ submission: Submission) {
        let transfer: CurlTransfer
        do throws(HTTPTransportError) {
            transfer = try CurlTransfer(submission, settings: settings, share: share)
        } catch {
            submission.continuation.resume(returning: .failure(error))
            return
        }
        guard let easy = transfer.easyRaw else { return }
        let code = curl_multi_add_handle(multi.raw, easy)
        guard code == CURLM_OK else {
            transfer.complete(
                with: .failure(
                    HTTPTransportError(
                        kind: .other, target: transfer.target,
                        reason: "curl_multi_add_handle failed: \(String(cString: curl_multi_strerror(code)))")))
            return
        }
        transfers[transfer.id] = transfer
        transferIDs[easy] = transfer.id
    }

    private func finishCompletedTransfers() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi.raw, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            // Read before removing the handle: that invalidates the message.
            let code = ccurl_msg_result(message)
            guard let id = transferIDs.removeValue(forKey: easy),
                let transfer = transfers.removeValue(forKey: id)
            else { continue }
            curl_multi_remove_handle(multi.raw, easy)
            transfer.complete(with: code)
        }
    }

    /// Removing a running handle makes libcurl drop the transfer (and close its connection).
    private func abort(_ id: UInt64, reason: String) {
        guard let transfer = transfers.removeValue(forKey: id) else { return }  // already finished
        if let easy = transfer.easyRaw {
            transferIDs.removeValue(forKey: easy)
            curl_multi_remove_handle(multi.raw, easy)
        }
        transfer.complete(with: .failure(HTTPTransportError(kind: .cancelled, target: transfer.target, reason: reason)))
    }
}

/// Runs Swift jobs on the loop thread, between libcurl calls. A task that sends one request
/// after another (the pages of a listing) runs here, so nothing hands an answer to another
/// thread and back before the next request leaves. Jobs must not block: they hold up every
/// transfer.
final class CurlLoopExecutor: TaskExecutor {
    private let mailbox: CurlLoopMailbox

    init(mailbox: CurlLoopMailbox) {
        self.mailbox = mailbox
    }

    func enqueue(_ job: consuming ExecutorJob) {
        mailbox.enqueue(UnownedJob(job))
    }
}
