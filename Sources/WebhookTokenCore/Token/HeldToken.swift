/// The token the daemon currently holds, placed on the daemon's clock.
///
/// `Instant` is an instant of a clock that keeps counting through suspend (`ContinuousClock`,
/// CLOCK_BOOTTIME on Linux), so that after a laptop or VM resumes, `now` has moved on by the
/// suspended time and an expired token is recognised as expired.
public struct HeldToken<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    public let token: IssuedToken
    public let receivedAt: Instant
    /// `receivedAt + expires_in`: conservative, since the endpoint started the lifetime a little earlier.
    public let expiresAt: Instant
    /// The last instant the token is handed out: `expiresAt` minus the serving threshold.
    public let servableUntil: Instant
    /// `expiresAt` on the wall clock, in seconds since the Unix epoch, for `expires_at`.
    public let expiresAtEpochSeconds: Int64

    public init(token: IssuedToken, receivedAt: Instant, wallClockEpochSeconds: Int64, policy: RenewalPolicy) {
        self.token = token
        self.receivedAt = receivedAt
        self.expiresAt = receivedAt.advanced(by: token.lifetime)
        self.servableUntil = expiresAt.advanced(by: .zero - policy.servingThreshold(lifetime: token.lifetime))
        self.expiresAtEpochSeconds = wallClockEpochSeconds + token.lifetime.components.seconds
    }

    /// Whether the token may be handed to a consumer at `now`: it must outlive the consumer's request.
    public func isServable(at now: Instant) -> Bool {
        now < servableUntil
    }

    /// Whole seconds of life left at `now` (never negative), for `expires_in`.
    public func secondsLeft(at now: Instant) -> Int64 {
        let left = now.duration(to: expiresAt)
        return left > .zero ? left.components.seconds : 0
    }
}
