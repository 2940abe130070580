import Logging
import ServiceLifecycle
import WebhookTokenEndpoint
import WebhookTokenSystemd

/// Runs the broker's renewal loop as a service, and tells systemd when the daemon stops.
struct RenewalService: Service {
    let broker: TokenBroker
    let fetcher: any TokenFetching
    let notifier: SystemdNotifier

    func run() async throws {
        let notifier = self.notifier
        try await withGracefulShutdownHandler {
            try await cancelWhenGracefulShutdown {
                try await broker.runRenewals(fetcher: fetcher)
            }
        } onGracefulShutdown: {
            notifier.stopping()
        }
    }
}
