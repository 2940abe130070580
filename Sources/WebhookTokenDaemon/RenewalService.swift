import Logging
import ServiceLifecycle
import WebhookTokenEndpoint
import WebhookTokenSystemd

/// Runs the broker's renewal loop as a service. Shutdown begins here (it is the first service
/// the group stops, being the last started): systemd hears STOPPING=1, every consumer waiting
/// for a token is answered, and the loop — and any token request in flight — ends.
struct RenewalService: Service {
    let broker: TokenBroker
    let fetcher: any TokenFetching
    let notifier: SystemdNotifier

    func run() async throws {
        let (broker, notifier) = (self.broker, self.notifier)
        try await withGracefulShutdownHandler {
            try await cancelWhenGracefulShutdown {
                try await broker.runRenewals(fetcher: fetcher)
            }
        } onGracefulShutdown: {
            notifier.stopping()
            broker.shutdown()
        }
    }
}
