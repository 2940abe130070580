import Logging
import NIOPosix
import Synchronization
import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Runs one `[[hook]]` after each new token of its profile: at most one run at a time; a new
/// token during a run queues one more run (coalesced: however many arrive, the next run sees the
/// newest). A run past its timeout has its process group killed. Its outcome and a bounded
/// excerpt of its output are logged and counted; nothing a hook does — fail, hang, crash —
/// reaches serving or renewal, which never wait for it.
///
/// The token is never in the hook's argv or environment (both readable through /proc by any
/// process of the same user); with `stdin = "token"` it is written to the hook's standard input.
final class HookRunner: Sendable {
    let hook: Configuration.Hook
    private let sinkPath: String?
    private let logger: Logger
    private let metrics: DaemonMetrics

    private struct State {
        var running = false
        var pending: PresentedToken?
        var processGroup: pid_t?
        var stopped = false
    }

    private let state = Mutex(State())

    /// - Parameter sinkPath: the profile's first sink, for `WEBHOOK_TOKEN_SINK`.
    init(hook: Configuration.Hook, sinkPath: String?, logger: Logger, metrics: DaemonMetrics) {
        self.hook = hook
        self.sinkPath = sinkPath
        self.logger = logger
        self.metrics = metrics
    }

    /// A new token is served (and the profile's sinks written).
    func tokenServed(_ token: PresentedToken) {
        let start = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            if state.running {
                state.pending = token
                return false
            }
            state.running = true
            return true
        }
        guard start else { return }
        Task { await self.runUntilNothingIsPending(token) }
    }

    /// No more runs; a run in progress has its process group killed.
    func stop() {
        let group = state.withLock { state -> pid_t? in
            state.stopped = true
            state.pending = nil
            return state.processGroup
        }
        if let group { kill(-group, SIGKILL) }
    }

    private func runUntilNothingIsPending(_ first: PresentedToken) async {
        var token = first
        while true {
            await runOnce(token)
            let next = state.withLock { state -> PresentedToken? in
                guard !state.stopped, let pending = state.pending else {
                    state.running = false
                    return nil
                }
                state.pending = nil
                return pending
            }
            guard let next else { return }
            token = next
        }
    }

    private func runOnce(_ token: PresentedToken) async {
        let environment =
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "WEBHOOK_TOKEN_PROFILE=\(hook.profile)",
                "WEBHOOK_TOKEN_EXPIRES_AT=\(RFC3339.format(epochSeconds: token.expiresAtEpochSeconds))",
                "WEBHOOK_TOKEN_FINGERPRINT=\(token.fingerprint)",
            ] + (sinkPath.map { ["WEBHOOK_TOKEN_SINK=\($0)"] } ?? [])
        let input = hook.stdin == .token ? token.raw + [0x0A] : nil
        let hook = self.hook
        let outcome: HookProcess.Outcome
        do {
            outcome = try await NIOThreadPool.singleton.runIfActive { [self] in
                HookProcess.run(
                    command: hook.command, environment: environment, input: input, timeout: hook.timeout,
                    started: { group in self.state.withLock { $0.processGroup = group } })
            }
        } catch {
            logger.error("Could not run the renewal hook: \(error)", metadata: ["hook.command": "\(hook.command[0])"])
            return
        }
        state.withLock { $0.processGroup = nil }
        metrics.hookRan(profile: hook.profile, result: outcome.result)
        // The output is the hook's, not the endpoint's, but it is still bounded and made printable.
        let metadata: Logger.Metadata = [
            "hook.command": "\(hook.command[0])", "hook.result": "\(outcome.result)",
            "hook.duration_ms":
                "\(outcome.duration.components.seconds * 1000 + outcome.duration.components.attoseconds / 1_000_000_000_000_000)",
            "hook.output": "\(UntrustedText.sanitize(outcome.output, limit: HookProcess.outputExcerptBytes))",
            "token.fingerprint": "\(token.fingerprint)",
        ]
        if outcome.succeeded {
            logger.info("Renewal hook ran", metadata: metadata)
        } else {
            logger.error("Renewal hook \(outcome)", metadata: metadata)
        }
    }
}
