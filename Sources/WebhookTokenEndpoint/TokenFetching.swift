public import WebhookTokenCore

/// Something that can perform one token request. The daemon uses ``TokenEndpointClient``; the
/// abstraction exists so the renewal driver can be exercised without a network.
public protocol TokenFetching: Sendable {
    /// Sends one token request and classifies the outcome. Never throws: every way a request can
    /// fail is a ``FetchFailure`` with its severity.
    func fetch(_ request: TokenRequest, scope: String) async -> Result<IssuedToken, FetchFailure>
}
