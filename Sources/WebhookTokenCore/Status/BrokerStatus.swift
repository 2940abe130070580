/// A point-in-time picture of the broker for `/v1/status`, `webhook-token status` and systemd's
/// `STATUS=`. It never contains the token, only its fingerprint.
public struct BrokerStatus: Sendable, Equatable {
    public var state: BrokerState
    public var tokenURL: String
    public var tokenFingerprint: String?
    public var scope: String?
    public var expiresAtEpochSeconds: Int64?
    public var expiresInSeconds: Int64?
    public var lastSuccessEpochSeconds: Int64?
    public var nextFetchEpochSeconds: Int64?
    public var nextFetchInSeconds: Int64?
    public var nextFetchIsRetry: Bool
    public var fetchInFlight: Bool
    public var lastFailure: FetchFailure?
    public var lastFailureEpochSeconds: Int64?
    public var consecutiveFailures: Int
    public var counters: RenewalCounters

    public init<Instant, Waiter>(
        machine: RenewalStateMachine<Instant, Waiter>, now: Instant, epochSeconds: Int64, tokenURL: String
    ) where Instant.Duration == Duration {
        self.state = machine.state(at: now)
        self.tokenURL = tokenURL
        if let held = machine.held {
            tokenFingerprint = held.token.fingerprint
            scope = held.token.scope
            expiresAtEpochSeconds = held.expiresAtEpochSeconds
            expiresInSeconds = held.secondsLeft(at: now)
        }
        lastSuccessEpochSeconds = machine.lastSuccessEpochSeconds
        if let next = machine.nextFetchAt {
            let wait = now.duration(to: next)
            let waitSeconds = wait > .zero ? Int64(wait.seconds.rounded(.up)) : 0
            nextFetchInSeconds = waitSeconds
            nextFetchEpochSeconds = epochSeconds + waitSeconds
        }
        nextFetchIsRetry = machine.nextFetchIsRetry
        fetchInFlight = machine.isFetching
        lastFailure = machine.lastFailure?.failure
        lastFailureEpochSeconds = machine.lastFailure?.epochSeconds
        consecutiveFailures = machine.consecutiveFailures
        counters = machine.counters
    }

    /// The machine-readable form of one profile.
    public func json() -> String {
        JSONText.object(jsonFields()) + "\n"
    }

    /// The members of ``json()``, to embed.
    public func jsonFields() -> [(String, String)] {
        func time(_ epoch: Int64?) -> String {
            epoch.map { JSONText.string(RFC3339.format(epochSeconds: $0)) } ?? "null"
        }
        func number(_ value: Int64?) -> String { value.map { String($0) } ?? "null" }
        var errorJSON = "null"
        if let failure = lastFailure {
            errorJSON = JSONText.object([
                ("class", JSONText.string(failure.severity.rawValue)),
                ("code", JSONText.string(failure.kind.rawValue)),
                ("http_status", failure.httpStatus.map { String($0) } ?? "null"),
                ("error", JSONText.optionalString(failure.oauthError)),
                ("error_description", JSONText.optionalString(failure.oauthErrorDescription)),
                ("detail", JSONText.string(failure.detail)),
                ("at", time(lastFailureEpochSeconds)),
            ])
        }
        return [
            ("state", JSONText.string(state.rawValue)),
            ("summary", JSONText.string(summary())),
            ("token_url", JSONText.string(tokenURL)),
            ("token_fingerprint", JSONText.optionalString(tokenFingerprint)),
            ("scope", JSONText.optionalString(scope)),
            ("expires_at", time(expiresAtEpochSeconds)),
            ("expires_in", number(expiresInSeconds)),
            ("last_success", time(lastSuccessEpochSeconds)),
            ("next_fetch", time(nextFetchEpochSeconds)),
            ("next_fetch_in", number(nextFetchInSeconds)),
            ("next_fetch_is_retry", nextFetchIsRetry ? "true" : "false"),
            ("fetch_in_flight", fetchInFlight ? "true" : "false"),
            ("consecutive_failures", String(consecutiveFailures)),
            ("last_error", errorJSON),
            (
                "counters",
                JSONText.object([
                    ("fetches_started", String(counters.fetchesStarted)),
                    ("fetches_succeeded", String(counters.fetchesSucceeded)),
                    ("fetches_failed_transient", String(counters.fetchesFailedTransient)),
                    ("fetches_failed_permanent", String(counters.fetchesFailedPermanent)),
                    ("refreshes_requested", String(counters.refreshesRequested)),
                    ("refreshes_rate_limited", String(counters.refreshesRateLimited)),
                ])
            ),
        ]
    }

    /// One human line, for systemd's `STATUS=` and the first line of `webhook-token status`.
    ///
    ///     token valid until 10:42:07 UTC, next renewal 10:27:31 UTC
    ///     waiting for first token: endpoint answered 503, retrying in 8 s
    ///     token expired 10:42:07 UTC; endpoint unreachable (connection refused), retrying in 1 min
    public func summary() -> String {
        let expiry = expiresAtEpochSeconds.map { RFC3339.timeOfDay(epochSeconds: $0) + " UTC" } ?? "?"
        let retry = nextFetchInSeconds.map { ", retrying in \(Self.humanDuration($0))" } ?? ""
        let failureText =
            lastFailure.map { failure in
                failure.description + (failure.remedy.map { "; \($0)" } ?? "")
            } ?? "unknown error"
        switch state {
        case .starting:
            if consecutiveFailures == 0 { return "waiting for first token: request in flight" }
            return "waiting for first token: \(failureText)\(retry)"
        case .valid:
            let next = nextFetchEpochSeconds.map { ", next renewal \(RFC3339.timeOfDay(epochSeconds: $0)) UTC" } ?? ""
            return "token valid until \(expiry)\(next)"
        case .renewing:
            return "token valid until \(expiry), renewing now"
        case .degraded:
            return
                "token valid until \(expiry); renewal failing: \(failureText)\(fetchInFlight ? ", retrying now" : retry)"
        case .expired:
            return "token expired \(expiry); \(failureText)\(fetchInFlight ? ", retrying now" : retry)"
        case .failed:
            return "no valid token: \(failureText)\(fetchInFlight ? ", retrying now" : retry)"
        }
    }

    /// The multi-line form `webhook-token status` prints.
    public func humanText() -> String {
        func time(_ epoch: Int64?) -> String { epoch.map { RFC3339.format(epochSeconds: $0) } ?? "-" }
        var lines = [
            "state:          \(state.rawValue) — \(summary())",
            "endpoint:       \(tokenURL)",
        ]
        if let tokenFingerprint {
            lines.append("token:          sha256:\(tokenFingerprint)… scope \(scope ?? "-")")
            lines.append(
                "expires:        \(time(expiresAtEpochSeconds)) (in \(Self.humanDuration(expiresInSeconds ?? 0)))")
        }
        lines.append("last success:   \(time(lastSuccessEpochSeconds))")
        if fetchInFlight {
            lines.append("next fetch:     in flight")
        } else if let nextFetchEpochSeconds {
            lines.append(
                "next fetch:     \(time(nextFetchEpochSeconds)) (\(nextFetchIsRetry ? "retry" : "renewal") in \(Self.humanDuration(nextFetchInSeconds ?? 0)))"
            )
        }
        if let lastFailure {
            lines.append(
                "last error:     \(time(lastFailureEpochSeconds)) \(lastFailure.severity.rawValue) \(lastFailure.kind.rawValue): \(lastFailure)"
            )
        }
        lines.append(
            "fetches:        \(counters.fetchesSucceeded) ok, \(counters.fetchesFailedTransient) transient failures, \(counters.fetchesFailedPermanent) permanent failures"
        )
        return lines.joined(separator: "\n") + "\n"
    }

    /// `45 s`, `3 min 20 s`, `1 h 5 min`.
    public static func humanDuration(_ seconds: Int64) -> String {
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 3600 {
            let rest = seconds % 60
            return rest == 0 ? "\(seconds / 60) min" : "\(seconds / 60) min \(rest) s"
        }
        let minutes = (seconds % 3600) / 60
        return minutes == 0 ? "\(seconds / 3600) h" : "\(seconds / 3600) h \(minutes) min"
    }
}
