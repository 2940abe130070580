/// Decides when to fetch a token, how long to wait after a failure, and what to serve.
///
/// A pure state machine in the manner of hummingbird's: it never reads a clock, sleeps, or draws
/// random numbers. The driver feeds it events — started, fetch succeeded, fetch failed, deadline
/// reached, refresh requested — with the current instant (and a uniform random number where
/// jitter applies), and it *returns* the next ``Action``. Tests move a manual clock through an
/// hour-long token lifetime in microseconds.
///
/// At most one fetch is ever in flight: the machine hands out `.fetch` only from a state where no
/// fetch is running, and expects exactly one `fetchSucceeded` or `fetchFailed` for it.
public struct RenewalStateMachine<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    public private(set) var policy: RenewalPolicy

    /// What the driver is to do next.
    public enum Action: Equatable, Sendable {
        /// Send one token request now, then report its outcome.
        case fetch
        /// Sleep until this instant (or until woken by a refresh request), then report `deadlineReached`.
        case wait(until: Instant)
    }

    /// What a consumer's `POST /v1/token/refresh` gets.
    public enum RefreshDecision: Equatable, Sendable {
        /// A fetch was scheduled for this refresh; wake the driver and wait for its outcome.
        case fetchScheduled
        /// A fetch is already in flight or scheduled: wait for its outcome.
        case joinInFlight
        /// A fetch started less than `refresh_min_interval` ago: answer with the current token.
        case rateLimited
    }

    private enum Phase: Equatable, Sendable {
        case idle
        case fetching
        case waiting(until: Instant, isRetry: Bool)
    }

    public private(set) var held: HeldToken<Instant>?
    private var phase: Phase = .idle
    /// A refresh asked for a fetch while the driver was waiting.
    private var refreshPending = false
    private var lastFetchStartedAt: Instant?
    /// When each requesting user last asked for a refresh, for the per-user rate limit.
    private var lastRefreshByRequester: [UInt32: Instant] = [:]

    public private(set) var consecutiveFailures = 0
    /// The most recent failure and its wall-clock time; kept after a success, for the record.
    public private(set) var lastFailure: (failure: FetchFailure, epochSeconds: Int64)?
    public private(set) var lastSuccessEpochSeconds: Int64?
    public private(set) var counters = RenewalCounters()

    public init(policy: RenewalPolicy) {
        self.policy = policy
    }

    // MARK: - Events

    /// The daemon has started (or its configuration changed): fetch a token now.
    public mutating func start(now: Instant) -> Action {
        precondition(phase != .fetching, "start while a fetch is in flight")
        return beginFetch(now: now)
    }

    /// The in-flight fetch produced a token.
    public mutating func fetchSucceeded(_ token: IssuedToken, now: Instant, epochSeconds: Int64, unitRandom: Double) -> Action {
        precondition(phase == .fetching, "fetchSucceeded without a fetch in flight")
        held = HeldToken(token: token, receivedAt: now, wallClockEpochSeconds: epochSeconds, policy: policy)
        consecutiveFailures = 0
        lastSuccessEpochSeconds = epochSeconds
        counters.fetchesSucceeded += 1
        let renewAt = now.advanced(by: policy.renewalDelay(lifetime: token.lifetime, unitRandom: unitRandom))
        return afterFetch(wait: .waiting(until: renewAt, isRetry: false), now: now)
    }

    /// The in-flight fetch failed.
    public mutating func fetchFailed(_ failure: FetchFailure, now: Instant, epochSeconds: Int64, unitRandom: Double) -> Action {
        precondition(phase == .fetching, "fetchFailed without a fetch in flight")
        consecutiveFailures += 1
        lastFailure = (failure, epochSeconds)
        if failure.isPermanent {
            counters.fetchesFailedPermanent += 1
        } else {
            counters.fetchesFailedTransient += 1
        }
        let delay = policy.retryDelay(
            attempt: consecutiveFailures, permanent: failure.isPermanent, retryAfter: failure.retryAfter,
            unitRandom: unitRandom)
        return afterFetch(wait: .waiting(until: now.advanced(by: delay), isRetry: true), now: now)
    }

    /// The driver woke up: at its deadline, early because of a refresh, or late after a suspend.
    public mutating func deadlineReached(now: Instant) -> Action {
        switch phase {
        case .fetching:
            preconditionFailure("deadlineReached while a fetch is in flight")
        case .idle:
            return beginFetch(now: now)
        case .waiting(let until, _):
            if refreshPending || now >= until {
                return beginFetch(now: now)
            }
            return .wait(until: until)
        }
    }

    /// A consumer asks for a new token now (its API call was rejected). Requests while a fetch is
    /// in flight share its outcome. Otherwise a fetch starts at most once per
    /// `refresh_min_interval` overall, and at most once per `refresh_min_interval_per_user` on
    /// behalf of any one user — so one consumer stuck in a retry loop cannot keep the daemon
    /// hammering the endpoint; rate-limited requests get the current token.
    public mutating func refreshRequested(now: Instant, requester: UInt32? = nil) -> RefreshDecision {
        counters.refreshesRequested += 1
        if phase == .fetching || refreshPending {
            return .joinInFlight
        }
        if let requester, let last = lastRefreshByRequester[requester],
            last.duration(to: now) < policy.refreshMinimumIntervalPerUser
        {
            counters.refreshesRateLimited += 1
            return .rateLimited
        }
        if let lastFetchStartedAt, lastFetchStartedAt.duration(to: now) < policy.refreshMinimumInterval {
            counters.refreshesRateLimited += 1
            return .rateLimited
        }
        if let requester {
            if lastRefreshByRequester.count >= 1024 {
                lastRefreshByRequester = lastRefreshByRequester.filter {
                    $0.value.duration(to: now) < policy.refreshMinimumIntervalPerUser
                }
            }
            lastRefreshByRequester[requester] = now
        }
        refreshPending = true
        return .fetchScheduled
    }

    /// The configuration was reloaded. The held token stays servable — it was issued legitimately
    /// and consumers keep working — and when the endpoint or credentials changed, a fetch starts
    /// now (or right after the one in flight) so that the new ones take effect and are verified.
    public mutating func reconfigure(policy: RenewalPolicy, refetch: Bool, now: Instant) -> Action? {
        self.policy = policy
        guard refetch else { return nil }
        consecutiveFailures = 0
        if phase == .fetching {
            refreshPending = true
            return nil
        }
        return beginFetch(now: now)
    }

    // MARK: - Queries

    /// Whether a fetch is running now.
    public var isFetching: Bool { phase == .fetching }

    /// The instant of the next fetch, when one is scheduled.
    public var nextFetchAt: Instant? {
        if case .waiting(let until, _) = phase { return until }
        return nil
    }

    /// Whether the next scheduled fetch is a retry after a failure (rather than a routine renewal).
    public var nextFetchIsRetry: Bool {
        if case .waiting(_, let isRetry) = phase { return isRetry }
        return false
    }

    /// The token to serve at `now`, if the held one may still be served.
    public func servableToken(at now: Instant) -> HeldToken<Instant>? {
        guard let held, held.isServable(at: now) else { return nil }
        return held
    }

    /// The broker's state at `now`, as `/v1/status` and systemd's `STATUS=` report it.
    public func state(at now: Instant) -> BrokerState {
        let servable = servableToken(at: now) != nil
        let permanent = consecutiveFailures > 0 && (lastFailure?.failure.isPermanent ?? false)
        if servable {
            if consecutiveFailures > 0 { return .degraded }
            return phase == .fetching ? .renewing : .valid
        }
        if permanent { return .failed }
        return held == nil ? .starting : .expired
    }

    // MARK: - Private

    private mutating func beginFetch(now: Instant) -> Action {
        phase = .fetching
        refreshPending = false
        lastFetchStartedAt = now
        counters.fetchesStarted += 1
        return .fetch
    }

    private mutating func afterFetch(wait: Phase, now: Instant) -> Action {
        phase = wait
        if refreshPending {
            // The configuration changed while this fetch ran with the old one.
            return beginFetch(now: now)
        }
        guard case .waiting(let until, _) = wait else { return .fetch }
        return .wait(until: until)
    }
}

/// The broker's externally visible state.
public enum BrokerState: String, Sendable, Equatable {
    /// No token yet; the first fetch is running or being retried after transient errors.
    case starting
    /// A servable token, no renewal running.
    case valid
    /// A servable token, and its renewal is in flight.
    case renewing
    /// A servable token, but renewal attempts are failing; consumers are not affected yet.
    case degraded
    /// The token can no longer be served and transient errors prevent a new one.
    case expired
    /// No servable token and the endpoint rejects the credentials or request: needs a person.
    case failed
}

/// Counts of what the renewal machinery has done since start-up.
public struct RenewalCounters: Equatable, Sendable {
    public var fetchesStarted = 0
    public var fetchesSucceeded = 0
    public var fetchesFailedTransient = 0
    public var fetchesFailedPermanent = 0
    public var refreshesRequested = 0
    public var refreshesRateLimited = 0

    public init(
        fetchesStarted: Int = 0, fetchesSucceeded: Int = 0, fetchesFailedTransient: Int = 0,
        fetchesFailedPermanent: Int = 0, refreshesRequested: Int = 0, refreshesRateLimited: Int = 0
    ) {
        self.fetchesStarted = fetchesStarted
        self.fetchesSucceeded = fetchesSucceeded
        self.fetchesFailedTransient = fetchesFailedTransient
        self.fetchesFailedPermanent = fetchesFailedPermanent
        self.refreshesRequested = refreshesRequested
        self.refreshesRateLimited = refreshesRateLimited
    }
}
