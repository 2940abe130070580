import WebhookTokenCore
import WebhookTokenServer

/// The socket API as the server sees it: the profiles' tokens and status, and metrics from the
/// daemon's registry together with the server's own connection count.
struct SocketAPI: TokenServing {
    let profiles: ProfileSet
    let metrics: DaemonMetrics
    let connections: ConnectionCounter

    func profile(named name: Substring?) -> ProfileLookup { profiles.lookup(name) }
    func statusJSON() -> String { profiles.status().json() }
    func statusText() -> String { profiles.status().humanText() }
    func shutdown() { profiles.shutdown() }

    func metricsText() -> String {
        metrics.render(status: profiles.status(), openConnections: connections.current)
    }
}
