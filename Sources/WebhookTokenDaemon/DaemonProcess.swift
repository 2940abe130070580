import CSwiftConcurrencyHooks
import NIOCore
import NIOPosix
import Synchronization

/// The process around ``Daemon``: what must happen on the main thread before anything else runs.
///
/// Swift concurrency's default global executor on Linux runs tasks on libdispatch's worker
/// threads, and the first of them starts libdispatch's worker-pool monitor, which wakes the
/// process every second for as long as it lives. Here every task runs on the NIO event loop
/// instead, which sleeps in `epoll_wait` until a socket or one of the daemon's own timers needs it.
/// That takeover must happen before the first task is created, hence a synchronous `main` that
/// calls ``start()`` and then blocks in ``run(_:)``.
public enum DaemonProcess {
    /// Event loops of the whole process. One serves this load at less CPU per request than two
    /// (no cross-thread wakeups between the socket, the broker and the tasks) and wakes less.
    static let eventLoops = 1
    /// Whether ``start()`` made the event loop the global executor (the daemon warns if not).
    static let ownsGlobalExecutor = Atomic<Bool>(false)

    /// Blocks the signals the daemon handles, sizes the NIO singleton group and makes it the
    /// global executor. Call first thing in `main`, on the main thread, once.
    public static func start() {
        ProcessSignals.blockHandledSignals()
        NIOSingletons.groupLoopCountSuggestion = eventLoops
        ownsGlobalExecutor.store(installEventLoopAsGlobalExecutor(), ordering: .relaxed)
    }

    /// Runs the daemon to the end, blocking the calling (main) thread; returns the exit status.
    public static func run(_ options: DaemonOptions) -> Int32 {
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Int32.self)
        promise.completeWithTask { await Daemon.run(options) }
        do {
            return try promise.futureResult.wait()
        } catch {
            Daemon.printError("webhook-tokend: \(error)")
            return DaemonExitCode.failure
        }
    }

    /// The runtime's hook type: the job, and the default implementation (unused here).
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// What NIO's `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`
    /// does, but with the hook variable linked by name rather than looked up with `dlsym`, which
    /// cannot see it in a binary linked with `-static-stdlib` (see `CSwiftConcurrencyHooks`). As
    /// unsafe as NIO's: it relies on the hook's Swift calling convention matching this closure's.
    private static func installEventLoopAsGlobalExecutor() -> Bool {
        guard webhook_tokend_enqueue_global_hook() == nil else { return false }  // someone else's executor
        let hook: EnqueueGlobalHook = { job, _ in
            // `any()` prefers the calling thread's own loop: a task that schedules another from the
            // event loop stays there, without a thread switch.
            MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
        }
        webhook_tokend_set_enqueue_global_hook(unsafeBitCast(hook, to: UnsafeMutableRawPointer.self))
        return true
    }
}
