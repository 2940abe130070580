import Glibc

/// A point on the monotonic clock after which the client stops waiting for the daemon.
struct Deadline {
    private let nanoseconds: Int64

    /// A deadline `seconds` from now.
    init(secondsFromNow seconds: Double) {
        nanoseconds = Deadline.now() + Int64(seconds * 1_000_000_000)
    }

    /// The time left as a `timeval` for SO_RCVTIMEO/SO_SNDTIMEO, or nil once the deadline passed.
    /// Never zero, because a zero timeout means "wait forever" to the kernel.
    func remainingTimeval() -> timeval? {
        let left = nanoseconds - Deadline.now()
        guard left > 0 else { return nil }
        let microseconds = max(left / 1_000, 1)
        return timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    }

    private static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
