/// The numbers that decide when a token is renewed, retried and served (`[renewal]` in the config).
///
/// With the defaults and Identity Cloud's default one-hour token:
///
/// | event                          | when                                                       |
/// |--------------------------------|------------------------------------------------------------|
/// | renewal                        | 45 min after issue, minus up to 3 min of jitter (42–45 min) |
/// | retry after a transient error  | 1 s, 2 s, 4 s … doubling, capped at 60 s, each ±50 % jitter |
/// | retry after a permanent error  | same sequence, capped at 5 min                              |
/// | token no longer served         | when less than 60 s of life remain (59 min after issue)    |
///
/// That leaves at least 14 minutes between the first renewal attempt and the moment the token stops
/// being served: an endpoint outage shorter than that is invisible to consumers.
public struct RenewalPolicy: Sendable, Equatable {
    /// Renew when this fraction of the token's lifetime remains (`renew_at_remaining = 0.25`).
    public var renewAtRemainingFraction: Double
    /// Spread renewals over this fraction of the lifetime, earlier than the renewal point, so that a
    /// fleet of hosts started together does not ask the endpoint at the same second (`jitter = 0.05`).
    public var jitterFraction: Double
    /// Serve a token only while it has at least this much life left (`min_remaining_life = "60s"`);
    /// scaled down to a tenth of the lifetime for very short-lived tokens.
    public var minimumRemainingLife: Duration
    /// First retry delay after a failed fetch (`retry_initial = "1s"`).
    public var retryInitial: Duration
    /// Cap of the doubling retry delay after transient failures (`retry_max = "60s"`).
    public var retryMaximum: Duration
    /// Cap of the retry delay after permanent failures such as `invalid_client` (`retry_max_permanent = "5m"`).
    public var retryMaximumPermanent: Duration
    /// The longest `Retry-After` from the endpoint that is honoured (`retry_after_max = "5m"`).
    public var retryAfterMaximum: Duration
    /// `POST /v1/token/refresh` starts at most one fetch per this interval (`refresh_min_interval = "10s"`).
    public var refreshMinimumInterval: Duration
    /// A refresh starts a fetch on behalf of any one user at most once per this interval
    /// (`refresh_min_interval_per_user = "30s"`).
    public var refreshMinimumIntervalPerUser: Duration

    public init(
        renewAtRemainingFraction: Double = 0.25,
        jitterFraction: Double = 0.05,
        minimumRemainingLife: Duration = .seconds(60),
        retryInitial: Duration = .seconds(1),
        retryMaximum: Duration = .seconds(60),
        retryMaximumPermanent: Duration = .seconds(300),
        retryAfterMaximum: Duration = .seconds(300),
        refreshMinimumInterval: Duration = .seconds(10),
        refreshMinimumIntervalPerUser: Duration = .seconds(30)
    ) {
        self.renewAtRemainingFraction = renewAtRemainingFraction
        self.jitterFraction = jitterFraction
        self.minimumRemainingLife = minimumRemainingLife
        self.retryInitial = retryInitial
        self.retryMaximum = retryMaximum
        self.retryMaximumPermanent = retryMaximumPermanent
        self.retryAfterMaximum = retryAfterMaximum
        self.refreshMinimumInterval = refreshMinimumInterval
        self.refreshMinimumIntervalPerUser = refreshMinimumIntervalPerUser
    }

    /// The shortest wait between receiving a token and renewing it, so that a token with a tiny
    /// lifetime cannot make the daemon hammer the endpoint: half the lifetime, at most 5 s.
    public static func renewalFloor(lifetime: Duration) -> Duration {
        min(lifetime / 2, .seconds(5))
    }

    /// How long after issue to renew a token of `lifetime`, given `unitRandom` in `0..<1`.
    ///
    ///     delay = lifetime × (1 − renew_at_remaining) − lifetime × jitter × unitRandom
    ///
    /// never less than ``renewalFloor(lifetime:)``.
    public func renewalDelay(lifetime: Duration, unitRandom: Double) -> Duration {
        let lifetimeSeconds = lifetime.seconds
        let delay = lifetimeSeconds * (1 - renewAtRemainingFraction) - lifetimeSeconds * jitterFraction * unitRandom
        return max(Duration.seconds(delay), Self.renewalFloor(lifetime: lifetime))
    }

    /// The least remaining life a token of `lifetime` must have to be served:
    /// `min(min_remaining_life, lifetime / 10)`.
    public func servingThreshold(lifetime: Duration) -> Duration {
        min(minimumRemainingLife, lifetime / 10)
    }

    /// The retry delay after the `attempt`-th consecutive failure (1-based):
    ///
    ///     base  = min(retry_initial × 2^(attempt − 1), cap)       cap = retry_max, or retry_max_permanent
    ///     delay = base × (0.5 + unitRandom)                        (±50 % jitter, never above cap)
    ///
    /// and never less than the endpoint's `Retry-After` (bounded by `retry_after_max`).
    ///
    /// | attempt | 1   | 2   | 3   | 4   | 5    | 6    | 7    | 8+   |
    /// |---------|-----|-----|-----|-----|------|------|------|------|
    /// | base    | 1 s | 2 s | 4 s | 8 s | 16 s | 32 s | 60 s | 60 s |
    public func retryDelay(attempt: Int, permanent: Bool, retryAfter: Duration?, unitRandom: Double) -> Duration {
        let cap = permanent ? retryMaximumPermanent : retryMaximum
        let exponent = min(max(attempt - 1, 0), 40)
        let base = min(retryInitial.seconds * Double(1 << UInt64(exponent)), cap.seconds)
        var delay = min(Duration.seconds(base * (0.5 + unitRandom)), cap)
        if let retryAfter {
            delay = max(delay, min(retryAfter, retryAfterMaximum))
        }
        return delay
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
