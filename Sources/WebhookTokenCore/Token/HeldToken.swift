/// The token the daemon currently holds, placed on the daemon's clock.
///
/// `Instant` is an instant of a clock that keeps counting through suspend (`ContinuousClock`,
/// CLOCK_BOOTTIME on Linux), so that after a laptop or VM resumes, `now` has moved on by the
/// suspended time and an expired token is recognised as expired.
///
/// Its lifetime is counted from the moment the request was *sent*, not from when the answer
/// arrived: the endpoint starts `expires_in` when it mints the token, which is somewhere between
/// the two. Counting from the arrival would serve a token for as long past its real expiry as the
/// endpoint took to answer (observed: a 10 s token answered after 6 s, served 4.8 s too long).
public struct HeldToken<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    public let token: IssuedToken
    /// When the request that brought it was sent: the earliest the endpoint can have minted it.
    public let requestSentAt: Instant
    /// `requestSentAt + expires_in`: never later than the real expiry.
    public let expiresAt: Instant
    /// The last instant the token is handed out: `expiresAt` minus the serving threshold.
    public let servableUntil: Instant
    /// `expiresAt` on the wall clock, in seconds since the Unix epoch, for `expires_at`.
    public let expiresAtEpochSeconds: Int64
    /// The token rendered once in the forms the socket serves.
    public let presentation: PresentedToken

    /// - Parameters:
    ///   - requestSentAt: the instant the token request was sent.
    ///   - requestSentAtEpochSeconds: the same moment on the wall clock.
    public init(token: IssuedToken, requestSentAt: Instant, requestSentAtEpochSeconds: Int64, policy: RenewalPolicy) {
        self.token = token
        self.requestSentAt = requestSentAt
        self.expiresAt = requestSentAt.advanced(by: token.lifetime)
        self.servableUntil = expiresAt.advanced(by: .zero - policy.servingThreshold(lifetime: token.lifetime))
        self.expiresAtEpochSeconds = requestSentAtEpochSeconds + token.lifetime.components.seconds
        self.presentation = PresentedToken(token: token, expiresAtEpochSeconds: expiresAtEpochSeconds)
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
