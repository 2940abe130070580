public import Logging
import Synchronization
public import WebhookTokenCore
public import WebhookTokenEndpoint
import WebhookTokenProtocol
public import WebhookTokenServer

/// Drives the renewal state machine and answers the socket server.
///
/// A thin driver: every renewal decision and every piece of renewal state — the held token, the
/// schedule, the consumers waiting for a fetch, expiry reporting, shutdown — is the pure
/// ``RenewalStateMachine``'s. The broker feeds it the time (an injected ``BrokerClock``), jitter (an
/// injected random source) and the outcomes of real token requests, and carries out what it
/// returns: fetch, sleep, resume waiters, log, notify. Readers never wait for renewal: serving
/// takes a short lock to read the held token, which is swapped in whole when a new one arrives.
public final class TokenBroker: ProfileServing {
    typealias Machine = RenewalStateMachine<ContinuousClock.Instant, CheckedContinuation<TokenAnswer, Never>>

    /// Everything that changes, behind one lock that is never held across an `await`.
    struct State {
        var machine: Machine
        var request: TokenRequest
        var endpoint: Configuration.Endpoint
        /// Where the renewal loop is, on the uptime clock, for the watchdog's liveness check.
        var liveness: Liveness = .starting
    }

    /// The renewal loop's position on ``BrokerClock/uptime``: not renewal state, but the
    /// driver's own heartbeat, on the clock that stops during suspend — so that the watchdog does
    /// not take the time a machine slept for a hung loop.
    enum Liveness {
        case starting
        case fetching(sinceUptime: Duration)
        case sleeping(untilUptime: Duration)
    }

    /// Something the daemon wants to hear about: systemd status, readiness, metrics.
    public enum Event: Sendable {
        case tokenObtained(HeldToken<ContinuousClock.Instant>, BrokerStatus, first: Bool)
        /// `beforeFirstToken`: no token had been obtained yet (readiness).
        case fetchFailed(FetchFailure, BrokerStatus, beforeFirstToken: Bool)
        case tokenExpired(BrokerStatus)
    }

    /// The longest the loop sleeps before it looks at the suspend-aware clock again. Timers run on
    /// a clock that stops during suspend: after a resume, a renewal due during the suspend
    /// happens within this time even when no consumer asks (one extra wakeup a minute at most).
    public static let maximumSleepSlice = Duration.seconds(60)

    private let state: Mutex<State>
    private let wake = WakeSignal()
    private let changeWaiters = ChangeWaiters()
    private let clock: any BrokerClock
    private let random: @Sendable () -> Double
    private let logger: Logger
    private let onEvent: @Sendable (Event) -> Void
    /// The profile this broker holds the token of.
    public let name: String

    public init(
        name: String = Configuration.Profile.defaultName, endpoint: Configuration.Endpoint, request: TokenRequest,
        policy: RenewalPolicy, logger: Logger, clock: any BrokerClock = SystemBrokerClock(),
        random: @escaping @Sendable () -> Double = { .random(in: 0..<1) },
        onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) {
        self.name = name
        self.state = Mutex(State(machine: Machine(policy: policy), request: request, endpoint: endpoint))
        self.clock = clock
        self.random = random
        var logger = logger
        logger[metadataKey: "profile"] = "\(name)"
        self.logger = logger
        self.onEvent = onEvent
    }

    // MARK: - Serving (event loop threads)

    public func currentToken() -> TokenAnswer {
        let now = clock.now
        if let held = state.withLock({ $0.machine.servableToken(at: now) }) {
            return .token(held.presentation, secondsLeft: held.secondsLeft(at: now))
        }
        return unavailable(now: now, failure: nil)
    }

    /// Why there is no token, and when to ask again. Also wakes the renewal loop: after a
    /// suspend it may still be sleeping out a slice, and it must renew at once.
    private func unavailable(now: ContinuousClock.Instant, failure: FetchFailure?) -> TokenAnswer {
        wake.signal()
        let status = self.status(now: now)
        let retryAfter = max(1, Int(min(status.nextFetchInSeconds ?? 1, 300)))
        let reason = failure.map { "could not obtain a new token: \($0)" } ?? "no valid token: \(status.summary())"
        return .unavailable(code: .noValidToken, detail: reason, retryAfterSeconds: retryAfter)
    }

    public func refreshToken(peerUID: UInt32?) async -> TokenAnswer {
        await withCheckedContinuation { continuation in
            let now = clock.now
            let decision = state.withLock {
                $0.machine.refreshRequested(now: now, requester: peerUID, waiter: continuation)
            }
            switch decision {
            case .fetchScheduled:
                logger.info(
                    "Token refresh requested by a consumer",
                    metadata: ["peer.uid": "\(peerUID.map(String.init) ?? "-")"])
                wake.signal()
            case .joinedInFlight:
                break
            case .answerNow(let answer, let reason):
                logger.debug("Refresh request answered without a fetch", metadata: ["reason": "\(reason.rawValue)"])
                continuation.resume(returning: self.answer(answer, now: now, refreshSkipped: reason))
            }
        }
    }

    /// Whether the first token request has not ended yet.
    public var isAwaitingFirstToken: Bool {
        state.withLock { $0.machine.isAwaitingFirstToken }
    }

    /// Waits for the first token request's outcome, or answers at once if it is already over.
    public func firstToken() async -> TokenAnswer {
        await withCheckedContinuation { continuation in
            let now = clock.now
            if let answer = state.withLock({ $0.machine.firstTokenRequested(now: now, waiter: continuation) }) {
                continuation.resume(returning: self.answer(answer, now: now))
            }
        }
    }

    /// Long-polls for a token whose fingerprint is not `fingerprint`, at most `maxWait`; then
    /// answers like ``currentToken()``.
    public func waitForChange(after fingerprint: Substring, maxWait: Duration) async -> TokenAnswer {
        if let answer = await changeWaiters.wait(after: fingerprint, maxWait: maxWait) { return answer }
        return currentToken()
    }

    /// The token being served, for sinks and hooks (`nil` while none is servable).
    public func servableToken() -> HeldToken<ContinuousClock.Instant>? {
        let now = clock.now
        return state.withLock { $0.machine.servableToken(at: now) }
    }

    /// Answers every waiting consumer (`503 shutting_down`), refuses new waits, and ends the loop.
    public func shutdown() {
        let waiters = state.withLock { $0.machine.shutdown() }
        let answer = answer(.shuttingDown, now: clock.now)
        for waiter in waiters { waiter.resume(returning: answer) }
        changeWaiters.shutdown()
        wake.signal()
    }

    /// The machine's answer as the socket serves it.
    private func answer(
        _ answer: Machine.Answer, now: ContinuousClock.Instant,
        refreshSkipped: Machine.NoFetchReason? = nil
    ) -> TokenAnswer {
        switch answer {
        case .token(let held):
            let note = refreshSkipped.map { TokenAnswer.RefreshNote(code: $0.rawValue, detail: nil) }
            return .token(held.presentation, secondsLeft: held.secondsLeft(at: now), refresh: note)
        case .tokenAfterFailedRefresh(let held, let failure):
            return .token(
                held.presentation, secondsLeft: held.secondsLeft(at: now),
                refresh: .init(code: failure.kind.rawValue, detail: failure.description))
        case .unavailable(let failure):
            return unavailable(now: now, failure: failure)
        case .shuttingDown:
            return .unavailable(code: .shuttingDown, detail: "the daemon is stopping", retryAfterSeconds: 1)
        }
    }

    public func statusJSON() -> String { status(now: clock.now).json() }
    public func statusText() -> String { status(now: clock.now).humanText() }

    public func status() -> BrokerStatus { status(now: clock.now) }

    private func status(now: ContinuousClock.Instant) -> BrokerStatus {
        let epochSeconds = clock.epochSeconds
        return state.withLock { state in
            BrokerStatus(
                machine: state.machine, now: now, epochSeconds: epochSeconds,
                tokenURL: state.endpoint.tokenURL.description)
        }
    }

    // MARK: - Reconfiguration

    /// Applies a reloaded configuration. The current token keeps being served; a changed endpoint
    /// or credential makes the loop fetch a new one now.
    public func reconfigure(endpoint: Configuration.Endpoint, request: TokenRequest, policy: RenewalPolicy) {
        let (refetch, wakeLoop) = state.withLock { state -> (Bool, Bool) in
            let changed =
                state.endpoint != endpoint || state.request.credentialFingerprint != request.credentialFingerprint
            state.endpoint = endpoint
            state.request = request
            return (changed, state.machine.reconfigure(policy: policy, refetch: changed))
        }
        logger.info("Configuration reloaded", metadata: ["refetch": "\(refetch)"])
        if wakeLoop { wake.signal() }
    }

    // MARK: - Liveness

    /// Whether the renewal loop is making progress: a fetch has not outlived its timeout by more
    /// than `slack`, and a sleep has not overslept by more than `slack` — both on the uptime
    /// clock, so a suspend does not count. An endpoint outage is *not* a hang: a failing loop
    /// still cycles through fetch and wait.
    public func renewalLoopIsAlive(slack: Duration = .seconds(30)) -> Bool {
        let uptime = clock.uptime
        return state.withLock { state in
            switch state.liveness {
            case .starting:
                return true
            case .fetching(let since):
                return uptime - since < state.endpoint.timeout + slack
            case .sleeping(let until):
                return uptime - until < slack
            }
        }
    }

    // MARK: - The renewal loop

    /// Runs until ``shutdown()`` or cancellation. A permanent failure before the first token is
    /// reported (``Event/fetchFailed(_:_:beforeFirstToken:)``) and retried; whether the daemon
    /// gives up is the daemon's decision, made over all its profiles.
    public func runRenewals(fetcher: any TokenFetching) async {
        var action = state.withLock { $0.machine.start(now: clock.now) }
        while !Task.isCancelled {
            switch action {
            case .stop:
                return
            case .fetch:
                let uptime = clock.uptime
                let (request, scope) = state.withLock { state in
                    state.liveness = .fetching(sinceUptime: uptime)
                    return (state.request, state.endpoint.scope)
                }
                logger.debug("Requesting a token", metadata: ["endpoint": "\(request.url)"])
                let result = await fetcher.fetch(request, scope: scope)
                if Task.isCancelled { return }
                action = complete(result)
            case .wait(let deadline):
                let remaining = clock.now.duration(to: deadline)
                if remaining > .zero {
                    let slice = min(remaining, Self.maximumSleepSlice)
                    let clock = self.clock
                    let uptime = clock.uptime
                    state.withLock { $0.liveness = .sleeping(untilUptime: uptime + slice) }
                    await wake.wait(orUntil: { await clock.sleep(for: slice) })
                }
                action = afterWake()
            }
        }
    }

    private func afterWake() -> Machine.Action {
        let now = clock.now
        let epochSeconds = clock.epochSeconds
        let (wakeup, status) = state.withLock { state -> (Machine.Wakeup, BrokerStatus?) in
            let wakeup = state.machine.deadlineReached(now: now)
            guard wakeup.tokenExpired else { return (wakeup, nil) }
            let status = BrokerStatus(
                machine: state.machine, now: now, epochSeconds: epochSeconds,
                tokenURL: state.endpoint.tokenURL.description)
            return (wakeup, status)
        }
        if let status {
            logger.error(
                "Token expired before it could be renewed; consumers get 503 until a new token arrives",
                metadata: [
                    "message_id": "\(MessageID.tokenExpired)",
                    "token.fingerprint": "\(status.tokenFingerprint ?? "-")",
                    "status": "\(status.summary())",
                ])
            onEvent(.tokenExpired(status))
        }
        return wakeup.next
    }

    private func complete(_ result: Result<IssuedToken, FetchFailure>) -> Machine.Action {
        let now = clock.now
        let epoch = clock.epochSeconds
        let unitRandom = random()
        let (completion, status) = state.withLock { state in
            let completion: Machine.Completion
            switch result {
            case .success(let token):
                completion = state.machine.fetchSucceeded(token, now: now, epochSeconds: epoch, unitRandom: unitRandom)
            case .failure(let failure):
                completion = state.machine.fetchFailed(failure, now: now, epochSeconds: epoch, unitRandom: unitRandom)
            }
            let status = BrokerStatus(
                machine: state.machine, now: now, epochSeconds: epoch, tokenURL: state.endpoint.tokenURL.description)
            return (completion, status)
        }
        let answer = answer(completion.answer, now: now)
        for waiter in completion.waiters { waiter.resume(returning: answer) }
        guard completion.next != .stop else { return completion.next }
        if case .token(let held) = completion.answer { changeWaiters.tokenChanged(fingerprint: held.token.fingerprint) }

        switch result {
        case .success(let token):
            logger.info(
                completion.beforeFirstToken ? "Obtained the first token" : "Renewed the token",
                metadata: [
                    "message_id": "\(MessageID.tokenObtained)",
                    "token.fingerprint": "\(token.fingerprint)",
                    "token.expires_at": "\(RFC3339.format(epochSeconds: status.expiresAtEpochSeconds ?? epoch))",
                    "token.lifetime_s": "\(token.lifetime.components.seconds)",
                    "next_renewal_in_s": "\(status.nextFetchInSeconds ?? 0)",
                ])
            if case .token(let held) = completion.answer {
                onEvent(.tokenObtained(held, status, first: completion.beforeFirstToken))
            }
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
            onEvent(.fetchFailed(failure, status, beforeFirstToken: completion.beforeFirstToken))
        }
        return completion.next
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
