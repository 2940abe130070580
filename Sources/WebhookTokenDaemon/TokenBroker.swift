public import Logging
import Synchronization
public import WebhookTokenCore
public import WebhookTokenEndpoint
public import WebhookTokenServer

#if canImport(Glibc)
import Glibc
#endif

/// Holds the token, drives its renewal, and answers the socket server.
///
/// The renewal *decisions* are the pure ``RenewalStateMachine``'s; the broker supplies it with the
/// time (`ContinuousClock`, which counts through suspend), jitter, and the outcomes of real token
/// requests, and carries out its actions. Readers never wait for renewal: the token being served
/// is an immutable ``PresentedToken`` swapped in under a short lock when a new one arrives.
public final class TokenBroker: Sendable {
    /// Everything that changes, behind one lock that is never held across an `await`.
    struct State {
        var machine: RenewalStateMachine<ContinuousClock.Instant>
        var presented: Presented?
        var request: TokenRequest
        var endpoint: Configuration.Endpoint
        /// Refresh callers waiting for the outcome of the next fetch.
        var refreshWaiters: [CheckedContinuation<TokenAnswer, Never>] = []
        /// Whether the loop has noticed that the held token stopped being servable.
        var expiryReported = false
        /// A reload began a fetch in the machine; the loop is to carry it out when it wakes.
        var pendingStart = false
        /// What the renewal loop is doing, for the watchdog's liveness check.
        var loopActivity: LoopActivity = .starting
    }

    enum LoopActivity {
        case starting
        case fetching(since: ContinuousClock.Instant)
        case waiting(until: ContinuousClock.Instant)
    }

    /// The token as served, with the instant it stops being served.
    struct Presented: Sendable {
        let held: HeldToken<ContinuousClock.Instant>
        let presentation: PresentedToken
    }

    /// Something the daemon wants to hear about: systemd status, readiness, metrics.
    public enum Event: Sendable {
        case tokenObtained(BrokerStatus, first: Bool)
        case fetchFailed(FetchFailure, BrokerStatus)
        case tokenExpired(BrokerStatus)
    }

    /// The first fetch was refused permanently: the daemon cannot do its job until reconfigured.
    public struct InitialFetchRejected: Error, CustomStringConvertible {
        public let failure: FetchFailure
        public var description: String {
            "Failed to obtain the first token: \(failure)" + (failure.remedy.map { "; \($0)" } ?? "")
        }
    }

    private let state: Mutex<State>
    private let wake = WakeSignal()
    private let clock = ContinuousClock()
    private let logger: Logger
    private let onEvent: @Sendable (Event) -> Void
    private let exitOnInitialPermanentFailure: Bool

    public init(
        endpoint: Configuration.Endpoint, request: TokenRequest, policy: RenewalPolicy, logger: Logger,
        exitOnInitialPermanentFailure: Bool = true, onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) {
        self.state = Mutex(State(machine: RenewalStateMachine(policy: policy), request: request, endpoint: endpoint))
        self.logger = logger
        self.onEvent = onEvent
        self.exitOnInitialPermanentFailure = exitOnInitialPermanentFailure
    }

    // MARK: - Serving (event loop threads)

    public func currentToken() -> TokenAnswer {
        let now = clock.now
        if let presented = state.withLock({ $0.presented }), presented.held.isServable(at: now) {
            return .token(presented.presentation, secondsLeft: presented.held.secondsLeft(at: now))
        }
        return unavailable(now: now)
    }

    /// Why there is no token, and when to ask again. Also wakes the renewal loop: after a
    /// suspend its timer may not have fired yet, and it must renew at once.
    private func unavailable(now: ContinuousClock.Instant) -> TokenAnswer {
        wake.signal()
        let status = self.status(now: now)
        let retryAfter = max(1, Int(min(status.nextFetchInSeconds ?? 1, 300)))
        return .unavailable(detail: "no valid token: \(status.summary())", retryAfterSeconds: retryAfter)
    }

    public func refreshToken(peerUID: UInt32?) async -> TokenAnswer {
        let now = clock.now
        let decision = state.withLock { $0.machine.refreshRequested(now: now, requester: peerUID) }
        switch decision {
        case .rateLimited:
            logger.debug("Refresh request answered with the current token (rate-limited)")
            return currentToken()
        case .fetchScheduled, .joinInFlight:
            return await withCheckedContinuation { continuation in
                state.withLock { $0.refreshWaiters.append(continuation) }
                if decision == .fetchScheduled {
                    logger.info("Token refresh requested by a consumer")
                }
                wake.signal()
            }
        }
    }

    /// Whether the first token request is running and has not failed yet.
    public var isAwaitingFirstToken: Bool {
        state.withLock { Self.awaitingFirstToken($0.machine) }
    }

    private static func awaitingFirstToken(_ machine: RenewalStateMachine<ContinuousClock.Instant>) -> Bool {
        machine.lastSuccessEpochSeconds == nil && machine.consecutiveFailures == 0
    }

    /// Waits for the first token request's outcome (joining the waiters of that fetch), or answers
    /// at once if it is already over.
    public func firstToken() async -> TokenAnswer {
        await withCheckedContinuation { (continuation: CheckedContinuation<TokenAnswer, Never>) in
            let joined = state.withLock { state -> Bool in
                guard Self.awaitingFirstToken(state.machine) else { return false }
                state.refreshWaiters.append(continuation)
                return true
            }
            if !joined { continuation.resume(returning: currentToken()) }
        }
    }

    public func statusJSON() -> String { status(now: clock.now).json() }
    public func statusText() -> String { status(now: clock.now).humanText() }

    public func status() -> BrokerStatus { status(now: clock.now) }

    private func status(now: ContinuousClock.Instant) -> BrokerStatus {
        state.withLock { state in
            BrokerStatus(machine: state.machine, now: now, epochSeconds: Self.epochSeconds(), tokenURL: state.endpoint.tokenURL.description)
        }
    }

    // MARK: - Reconfiguration

    /// Applies a reloaded configuration. The current token keeps being served; a changed endpoint
    /// or credential makes the loop fetch a new one now.
    public func reconfigure(endpoint: Configuration.Endpoint, request: TokenRequest, policy: RenewalPolicy) {
        let now = clock.now
        let refetch = state.withLock { state -> Bool in
            let changed = state.endpoint != endpoint || state.request.credentialFingerprint != request.credentialFingerprint
            state.endpoint = endpoint
            state.request = request
            if state.machine.reconfigure(policy: policy, refetch: changed, now: now) != nil {
                // The machine began a fetch; the loop picks it up as its next action.
                state.pendingStart = true
            }
            return changed
        }
        logger.info("Configuration reloaded", metadata: ["refetch": "\(refetch)"])
        if refetch { wake.signal() }
    }

    // MARK: - Liveness

    /// Whether the renewal loop is making progress: a fetch has not outlived its timeout by more
    /// than `slack`, and a wait has not overslept its deadline by more than `slack`. An endpoint
    /// outage is *not* a hang: a failing loop still cycles through fetch and wait.
    public func renewalLoopIsAlive(slack: Duration = .seconds(30)) -> Bool {
        let now = clock.now
        return state.withLock { state in
            switch state.loopActivity {
            case .starting:
                return true
            case .fetching(let since):
                return since.duration(to: now) < state.endpoint.timeout + slack
            case .waiting(let until):
                return until.duration(to: now) < slack
            }
        }
    }

    // MARK: - The renewal loop

    /// Runs until cancelled. Throws ``InitialFetchRejected`` if the very first fetch fails
    /// permanently (wrong secret, revoked client): retrying cannot help, and systemd should show
    /// the unit failed with the endpoint's reason.
    public func runRenewals(fetcher: any TokenFetching) async throws {
        var action = state.withLock { $0.machine.start(now: clock.now) }
        while !Task.isCancelled {
            switch action {
            case .fetch:
                let (request, scope) = state.withLock { state in
                    state.loopActivity = .fetching(since: clock.now)
                    return (state.request, state.endpoint.scope)
                }
                logger.debug("Requesting a token", metadata: ["endpoint": "\(request.url)"])
                let result = await fetcher.fetch(request, scope: scope)
                if Task.isCancelled { return }
                action = try complete(result)
            case .wait(let deadline):
                // Also wake when the held token stops being servable, to report it.
                let expiry = state.withLock { state -> ContinuousClock.Instant? in
                    guard let presented = state.presented, !state.expiryReported else { return nil }
                    return presented.held.servableUntil
                }
                let wakeAt = expiry.map { min($0, deadline) } ?? deadline
                state.withLock { $0.loopActivity = .waiting(until: wakeAt) }
                await wake.wait(until: wakeAt)
                if Task.isCancelled { return }
                action = afterWake()
            }
        }
    }

    private func afterWake() -> RenewalStateMachine<ContinuousClock.Instant>.Action {
        let now = clock.now
        let (action, expiredStatus) = state.withLock { state -> (RenewalStateMachine<ContinuousClock.Instant>.Action, BrokerStatus?) in
            var expiredStatus: BrokerStatus?
            if let presented = state.presented, !presented.held.isServable(at: now), !state.expiryReported {
                state.expiryReported = true
                expiredStatus = BrokerStatus(machine: state.machine, now: now, epochSeconds: Self.epochSeconds(), tokenURL: state.endpoint.tokenURL.description)
            }
            if state.pendingStart {
                state.pendingStart = false
                return (.fetch, expiredStatus)
            }
            return (state.machine.deadlineReached(now: now), expiredStatus)
        }
        if let expiredStatus {
            logger.error("Token expired before it could be renewed; consumers get 503 until a new token arrives", metadata: [
                "message_id": "\(MessageID.tokenExpired)",
                "token.fingerprint": "\(expiredStatus.tokenFingerprint ?? "-")",
                "status": "\(expiredStatus.summary())",
            ])
            onEvent(.tokenExpired(expiredStatus))
        }
        return action
    }

    private func complete(_ result: Result<IssuedToken, FetchFailure>) throws -> RenewalStateMachine<ContinuousClock.Instant>.Action {
        let now = clock.now
        let epoch = Self.epochSeconds()
        let unitRandom = Double.random(in: 0..<1)
        let (action, waiters, status, first) = state.withLock { state in
            let first = state.machine.lastSuccessEpochSeconds == nil
            let action: RenewalStateMachine<ContinuousClock.Instant>.Action
            switch result {
            case .success(let token):
                action = state.machine.fetchSucceeded(token, now: now, epochSeconds: epoch, unitRandom: unitRandom)
                if let held = state.machine.held {
                    state.presented = Presented(held: held, presentation: PresentedToken(token: token, expiresAtEpochSeconds: held.expiresAtEpochSeconds))
                    state.expiryReported = false
                }
            case .failure(let failure):
                action = state.machine.fetchFailed(failure, now: now, epochSeconds: epoch, unitRandom: unitRandom)
            }
            let waiters = state.refreshWaiters
            state.refreshWaiters = []
            let status = BrokerStatus(machine: state.machine, now: now, epochSeconds: epoch, tokenURL: state.endpoint.tokenURL.description)
            return (action, waiters, status, first)
        }

        switch result {
        case .success(let token):
            logger.info(first ? "Obtained the first token" : "Renewed the token", metadata: [
                "message_id": "\(MessageID.tokenObtained)",
                "token.fingerprint": "\(token.fingerprint)",
                "token.expires_at": "\(RFC3339.format(epochSeconds: status.expiresAtEpochSeconds ?? epoch))",
                "token.lifetime_s": "\(token.lifetime.components.seconds)",
                "next_renewal_in_s": "\(status.nextFetchInSeconds ?? 0)",
            ])
            let answer = currentToken()
            for waiter in waiters { waiter.resume(returning: answer) }
            onEvent(.tokenObtained(status, first: first))
        case .failure(let failure):
            var metadata: Logger.Metadata = [
                "message_id": "\(MessageID.renewalFailed)",
                "error_code": "\(failure.kind.rawValue)",
                "error_class": "\(failure.severity.rawValue)",
                "retry_in_s": "\(status.nextFetchInSeconds ?? 0)",
                "state": "\(status.state.rawValue)",
            ]
            if let httpStatus = failure.httpStatus { metadata["http_status"] = "\(httpStatus)" }
            if let oauthError = failure.oauthError { metadata["oauth_error"] = "\(oauthError)" }
            if let remedy = failure.remedy { metadata["remedy"] = "\(remedy)" }
            let message: Logger.Message = "Failed to obtain a token: \(failure)"
            if failure.isPermanent || status.state == .expired || status.state == .failed {
                logger.error(message, metadata: metadata)
            } else {
                logger.warning(message, metadata: metadata)
            }
            let answer: TokenAnswer = .unavailable(
                detail: "could not obtain a new token: \(failure)", retryAfterSeconds: max(1, Int(status.nextFetchInSeconds ?? 1)))
            for waiter in waiters { waiter.resume(returning: answer) }
            onEvent(.fetchFailed(failure, status))
            if failure.isPermanent, first, exitOnInitialPermanentFailure {
                throw InitialFetchRejected(failure: failure)
            }
        }
        return action
    }

    static func epochSeconds() -> Int64 {
        Int64(time(nil))
    }
}

/// Stable journal `MESSAGE_ID`s (128-bit, as `journalctl --new-id128` makes them), so that
/// operators can query and alert on events: `journalctl MESSAGE_ID=…`.
public enum MessageID {
    public static let tokenObtained = "5b1e2c0f7f8a4d2e9c3a6b1d0e4f7a21"
    public static let renewalFailed = "c7d4e2a19b0f4c3e8a5d6f1b2e3c4d55"
    public static let tokenExpired = "9e8f7a6b5c4d4e3f8a1b2c3d4e5f6a77"
    public static let accessDenied = "2a3b4c5d6e7f4a8b9c0d1e2f3a4b5c99"
}
