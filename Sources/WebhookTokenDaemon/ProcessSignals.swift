import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM, SIGINT and SIGHUP, received without libdispatch.
///
/// ServiceLifecycle traps signals with libdispatch signal sources, and the first libdispatch source
/// starts libdispatch's worker-pool monitor: a one-second timer that then wakes the idle daemon 60
/// times a minute for the rest of its life. Instead, ``blockHandledSignals()`` blocks these signals
/// on the main thread before any other thread exists (every thread inherits the mask), and one
/// thread waits for them in `sigwait(2)`: it wakes only when a signal arrives.
///
/// A signal with no handler set keeps its usual meaning: SIGTERM and SIGINT end the process (as
/// before the services run), SIGHUP is ignored (as before the reload service runs, and in dev mode).
public final class ProcessSignals: Sendable {
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP]
    /// The one instance, shared by the waiting thread and the daemon.
    static let shared = ProcessSignals()

    private let handlers = Mutex<[Int32: @Sendable () -> Void]>([:])

    private init() {}

    /// Blocks the handled signals in the calling thread and in every thread it starts later, and
    /// starts the thread that waits for them. Call first thing on the main thread.
    public static func blockHandledSignals() {
        var set = handledSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { _ in ProcessSignals.shared.waitForever() }, nil)
        precondition(started == 0, "Failed to start the signal thread: errno \(started)")
        pthread_detach(thread)
    }

    /// Runs `handler` (on the signal thread; it must not block) for every `signal` from now on.
    func setHandler(for signal: Int32, _ handler: @escaping @Sendable () -> Void) {
        handlers.withLock { $0[signal] = handler }
    }

    /// The SIGHUPs from now on, for the reload service.
    func hangups() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        setHandler(for: SIGHUP) { continuation.yield() }
        return stream
    }

    private func waitForever() -> Never {
        var set = Self.handledSet()
        while true {
            var signal: Int32 = 0
            guard sigwait(&set, &signal) == 0 else { continue }
            if let handler = handlers.withLock({ $0[signal] }) {
                handler()
            } else if signal != SIGHUP {
                // No handler yet: the default action, which ends the process.
                Glibc.signal(signal, SIG_DFL)
                var only = sigset_t()
                sigemptyset(&only)
                sigaddset(&only, signal)
                pthread_sigmask(SIG_UNBLOCK, &only, nil)
                raise(signal)
            }
        }
    }

    private static func handledSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in handled { sigaddset(&set, signal) }
        return set
    }
}
