import Logging
import WebhookTokenCore
import WebhookTokenEndpoint

/// Makes a profile's runtime — endpoint client and broker, wired to metrics and readiness — at
/// start-up and when a reload adds a profile, the same way both times.
struct ProfileFactory: Sendable {
    let logger: Logger
    let metrics: DaemonMetrics
    let readiness: ReadinessTracker

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
        let (name, metrics, readiness) = (profile.name, self.metrics, self.readiness)
        let broker = TokenBroker(
            name: name, endpoint: profile.endpoint, request: request, policy: profile.renewal, logger: logger,
            onEvent: { event in
                switch event {
                case .tokenObtained(_, let first): metrics.fetchSucceeded(profile: name, renewal: !first)
                case .fetchFailed(let failure, _, _): metrics.fetchFailed(profile: name, failure)
                case .tokenExpired: break
                }
                readiness.record(event, profile: name)
            })
        readiness.track(name)
        return ProfileRuntime(name: name, broker: broker, fetcher: ReloadableEndpointClient(client))
    }
}
