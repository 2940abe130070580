import NIOCore
import WebhookTokenEndpoint

#if canImport(Glibc)
    import Glibc
#endif

/// The time the token broker runs on, injected so that tests can drive the production broker
/// with a manual clock — through an hour-long token, or a suspend — in milliseconds.
///
/// Two clocks matter, and they differ exactly across a suspend:
/// - ``now`` counts through suspend (CLOCK_BOOTTIME): token lifetimes and renewal deadlines are
///   measured on it, because a token keeps ageing while the machine sleeps.
/// - ``uptime`` and ``sleep(for:)`` stop while suspended (CLOCK_MONOTONIC, which event-loop timers
///   use): the renewal loop sleeps on it in bounded slices and re-checks ``now`` after each, and
///   its liveness is judged on it, so that a suspend is neither a late renewal nor a "hang".
public protocol BrokerClock: Sendable {
    /// Now, on a clock that counts through suspend.
    var now: ContinuousClock.Instant { get }
    /// Time since an arbitrary origin, on the clock that timers run on (it stops during suspend).
    var uptime: Duration { get }
    /// The wall clock, in whole seconds since the Unix epoch.
    var epochSeconds: Int64 { get }
    /// Sleeps for `duration` of ``uptime``; returns early when the task is cancelled.
    func sleep(for duration: Duration) async
}

/// The real clocks: `ContinuousClock`, NIO's monotonic clock and timers, and `time(2)`.
public struct SystemBrokerClock: BrokerClock {
    public init() {}

    public var now: ContinuousClock.Instant { .now }

    public var uptime: Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds)) }

    public var epochSeconds: Int64 { Int64(time(nil)) }

    public func sleep(for duration: Duration) async {
        await sleepOnEventLoop(for: duration)
    }
}
