import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WebhookTokenEndpoint
import WebhookTokenServer
import WebhookTokenSystemd

/// Pings systemd's watchdog at half its interval — but only while the daemon is healthy.
///
/// Healthy means every event loop answers a no-op task within a second (the socket server can
/// serve) and no profile's renewal loop is stuck. A hung daemon thus stops pinging and systemd
/// restarts it; an endpoint outage is not a hang, so pinging goes on and `STATUS=` says why
/// there is no token. A ping that finds the daemon at rest also gives back the code pages that
/// serving mapped in (``QuietSpell``): the wakeup is the ping's own.
struct WatchdogService: Service {
    let interval: Duration
    let notifier: SystemdNotifier
    let profiles: ProfileSet
    let connections: ConnectionCounter
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger

    func run() async throws {
        let period = interval / 2
        await cancelWhenGracefulShutdown {
            notifier.watchdogPing()
            var rest = QuietSpell()
            while !Task.isCancelled {
                await sleepOnEventLoop(for: period)
                if Task.isCancelled { return }
                if await isHealthy() {
                    notifier.watchdogPing()
                    if rest.look(changes: connections.changes, open: connections.current) { ResidentCode.release() }
                }
            }
        }
    }

    private func isHealthy() async -> Bool {
        for runtime in profiles.all where !runtime.broker.renewalLoopIsAlive() {
            logger.critical(
                "Renewal loop is stuck; withholding the watchdog ping so that systemd restarts the daemon",
                metadata: ["profile": "\(runtime.name)"])
            return false
        }
        for loop in eventLoopGroup.makeIterator() {
            // A loop that cannot run a no-op within a second cannot serve a token either (and a
            // loop that never runs it leaves this check, and so the pings, hanging: also right).
            let started = ContinuousClock.now
            let ok = (try? await loop.submit { true }.get()) ?? false
            if !ok || started.duration(to: .now) > .seconds(1) {
                logger.critical("An event loop is unresponsive; withholding the watchdog ping")
                return false
            }
        }
        return true
    }
}
