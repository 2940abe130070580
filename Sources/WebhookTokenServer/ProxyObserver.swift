public import WebhookTokenProtocol

/// What the authenticating proxy reports about its work, for metrics. Called for every proxied
/// request: implementations must be cheap and must not block.
public protocol ProxyObserver: Sendable {
    /// A request went upstream and its (last) answer, of this status, was passed back.
    func proxied(profile: String, upstreamStatus: Int)
    /// A request answered 401/403 was sent again with a fresh token.
    func replayed(profile: String)
    /// The proxy answered a request itself, with this error.
    func proxyFailed(profile: String, code: ErrorCode)
    /// The time the proxy added to a request: from its last byte to the answer's head, less the
    /// time spent waiting for the upstream's answers.
    func proxyOverhead(profile: String, duration: Duration)
}

/// Observes nothing.
public struct NoProxyObserver: ProxyObserver {
    public init() {}
    public func proxied(profile: String, upstreamStatus: Int) {}
    public func replayed(profile: String) {}
    public func proxyFailed(profile: String, code: ErrorCode) {}
    public func proxyOverhead(profile: String, duration: Duration) {}
}
