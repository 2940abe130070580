/// What the socket server reports about its own work, for metrics. Called on event loop threads
/// for every response: implementations must be cheap and must not block.
public protocol ServerObserver: Sendable {
    /// `duration` is measured for a sample of the requests only (`nil` for the others).
    func requestCompleted(route: ServerRoute, status: Int, duration: Duration?)
    /// A request was refused because the peer is not allowed by `[access]`.
    func peerDenied()
}

/// The endpoints of the socket API, as metric label values.
public enum ServerRoute: String, CaseIterable, Sendable {
    case token
    case refresh
    case status
    case metrics
    case other
}

/// Observes nothing.
public struct NoServerObserver: ServerObserver {
    public init() {}
    public func requestCompleted(route: ServerRoute, status: Int, duration: Duration?) {}
    public func peerDenied() {}
}
