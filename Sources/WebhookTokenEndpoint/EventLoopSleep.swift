public import NIOCore
public import NIOPosix

/// Sleeps on a NIO event loop timer rather than with `Task.sleep`.
///
/// `Task.sleep` hands its timer to libdispatch even when the NIO event loop is the global
/// executor, and the first use of libdispatch starts its worker-pool monitor, which wakes the
/// process every second for the rest of its life (measured on this toolchain; before that, a
/// pending `Task.sleep` longer than a second re-armed libdispatch's timerfd every second). An
/// event loop timer is one `epoll_wait` timeout. It runs on the clock that stops during suspend:
/// the renewal loop sleeps in bounded slices for that reason (see `BrokerClock`).
public func sleepOnEventLoop(
    for duration: Duration, on eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()
) async {
    let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    let scheduled = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {}
    await withTaskCancellationHandler {
        _ = try? await scheduled.futureResult.get()
    } onCancel: {
        scheduled.cancel()
    }
}
