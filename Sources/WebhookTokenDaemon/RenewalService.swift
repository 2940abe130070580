import Logging
import ServiceLifecycle
import WebhookTokenSystemd

/// Runs every profile's renewal loop, each in its own child task — one profile's outage, hanging
/// endpoint or revoked client never delays another's — including profiles a reload adds.
///
/// Shutdown begins here (it is the first service the group stops, being the last started):
/// systemd hears STOPPING=1, every consumer waiting for a token is answered, and every loop — and
/// any token request in flight — ends. If every profile was refused on its first fetch, the
/// service ends with that error, and the daemon with exit status 78.
struct RenewalService: Service {
    let profiles: ProfileSet
    let notifier: SystemdNotifier

    func run() async throws {
        let (profiles, notifier) = (self.profiles, self.notifier)
        await withGracefulShutdownHandler {
            await cancelWhenGracefulShutdown {
                await withDiscardingTaskGroup { group in
                    for await runtime in profiles.started {
                        group.addTask { await runtime.runRenewals() }
                    }
                    group.cancelAll()
                }
            }
        } onGracefulShutdown: {
            notifier.stopping()
            profiles.shutdown()
        }
        if let error = profiles.fatalError { throw error }
    }
}
