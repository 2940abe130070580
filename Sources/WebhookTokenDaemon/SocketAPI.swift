import WebhookTokenServer

/// The socket API as the server sees it: tokens and status from the broker, metrics from the
/// daemon's registry together with the server's own connection count.
struct SocketAPI: TokenServing {
    let broker: TokenBroker
    let metrics: DaemonMetrics
    let connections: ConnectionCounter

    func currentToken() -> TokenAnswer { broker.currentToken() }
    var isAwaitingFirstToken: Bool { broker.isAwaitingFirstToken }
    func firstToken() async -> TokenAnswer { await broker.firstToken() }
    func refreshToken(peerUID: UInt32?) async -> TokenAnswer { await broker.refreshToken(peerUID: peerUID) }
    func statusJSON() -> String { broker.statusJSON() }
    func statusText() -> String { broker.statusText() }
    func shutdown() { broker.shutdown() }

    func metricsText() -> String {
        metrics.render(status: broker.status(), openConnections: connections.current)
    }
}
