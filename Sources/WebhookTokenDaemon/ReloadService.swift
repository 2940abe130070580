import Logging
import ServiceLifecycle
import WebhookTokenCore
import WebhookTokenEndpoint
import WebhookTokenSystemd

/// Re-reads the configuration and the secret on SIGHUP (`systemctl reload`).
///
/// A broken new configuration is rejected with a log line and the running one keeps serving. A
/// changed endpoint or credential makes the broker fetch a new token while the old one is still
/// served. Settings that only take effect at start-up (the socket, the log level) are reported.
struct ReloadService: Service {
    /// One element per SIGHUP.
    let signals: AsyncStream<Void>
    let configurationPath: String
    let broker: TokenBroker
    let fetcher: ReloadableEndpointClient
    let notifier: SystemdNotifier
    let logger: Logger
    let current: LoadedConfiguration

    func run() async throws {
        await cancelWhenGracefulShutdown { await handleSignals() }
    }

    private func handleSignals() async {
        var running = current
        for await _ in signals {
            // Before the first token the unit is still starting: RELOADING/READY would mark it up.
            let wasReady = broker.status().lastSuccessEpochSeconds != nil
            if wasReady { notifier.reloading() }
            logger.info("Reloading configuration", metadata: ["path": "\(configurationPath)"])
            running = reload(from: running)
            let summary = broker.status().summary()
            if wasReady {
                notifier.ready(status: summary)
            } else {
                notifier.status(summary)
            }
        }
    }

    private func reload(from running: LoadedConfiguration) -> LoadedConfiguration {
        let loaded: LoadedConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: configurationPath, environment: Environment.current)
        } catch {
            logger.error("Failed to reload configuration, keeping the current one: \(error)")
            return running
        }
        let old = running.configuration, new = loaded.configuration
        if old.endpoint.caFile != new.endpoint.caFile || old.endpoint.timeout != new.endpoint.timeout {
            do {
                fetcher.replace(with: try TokenEndpointClient(caFile: new.endpoint.caFile, timeout: new.endpoint.timeout))
            } catch {
                logger.error("Failed to reload configuration, keeping the current one: cannot load ca_file \(new.endpoint.caFile ?? ""): \(error)")
                return running
            }
        }
        if old.socket != new.socket {
            logger.warning("The [socket] settings changed; they take effect at the next restart")
        }
        if old.logging != new.logging {
            logger.warning("The [logging] level changed; it takes effect at the next restart")
        }
        if old.access != new.access {
            logger.warning("The [access] settings changed; they take effect at the next restart")
        }
        broker.reconfigure(endpoint: new.endpoint, request: loaded.tokenRequest, policy: new.renewal)
        return loaded
    }
}
