import CoreMetrics
import WebhookTokenProtocol
import WebhookTokenServer

/// The authenticating proxies' metrics (see the table on ``DaemonMetrics``). The registry hands
/// back the same series for the same name and labels, so each is made where it is counted.
extension DaemonMetrics: ProxyObserver {
    func proxied(profile: String, upstreamStatus: Int) {
        CoreMetrics.Counter(
            label: "webhook_tokend_proxy_requests_total",
            dimensions: [("profile", profile), ("status", String(upstreamStatus))], factory: factory
        ).increment()
    }

    func replayed(profile: String) {
        CoreMetrics.Counter(
            label: "webhook_tokend_proxy_replays_total", dimensions: [("profile", profile)], factory: factory
        ).increment()
    }

    func proxyFailed(profile: String, code: ErrorCode) {
        CoreMetrics.Counter(
            label: "webhook_tokend_proxy_errors_total", dimensions: [("profile", profile), ("code", code.rawValue)],
            factory: factory
        ).increment()
    }

    func proxyOverhead(profile: String, duration: Duration) {
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        CoreMetrics.Timer(
            label: "webhook_tokend_proxy_added_seconds", dimensions: [("profile", profile)], factory: factory
        ).recordNanoseconds(max(0, nanoseconds))
    }
}
