import Logging
import ServiceLifecycle
import WebhookTokenCore
import WebhookTokenEndpoint
import WebhookTokenServer
import WebhookTokenSystemd

/// Re-reads the configuration and the secrets on SIGHUP (`systemctl reload`).
///
/// A broken new configuration — including a user or group name that does not resolve — is
/// rejected with a log line and the running one keeps serving. Profiles are added, removed and
/// changed: a new one starts fetching, a removed one's routes answer 404 at once, a changed
/// endpoint or credential fetches a new token while the old one is still served, and a profile
/// whose configuration did not change keeps its token and its schedule. A changed `[access]` rule
/// applies at once, to new connections and to the next request of open ones. Settings that only
/// take effect at start-up (the socket, the log level) are named in the reload's result: the log
/// line and systemd's `STATUS=`.
struct ReloadService: Service {
    /// One element per SIGHUP.
    let signals: AsyncStream<Void>
    let configurationPath: String
    let options: DaemonOptions
    let profiles: ProfileSet
    let factory: ProfileFactory
    let readiness: ReadinessTracker
    let deliveries: TokenDeliveries
    let access: SharedAccessRules
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
            // Before readiness the unit is still starting: RELOADING/READY would mark it up.
            let wasReady = readiness.isReady
            if wasReady { notifier.reloading() }
            logger.info("Reloading configuration", metadata: ["path": "\(configurationPath)"])
            let outcome: String?
            (running, outcome) = reload(from: running)
            let summary = (outcome.map { "\($0); " } ?? "") + profiles.status().summary()
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
        var added: [String: ProfileRuntime] = [:]
        var newClients: [String: TokenEndpointClient] = [:]
        do throws(any Error) {
            loaded = try ConfigurationLoader.load(path: configurationPath, environment: Environment.current)
            options.applyOverrides(to: &loaded.configuration)
            names = try AccessRuleResolver.resolve(loaded.configuration)
            // Everything that can fail, before anything changes: a new profile's client, a
            // changed profile's new trust roots.
            for profile in loaded.configuration.profiles {
                guard let previous = running.0.configuration.profile(named: profile.name) else {
                    added[profile.name] = try factory.make(profile, request: loaded.tokenRequest(for: profile))
                    continue
                }
                if previous.endpoint.caFile != profile.endpoint.caFile
                    || previous.endpoint.timeout != profile.endpoint.timeout
                {
                    newClients[profile.name] = try TokenEndpointClient(
                        caFile: profile.endpoint.caFile, timeout: profile.endpoint.timeout)
                }
            }
        } catch {
            for runtime in added.values { readiness.forget(runtime.name) }
            logger.error("Failed to reload configuration, keeping the current one: \(error)")
            return (running, "reload failed, running configuration kept (see the log)")
        }
        let old = running.0.configuration
        let new = loaded.configuration
        for profile in old.profiles where new.profile(named: profile.name) == nil {
            profiles.remove(named: profile.name)
            readiness.forget(profile.name)
            logger.notice("Removed a profile", metadata: ["profile": "\(profile.name)"])
        }
        for profile in new.profiles {
            if let runtime = added[profile.name] {
                profiles.add(runtime)
                logger.notice("Added a profile", metadata: ["profile": "\(profile.name)"])
            } else if let runtime = profiles.runtime(named: profile.name) {
                // A new client for new trust roots or timeout; the broker decides whether the
                // endpoint or the credentials changed enough to fetch a new token.
                if let client = newClients[profile.name] { runtime.fetcher.replace(with: client) }
                runtime.broker.reconfigure(
                    endpoint: profile.endpoint, request: loaded.tokenRequest(for: profile), policy: profile.renewal)
            }
        }
        if old.sinks != new.sinks || old.hooks != new.hooks || names.sinkGroupIDs != running.1.sinkGroupIDs {
            let profiles = self.profiles
            deliveries.configure(new, sinkGroupIDs: names.sinkGroupIDs) {
                profiles.runtime(named: $0)?.broker.servableToken()?.presentation
            }
            logger.notice("Applied the new [[sink]] and [[hook]] tables")
        }
        if names.rules != running.1.rules {
            access.replace(with: names.rules)
            logger.notice("Applied the new [access] rules")
        }
        var needRestart: [String] = []
        if old.socket != new.socket || names.socketGroupID != running.1.socketGroupID { needRestart.append("[socket]") }
        if old.logging != new.logging { needRestart.append("[logging]") }
        let proxies = { (configuration: Configuration) in configuration.profiles.map { [$0.name: $0.proxy] } }
        if proxies(old) != proxies(new) { needRestart.append("[proxy]") }
        guard needRestart.isEmpty else {
            let outcome = "reloaded; \(needRestart.joined(separator: " and ")) changes take effect at the next restart"
            logger.warning(
                "Configuration reloaded, but some changes need a restart", metadata: ["pending": "\(needRestart)"])
            return ((loaded, names), outcome)
        }
        return ((loaded, names), nil)
    }
}
