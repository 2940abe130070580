import WebhookTokenCore
import WebhookTokenEndpoint

/// One profile at run time: its token broker and its own endpoint client (its own trust roots
/// and timeout), so that one profile's endpoint — down, hanging, revoking — never touches another's.
final class ProfileRuntime: Sendable {
    let name: String
    let broker: TokenBroker
    let fetcher: ReloadableEndpointClient

    init(name: String, broker: TokenBroker, fetcher: ReloadableEndpointClient) {
        self.name = name
        self.broker = broker
        self.fetcher = fetcher
    }

    /// The renewal loop, until the broker is shut down or the task cancelled.
    func runRenewals() async {
        await broker.runRenewals(fetcher: fetcher)
    }
}
