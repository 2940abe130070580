import Synchronization
import WebhookTokenCore
import WebhookTokenEndpoint

/// The token endpoint client, replaceable on reload (a new `ca_file` or `timeout` needs a new
/// client); requests already running finish on the client they started with.
final class ReloadableEndpointClient: TokenFetching {
    private let current: Mutex<TokenEndpointClient>

    init(_ client: TokenEndpointClient) {
        self.current = Mutex(client)
    }

    func fetch(_ request: TokenRequest, scope: String) async -> Result<IssuedToken, FetchFailure> {
        let client = current.withLock { $0 }
        return await client.fetch(request, scope: scope)
    }

    func replace(with client: TokenEndpointClient) {
        current.withLock { $0 = client }
    }
}
