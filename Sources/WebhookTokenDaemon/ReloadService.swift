import Logging
import ServiceLifecycle
import UnixSignals
import WebhookTokenCore
import WebhookTokenEndpoint
import WebhookTokenServer
import WebhookTokenSystemd

/// Re-reads the configuration and the secret on SIGHUP (`systemctl reload`).
///
/// A broken new configuration — including a user or group name that does not resolve — is
/// rejected with a log line and the running one keeps serving. A changed endpoint or credential
/// makes the broker fetch a new token while the old one is still served; a changed `[access]`
/// rule applies at once, to new connections and to the next request of open ones. Settings that
/// only take effect at start-up (the socket, the log level) are named in the reload's result:
/// the log line and systemd's `STATUS=`.
struct ReloadService: Service {
    let signals: UnixSignalsSequence
    let configurationPath: String
    let options: DaemonOptions
    let broker: TokenBroker
    let fetcher: ReloadableEndpointClient
    let access: SharedAccessRule
    let notifier: SystemdNotifier
    let logger: Logger
    let current: LoadedConfiguration
    let currentNames: AccessRuleResolver.Resolved

    func run() async throws {
        await cancelWhenGracefulShutdown { await handleSignals() }
    }

    private func handleSignals() async {
        var running = (current, currentNames)
        for await _ in signals {
            // Before the first token the unit is still starting: RELOADING/READY would mark it up.
            let wasReady = broker.status().lastSuccessEpochSeconds != nil
            if wasReady { notifier.reloading() }
            logger.info("Reloading configuration", metadata: ["path": "\(configurationPath)"])
            let outcome: String?
            (running, outcome) = reload(from: running)
            let summary = (outcome.map { "\($0); " } ?? "") + broker.status().summary()
            if wasReady {
                notifier.ready(status: summary)
            } else {
                notifier.status(summary)
            }
        }
    }

    /// Applies the configuration on disk; returns what is now in force and, unless the reload
    /// simply succeeded, its result in a few words (for `STATUS=`).
    private func reload(
        from running: (LoadedConfiguration, AccessRuleResolver.Resolved)
    ) -> ((LoadedConfiguration, AccessRuleResolver.Resolved), String?) {
        var loaded: LoadedConfiguration
        let names: AccessRuleResolver.Resolved
        do throws(any Error) {
            loaded = try ConfigurationLoader.load(path: configurationPath, environment: Environment.current)
            options.applyOverrides(to: &loaded.configuration)
            names = try AccessRuleResolver.resolve(loaded.configuration)
        } catch {
            logger.error("Failed to reload configuration, keeping the current one: \(error)")
            return (running, "reload failed, running configuration kept (see the log)")
        }
        let old = running.0.configuration, new = loaded.configuration
        if old.endpoint.caFile != new.endpoint.caFile || old.endpoint.timeout != new.endpoint.timeout {
            do {
                fetcher.replace(with: try TokenEndpointClient(caFile: new.endpoint.caFile, timeout: new.endpoint.timeout))
            } catch {
                logger.error("Failed to reload configuration, keeping the current one: cannot load ca_file \(new.endpoint.caFile ?? ""): \(error)")
                return (running, "reload failed, running configuration kept (see the log)")
            }
        }
        if names.rule != running.1.rule {
            access.replace(with: names.rule)
            logger.notice("Applied the new [access] rule")
        }
        var needRestart: [String] = []
        if old.socket != new.socket || names.socketGroupID != running.1.socketGroupID { needRestart.append("[socket]") }
        if old.logging != new.logging { needRestart.append("[logging]") }
        broker.reconfigure(endpoint: new.endpoint, request: loaded.tokenRequest, policy: new.renewal)
        guard needRestart.isEmpty else {
            let outcome = "reloaded; \(needRestart.joined(separator: " and ")) changes take effect at the next restart"
            logger.warning("Configuration reloaded, but some changes need a restart", metadata: ["pending": "\(needRestart)"])
            return ((loaded, names), outcome)
        }
        return ((loaded, names), nil)
    }
}
