import CoreMetrics
import Metrics
import Prometheus
import Synchronization
import WebhookTokenCore
import WebhookTokenServer

private typealias Counter = CoreMetrics.Counter
private typealias Gauge = CoreMetrics.Gauge
private typealias Timer = CoreMetrics.Timer

/// The daemon's metrics, recorded through swift-metrics into a Prometheus registry and served at
/// `GET /metrics`.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `webhook_tokend_token_fetches_total` | counter | `profile`, `result` (success, transient, permanent), `code` |
/// | `webhook_tokend_token_renewals_total` | counter | `profile` |
/// | `webhook_tokend_token_expires_in_seconds` | gauge | `profile` |
/// | `webhook_tokend_token_expiry_timestamp_seconds` | gauge | `profile` |
/// | `webhook_tokend_state` | gauge (1 for the current state) | `profile`, `state` |
/// | `webhook_tokend_requests_total` | counter | `endpoint`, `status` |
/// | `webhook_tokend_request_duration_seconds` | histogram | `endpoint` |
/// | `webhook_tokend_open_connections` | gauge | |
/// | `webhook_tokend_denied_peers_total` | counter | |
/// | `webhook_tokend_hook_runs_total` | counter | `profile`, `result` (success, failure, signalled, timeout, not_started) |
/// | `webhook_tokend_proxy_requests_total` | counter | `profile`, `status` (the upstream's) |
/// | `webhook_tokend_proxy_replays_total` | counter | `profile` |
/// | `webhook_tokend_proxy_errors_total` | counter | `profile`, `code` |
/// | `webhook_tokend_proxy_added_seconds` | histogram | `profile` |
///
/// Request counters for the usual (endpoint, status) pairs are made up front, so that counting a
/// request on the hot path is an array index and an atomic add.
final class DaemonMetrics: ServerObserver {
    private let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private static let commonStatuses = [200, 400, 403, 404, 405, 408, 413, 431, 503]
    private let requestCounters: [[Int: Counter]]
    private let otherRequestCounters = Mutex<[String: Counter]>([:])
    private let requestTimers: [Timer]
    private let openConnections: Gauge
    private let deniedPeers: Counter
    private let fetchCounters = Mutex<[String: Counter]>([:])
    private let hookCounters = Mutex<[String: Counter]>([:])
    /// Each profile's gauges and renewal counter, made when the profile is first seen.
    private let profileMetrics = Mutex<[String: ProfileMetrics]>([:])

    private struct ProfileMetrics {
        let renewals: Counter
        let expiresIn: Gauge
        let expiryTimestamp: Gauge
        let stateGauges: [BrokerState: Gauge]
    }

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // A Unix-socket request is served in microseconds: buckets from 10 µs to 1 s.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
            .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .seconds(1),
        ]
        self.factory = factory
        requestCounters = ServerRoute.allCases.map { route in
            Dictionary(
                uniqueKeysWithValues: Self.commonStatuses.map { status in
                    (
                        status,
                        Counter(
                            label: "webhook_tokend_requests_total",
                            dimensions: [("endpoint", route.rawValue), ("status", String(status))], factory: factory)
                    )
                })
        }
        requestTimers = ServerRoute.allCases.map { route in
            Timer(
                label: "webhook_tokend_request_duration_seconds", dimensions: [("endpoint", route.rawValue)],
                factory: factory)
        }
        openConnections = Gauge(label: "webhook_tokend_open_connections", factory: factory)
        deniedPeers = Counter(label: "webhook_tokend_denied_peers_total", factory: factory)
    }

    // MARK: - Recording

    func requestCompleted(route: ServerRoute, status: Int, duration: Duration?) {
        let index = ServerRoute.allCases.firstIndex(of: route) ?? 0
        if let counter = requestCounters[index][status] {
            counter.increment()
        } else {
            let key = "\(route.rawValue) \(status)"
            let factory = self.factory
            otherRequestCounters.withLock { counters in
                let counter =
                    counters[key]
                    ?? Counter(
                        label: "webhook_tokend_requests_total",
                        dimensions: [("endpoint", route.rawValue), ("status", String(status))], factory: factory)
                counters[key] = counter
                return counter
            }.increment()
        }
        if let duration {
            requestTimers[index].recordNanoseconds(
                duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        }
    }

    func hookRan(profile: String, result: String) {
        let factory = self.factory
        hookCounters.withLock { counters in
            let key = "\(profile) \(result)"
            let counter =
                counters[key]
                ?? Counter(
                    label: "webhook_tokend_hook_runs_total", dimensions: [("profile", profile), ("result", result)],
                    factory: factory)
            counters[key] = counter
            return counter
        }.increment()
    }

    func peerDenied() {
        deniedPeers.increment()
    }

    func fetchSucceeded(profile: String, renewal: Bool) {
        fetchCounter(profile: profile, result: "success", code: "ok").increment()
        if renewal { metrics(of: profile).renewals.increment() }
    }

    func fetchFailed(profile: String, _ failure: FetchFailure) {
        fetchCounter(profile: profile, result: failure.severity.rawValue, code: failure.kind.rawValue).increment()
    }

    private func fetchCounter(profile: String, result: String, code: String) -> Counter {
        let factory = self.factory
        return fetchCounters.withLock { counters in
            let key = "\(profile) \(result) \(code)"
            let counter =
                counters[key]
                ?? Counter(
                    label: "webhook_tokend_token_fetches_total",
                    dimensions: [("profile", profile), ("result", result), ("code", code)], factory: factory)
            counters[key] = counter
            return counter
        }
    }

    private func metrics(of profile: String) -> ProfileMetrics {
        let factory = self.factory
        return profileMetrics.withLock { all in
            if let existing = all[profile] { return existing }
            let dimensions = [("profile", profile)]
            let made = ProfileMetrics(
                renewals: Counter(
                    label: "webhook_tokend_token_renewals_total", dimensions: dimensions, factory: factory),
                expiresIn: Gauge(
                    label: "webhook_tokend_token_expires_in_seconds", dimensions: dimensions, factory: factory),
                expiryTimestamp: Gauge(
                    label: "webhook_tokend_token_expiry_timestamp_seconds", dimensions: dimensions, factory: factory),
                stateGauges: Dictionary(
                    uniqueKeysWithValues: BrokerState.allCases.map {
                        (
                            $0,
                            Gauge(
                                label: "webhook_tokend_state", dimensions: dimensions + [("state", $0.rawValue)],
                                factory: factory)
                        )
                    }))
            all[profile] = made
            return made
        }
    }

    // MARK: - Exposition

    /// The text exposition, with the gauges that describe "now" brought up to date first.
    func render(status: DaemonStatus, openConnections connections: Int) -> String {
        for profile in status.profiles {
            let metrics = metrics(of: profile.name)
            metrics.expiresIn.record(Double(profile.status.expiresInSeconds ?? 0))
            metrics.expiryTimestamp.record(Double(profile.status.expiresAtEpochSeconds ?? 0))
            for (state, gauge) in metrics.stateGauges { gauge.record(state == profile.status.state ? 1 : 0) }
        }
        openConnections.record(Double(connections))
        return registry.emitToString()
    }
}
