import Synchronization
import WebhookTokenCore
import WebhookTokenEndpoint

/// The token endpoint client, replaceable on reload (a new `ca_file` or `timeout` needs a new
/// HTTP client); requests already running finish on the client they started with.
final class ReloadableEndpointClient: TokenFetching {
    private let current: Mutex<TokenEndpointClient>
    private let retired = Mutex<[TokenEndpointClient]>([])

    init(_ client: TokenEndpointClient) {
        self.current = Mutex(client)
    }

    func fetch(_ request: TokenRequest, scope: String) async -> Result<IssuedToken, FetchFailure> {
        let client = current.withLock { $0 }
        return await client.fetch(request, scope: scope)
    }

    func replace(with client: TokenEndpointClient) {
        let old = current.withLock { current -> TokenEndpointClient in
            defer { current = client }
            return current
        }
        retired.withLock { $0.append(old) }
    }

    func shutdown() async {
        let clients = retired.withLock { $0 } + [current.withLock { $0 }]
        for client in clients { await client.shutdown() }
    }
}
