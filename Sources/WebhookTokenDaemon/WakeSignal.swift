import NIOCore
import NIOPosix
import Synchronization

/// Wakes the renewal loop early: a refresh request, a reload, or a consumer finding the token
/// unservable (after a suspend) all need the loop to look again before its deadline.
///
/// A signal sent while nobody waits is remembered (once), so none is lost between two waits.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when signalled or cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Returns at `deadline`, when signalled, or when cancelled — whichever is first.
    func wait(until deadline: ContinuousClock.Instant) async {
        let delay = ContinuousClock.now.duration(to: deadline)
        guard delay > .zero else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await sleepOnEventLoop(for: delay) }
            group.addTask { await self.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}

/// Sleeps on a NIO event loop timer rather than with `Task.sleep`.
///
/// Measured on this toolchain: while any `Task.sleep` longer than a second is pending,
/// libdispatch's timer thread re-arms its timerfd in one-second steps — 60 wakeups a minute in a
/// daemon that should sleep for 45 minutes. An event loop timer is one `epoll_wait` timeout.
/// (After a suspend the timer may fire late; the renewal loop is also woken whenever a consumer
/// finds the token unservable, so nothing waits on it.)
func sleepOnEventLoop(for duration: Duration, on eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) async {
    let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    let scheduled = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {}
    await withTaskCancellationHandler {
        _ = try? await scheduled.futureResult.get()
    } onCancel: {
        scheduled.cancel()
    }
}
