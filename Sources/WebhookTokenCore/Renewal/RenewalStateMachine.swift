/// Decides when to fetch a token, how long to wait after a failure, what to serve, and what every
/// waiting consumer gets.
///
/// A pure state machine in the manner of hummingbird's and async-http-client's: it never reads a
/// clock, sleeps, or draws random numbers. The driver feeds it events — started, fetch succeeded,
/// fetch failed, woke up, refresh requested, reconfigured, shut down — with the current instant
/// (and a uniform random number where jitter applies), and it *returns* what to do: the renewal
/// loop's next ``Action``, and the consumers to answer with which ``Answer``. All renewal state is
/// here, in one place: the held token, the schedule, the consumers waiting for a fetch (`Waiter`
/// is whatever the driver resumes them with), whether an expiry has been reported, and whether
/// the daemon is stopping. Tests move a manual clock through an hour-long lifetime in microseconds.
///
/// At most one fetch is ever in flight: the machine hands out `.fetch` only from a state where no
/// fetch is running, and expects exactly one `fetchSucceeded` or `fetchFailed` for it.
public struct RenewalStateMachine<Instant: InstantProtocol & Sendable, Waiter: Sendable>: Sendable
where Instant.Duration == Duration {
    public private(set) var policy: RenewalPolicy

    /// What the renewal loop is to do next.
    public enum Action: Equatable, Sendable {
        /// Send one token request now, then report its outcome.
        case fetch
        /// Sleep until this instant (or until woken), then report `deadlineReached`.
        case wait(until: Instant)
        /// The daemon is stopping: leave the loop.
        case stop
    }

    /// What a consumer waiting for a token is answered.
    public enum Answer: Sendable {
        /// The token to serve (a fresh one, or the current one where no fetch was needed).
        case token(HeldToken<Instant>)
        /// A refresh could not bring a new token, but the current one is still servable: it is
        /// answered, with the reason the refresh failed.
        case tokenAfterFailedRefresh(HeldToken<Instant>, FetchFailure)
        /// No servable token; the failure that prevented one, when there was a fetch.
        case unavailable(FetchFailure?)
        /// The daemon is stopping.
        case shuttingDown
    }

    /// What the driver does when a fetch ends.
    public struct Completion: Sendable {
        /// The loop's next step.
        public var next: Action
        /// The consumers waiting for this fetch, all to be given ``answer``.
        public var waiters: [Waiter]
        public var answer: Answer
        /// Whether no token had been obtained before this fetch ended: a success is the first
        /// token (readiness), a permanent failure means the daemon cannot start its job.
        public var beforeFirstToken: Bool
    }

    /// What the driver does after the loop woke.
    public struct Wakeup: Sendable {
        public var next: Action
        /// The held token has just stopped being servable (reported once per token).
        public var tokenExpired: Bool
    }

    /// What a consumer's `POST /v1/token/refresh` gets.
    public enum RefreshDecision: Sendable {
        /// A fetch was scheduled for this refresh and the waiter stored: wake the loop.
        case fetchScheduled
        /// A fetch is in flight or scheduled; the waiter was stored and shares its outcome.
        case joinedInFlight
        /// No fetch for this refresh; answer at once.
        case answerNow(Answer, NoFetchReason)
    }

    /// Why a refresh was answered without a fetch.
    public enum NoFetchReason: String, Sendable {
        /// Within `refresh_min_interval` of the last fetch, or `refresh_min_interval_per_user`
        /// of this user's last refresh.
        case rateLimited = "rate_limited"
        /// The endpoint's `Retry-After`, or the backoff after a permanent error, is being waited
        /// out: asking again now would only be refused, or make the endpoint throttle harder.
        case backingOff = "backing_off"
        case shuttingDown = "shutting_down"
    }

    private enum Phase: Equatable, Sendable {
        case idle
        case fetching(since: Instant)
        case waiting(until: Instant, isRetry: Bool)
        case stopped
    }

    public private(set) var held: HeldToken<Instant>?
    private var phase: Phase = .idle
    /// A refresh or a reload asked for a fetch before the scheduled one.
    private var fetchRequested = false
    /// Consumers waiting for the outcome of the next fetch to end.
    private var waiters: [Waiter] = []
    /// Whether the held token's end of serving has been reported.
    private var expiryReported = false
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

    /// The daemon has started: fetch a token now.
    public mutating func start(now: Instant) -> Action {
        precondition(phase == .idle, "start twice")
        return beginFetch(now: now)
    }

    /// The in-flight fetch produced a token.
    ///
    /// Its lifetime counts from when the fetch *started* (the request was sent then), and its
    /// wall-clock expiry likewise: `epochSeconds` is now, so the send time is `epochSeconds` less
    /// the time the fetch took.
    public mutating func fetchSucceeded(
        _ token: IssuedToken, now: Instant, epochSeconds: Int64, unitRandom: Double
    ) -> Completion {
        guard case .fetching(let sentAt) = phase else { return outcomeAfterStop() }
        let isFirst = lastSuccessEpochSeconds == nil
        let took = sentAt.duration(to: now)
        let sentAtEpochSeconds = epochSeconds - took.components.seconds - (took.components.attoseconds > 0 ? 1 : 0)
        let token = HeldToken(
            token: token, requestSentAt: sentAt, requestSentAtEpochSeconds: sentAtEpochSeconds, policy: policy)
        held = token
        expiryReported = false
        consecutiveFailures = 0
        lastSuccessEpochSeconds = epochSeconds
        counters.fetchesSucceeded += 1
        // Renew relative to the send, but never in the past: an endpoint slower than three
        // quarters of a lifetime is then asked again as soon as it answers, which the single
        // in-flight fetch already paces.
        let renewAt = max(
            sentAt.advanced(by: policy.renewalDelay(lifetime: token.token.lifetime, unitRandom: unitRandom)), now)
        return complete(
            wait: .waiting(until: renewAt, isRetry: false), answer: .token(token), isFirst: isFirst, now: now)
    }

    /// The in-flight fetch failed.
    public mutating func fetchFailed(
        _ failure: FetchFailure, now: Instant, epochSeconds: Int64, unitRandom: Double
    ) -> Completion {
        guard case .fetching = phase else { return outcomeAfterStop() }
        let isFirst = lastSuccessEpochSeconds == nil
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
        let answer: Answer
        if let current = servableToken(at: now) {
            answer = .tokenAfterFailedRefresh(current, failure)
        } else {
            answer = .unavailable(failure)
        }
        return complete(
            wait: .waiting(until: now.advanced(by: delay), isRetry: true), answer: answer, isFirst: isFirst, now: now)
    }

    /// The loop woke: at its deadline, early because it was woken, or late after a suspend.
    public mutating func deadlineReached(now: Instant) -> Wakeup {
        var expired = false
        if let held, !expiryReported, !held.isServable(at: now) {
            expiryReported = true
            expired = true
        }
        switch phase {
        case .stopped:
            return Wakeup(next: .stop, tokenExpired: expired)
        case .fetching:
            preconditionFailure("deadlineReached while a fetch is in flight")
        case .idle:
            return Wakeup(next: beginFetch(now: now), tokenExpired: expired)
        case .waiting(let until, _):
            if fetchRequested || now >= until {
                return Wakeup(next: beginFetch(now: now), tokenExpired: expired)
            }
            return Wakeup(next: .wait(until: wakeInstant(deadline: until)), tokenExpired: expired)
        }
    }

    /// A consumer asks for a new token now (its API call was rejected), and will wait as `waiter`
    /// if a fetch is to be waited for.
    ///
    /// Requests while a fetch is in flight share its outcome. Otherwise a fetch starts at most
    /// once per `refresh_min_interval` overall, and at most once per
    /// `refresh_min_interval_per_user` on behalf of any one user — so one consumer stuck in a
    /// retry loop cannot keep the daemon hammering the endpoint — and never while the endpoint's
    /// `Retry-After` or a permanent-error backoff is being waited out. Those requests get the
    /// current token (or why there is none) at once. The decision and the waiter's registration
    /// are one event, so no fetch can end between them.
    public mutating func refreshRequested(now: Instant, requester: UInt32? = nil, waiter: Waiter) -> RefreshDecision {
        counters.refreshesRequested += 1
        switch phase {
        case .stopped:
            return .answerNow(.shuttingDown, .shuttingDown)
        case .fetching:
            waiters.append(waiter)
            return .joinedInFlight
        case .idle, .waiting:
            if fetchRequested {
                waiters.append(waiter)
                return .joinedInFlight
            }
        }
        if isBackingOff {
            counters.refreshesRateLimited += 1
            return .answerNow(currentAnswer(at: now), .backingOff)
        }
        if let requester, let last = lastRefreshByRequester[requester],
            last.duration(to: now) < policy.refreshMinimumIntervalPerUser
        {
            counters.refreshesRateLimited += 1
            return .answerNow(currentAnswer(at: now), .rateLimited)
        }
        if let lastFetchStartedAt, lastFetchStartedAt.duration(to: now) < policy.refreshMinimumInterval {
            counters.refreshesRateLimited += 1
            return .answerNow(currentAnswer(at: now), .rateLimited)
        }
        if let requester {
            if lastRefreshByRequester.count >= 1024 {
                lastRefreshByRequester = lastRefreshByRequester.filter {
                    $0.value.duration(to: now) < policy.refreshMinimumIntervalPerUser
                }
            }
            lastRefreshByRequester[requester] = now
        }
        fetchRequested = true
        waiters.append(waiter)
        return .fetchScheduled
    }

    /// A consumer asks for the token before the first fetch has ended (the socket-activation
    /// case, where the first consumer started the daemon): it waits for that fetch's outcome.
    /// Returns the answer at once (and stores nothing) when there is nothing to wait for.
    public mutating func firstTokenRequested(now: Instant, waiter: Waiter) -> Answer? {
        if phase == .stopped { return .shuttingDown }
        guard isAwaitingFirstToken else { return currentAnswer(at: now) }
        waiters.append(waiter)
        return nil
    }

    /// The configuration was reloaded. The held token stays servable — it was issued legitimately
    /// and consumers keep working — and when the endpoint or credentials changed, a fetch starts
    /// as soon as the loop wakes (or right after the one in flight), so that the new ones take
    /// effect and are verified. Returns whether the loop is to be woken.
    public mutating func reconfigure(policy: RenewalPolicy, refetch: Bool) -> Bool {
        self.policy = policy
        guard refetch, phase != .stopped else { return false }
        consecutiveFailures = 0
        fetchRequested = true
        return !isFetching
    }

    /// The daemon is stopping: every waiting consumer is answered ``Answer/shuttingDown`` (the
    /// returned waiters), later requests are answered so at once, and the loop is told to stop.
    /// The held token is still served to plain `GET`s until the socket closes.
    public mutating func shutdown() -> [Waiter] {
        phase = .stopped
        fetchRequested = false
        defer { waiters = [] }
        return waiters
    }

    // MARK: - Queries

    /// Whether a fetch is running now.
    public var isFetching: Bool {
        if case .fetching = phase { return true }
        return false
    }

    /// When the running fetch started.
    public var fetchStartedAt: Instant? {
        if case .fetching(let since) = phase { return since }
        return nil
    }

    public var isStopped: Bool { phase == .stopped }

    /// Whether the first fetch has not ended yet.
    public var isAwaitingFirstToken: Bool {
        phase != .stopped && lastSuccessEpochSeconds == nil && consecutiveFailures == 0
    }

    /// The number of consumers waiting for a fetch to end.
    public var waiterCount: Int { waiters.count }

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

    /// What a consumer asking now gets without waiting.
    public func currentAnswer(at now: Instant) -> Answer {
        if let token = servableToken(at: now) { return .token(token) }
        return .unavailable(lastFailure?.failure)
    }

    /// The broker's state at `now`, as `/v1/status` and systemd's `STATUS=` report it.
    public func state(at now: Instant) -> BrokerState {
        let servable = servableToken(at: now) != nil
        let permanent = consecutiveFailures > 0 && (lastFailure?.failure.isPermanent ?? false)
        if servable {
            if consecutiveFailures > 0 { return .degraded }
            return isFetching ? .renewing : .valid
        }
        if permanent { return .failed }
        return held == nil ? .starting : .expired
    }

    // MARK: - Private

    /// Whether the wait in progress is the endpoint's `Retry-After` or a permanent-error backoff.
    private var isBackingOff: Bool {
        guard case .waiting(_, isRetry: true) = phase, let failure = lastFailure?.failure else { return false }
        return failure.retryAfter != nil || failure.isPermanent
    }

    private mutating func beginFetch(now: Instant) -> Action {
        phase = .fetching(since: now)
        fetchRequested = false
        lastFetchStartedAt = now
        counters.fetchesStarted += 1
        return .fetch
    }

    private mutating func complete(wait: Phase, answer: Answer, isFirst: Bool, now: Instant) -> Completion {
        phase = wait
        let answered = waiters
        waiters = []
        let next: Action
        if fetchRequested {
            // The configuration changed while this fetch ran with the old one.
            next = beginFetch(now: now)
        } else if case .waiting(let until, _) = wait {
            next = .wait(until: wakeInstant(deadline: until))
        } else {
            next = .fetch
        }
        return Completion(next: next, waiters: answered, answer: answer, beforeFirstToken: isFirst)
    }

    /// A fetch ended after ``shutdown()``: nothing more to do.
    private func outcomeAfterStop() -> Completion {
        precondition(phase == .stopped, "a fetch outcome without a fetch in flight")
        return Completion(next: .stop, waiters: [], answer: .shuttingDown, beforeFirstToken: false)
    }

    /// The loop also wakes when the held token stops being servable, to report it.
    private func wakeInstant(deadline: Instant) -> Instant {
        guard let held, !expiryReported else { return deadline }
        return min(deadline, held.servableUntil)
    }
}

/// The broker's externally visible state.
public enum BrokerState: String, Sendable, Equatable, CaseIterable {
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
