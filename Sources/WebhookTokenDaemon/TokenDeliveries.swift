import Logging
import Synchronization
import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The consumers that are handed tokens rather than asking: `[[sink]]` files and `[[hook]]`
/// commands, by profile, driven by the brokers' events and replaced whole on reload.
///
/// A new token: first the profile's sinks are written, then its hooks run (so a hook can read
/// the sink). A token that stops being servable: the profile's sinks are removed, so that no
/// consumer picks up an expired token. The daemon stopping: every sink is removed.
final class TokenDeliveries: Sendable {
    private struct Consumers {
        var sinks: [SinkWriter] = []
        var hooks: [HookRunner] = []
    }

    private let current = Mutex(Consumers())
    private let logger: Logger
    private let metrics: DaemonMetrics
    private let epochSeconds: @Sendable () -> Int64

    init(logger: Logger, metrics: DaemonMetrics, epochSeconds: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }) {
        self.logger = logger
        self.metrics = metrics
        self.epochSeconds = epochSeconds
    }

    /// Sets the sinks and hooks (at start-up, and on a reload that changes them). Sinks no
    /// longer configured are removed; new ones are written at once with `servable(profile)`.
    func configure(
        _ configuration: Configuration, sinkGroupIDs: [String: UInt32], servable: (String) -> PresentedToken?
    ) {
        let sinks = configuration.sinks.map { SinkWriter(sink: $0, groupID: sinkGroupIDs[$0.path], logger: logger) }
        let hooks = configuration.hooks.map { hook in
            HookRunner(
                hook: hook, sinkPath: configuration.sinks.first { $0.profile == hook.profile }?.path, logger: logger,
                metrics: metrics)
        }
        let old = current.withLock { current -> Consumers in
            defer { current = Consumers(sinks: sinks, hooks: hooks) }
            return current
        }
        let kept = Set(sinks.map(\.sink.path))
        for writer in old.sinks where !kept.contains(writer.sink.path) { writer.remove() }
        for runner in old.hooks { runner.stop() }
        for writer in sinks {
            if let token = servable(writer.sink.profile) {
                writer.write(token, epochSeconds: epochSeconds())
            } else {
                writer.remove()  // a stale file from an earlier run
            }
        }
    }

    /// A profile's broker reports.
    func handle(_ event: TokenBroker.Event, profile: String) {
        let (sinks, hooks) = current.withLock { current in
            (current.sinks.filter { $0.sink.profile == profile }, current.hooks.filter { $0.hook.profile == profile })
        }
        switch event {
        case .tokenObtained(let held, _, _):
            for sink in sinks { sink.write(held.presentation, epochSeconds: epochSeconds()) }
            for hook in hooks { hook.tokenServed(held.presentation) }
        case .tokenExpired:
            for sink in sinks { sink.remove() }
        case .fetchFailed:
            break
        }
    }

    /// A profile was removed by a reload: its sinks go too (the reload's configure drops them).
    /// The daemon stops: every sink is removed and no hook runs again.
    func stop() {
        let all = current.withLock { $0 }
        for sink in all.sinks { sink.remove() }
        for hook in all.hooks { hook.stop() }
    }
}
