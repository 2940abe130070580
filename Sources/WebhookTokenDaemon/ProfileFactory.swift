import Logging
import WebhookTokenCore
import WebhookTokenEndpoint

/// Makes a profile's runtime — endpoint client and broker, wired to metrics and readiness — at
/// start-up and when a reload adds a profile, the same way both times.
struct ProfileFactory: Sendable {
    let logger: Logger
    let metrics: DaemonMetrics
    let readiness: ReadinessTracker
    let deliveries: TokenDeliveries

    struct CannotLoadTrustRoots: Error, CustomStringConvertible {
        let profile: String
        let caFile: String
        let underlying: any Error
        var description: String { "cannot load ca_file \(caFile) of the profile \(profile): \(underlying)" }
    }

    func make(_ profile: Configuration.Profile, request: TokenRequest) throws(CannotLoadTrustRoots) -> ProfileRuntime {
        let client: TokenEndpointClient
        do {
            client = try TokenEndpointClient(caFile: profile.endpoint.caFile, timeout: profile.endpoint.timeout)
        } catch {
            throw CannotLoadTrustRoots(profile: profile.name, caFile: profile.endpoint.caFile ?? "", underlying: error)
        }
        let (name, metrics, readiness, deliveries) = (profile.name, self.metrics, self.readiness, self.deliveries)
        let broker = TokenBroker(
            name: name, endpoint: profile.endpoint, request: request, policy: profile.renewal, logger: logger,
            onEvent: { event in
                switch event {
                case .tokenObtained(_, _, let first): metrics.fetchSucceeded(profile: name, renewal: !first)
                case .fetchFailed(let failure, _, _): metrics.fetchFailed(profile: name, failure)
                case .tokenExpired: break
                }
                // Sinks are written (and hooks started) before readiness: a consumer started
                // After= the daemon finds its sink there.
                deliveries.handle(event, profile: name)
                readiness.record(event, profile: name)
            })
        readiness.track(name)
        return ProfileRuntime(name: name, broker: broker, fetcher: ReloadableEndpointClient(client))
    }
}
