import Synchronization
import WebhookTokenCore
import WebhookTokenSystemd

/// Decides when the daemon is ready, and when it must give up, over all its profiles.
///
/// `READY=1` goes out once every profile holds a token or has been refused permanently (each
/// refusal logged as an error), so `After=webhook-tokend.service` means "every token that can be
/// had is there". The daemon exits 78 only when *every* profile was refused permanently before its
/// first token: then only a changed configuration can help, and systemd must not restart it.
/// Meanwhile `STATUS=` always carries the summary of all profiles.
final class ReadinessTracker: Sendable {
    private enum Outcome {
        case pending
        case ready
        case refused(FetchFailure)
    }

    private struct State {
        var outcomes: [String: Outcome] = [:]
        var announced = false
        var gaveUp = false
    }

    private let state = Mutex(State())
    private let notifier: SystemdNotifier
    private let summary: @Sendable () -> String
    private let giveUp: @Sendable (AllProfilesRejected) -> Void

    /// - Parameters:
    ///   - summary: the current `STATUS=` line of all profiles.
    ///   - giveUp: called once, when every profile was refused before its first token.
    init(
        notifier: SystemdNotifier, summary: @escaping @Sendable () -> String,
        giveUp: @escaping @Sendable (AllProfilesRejected) -> Void
    ) {
        self.notifier = notifier
        self.summary = summary
        self.giveUp = giveUp
    }

    /// A profile starts (at start-up, or added by a reload after readiness).
    func track(_ profile: String) {
        state.withLock { $0.outcomes[profile] = .pending }
    }

    func forget(_ profile: String) {
        state.withLock { _ = $0.outcomes.removeValue(forKey: profile) }
    }

    /// Whether READY=1 has been sent.
    var isReady: Bool { state.withLock { $0.announced } }

    func record(_ event: TokenBroker.Event, profile: String) {
        let (announce, rejected) = state.withLock { state -> (Bool, AllProfilesRejected?) in
            switch event {
            case .tokenObtained:
                state.outcomes[profile] = .ready
            case .fetchFailed(let failure, _, let beforeFirstToken) where failure.isPermanent && beforeFirstToken:
                if case .pending? = state.outcomes[profile] { state.outcomes[profile] = .refused(failure) }
            default:
                break
            }
            guard !state.announced, !state.gaveUp,
                !state.outcomes.values.contains(where: { if case .pending = $0 { return true } else { return false } })
            else { return (false, nil) }
            if state.outcomes.values.contains(where: { if case .ready = $0 { return true } else { return false } }) {
                state.announced = true
                return (true, nil)
            }
            state.gaveUp = true
            let failures = state.outcomes.sorted { ProfileSet.order($0.key, $1.key) }.compactMap { name, outcome in
                if case .refused(let failure) = outcome { return (name, failure) }
                return nil
            }
            return (false, AllProfilesRejected(failures: failures))
        }
        if announce {
            notifier.ready(status: summary())
        } else {
            notifier.status(rejected?.description ?? summary())
        }
        if let rejected { giveUp(rejected) }
    }
}

/// Every profile was refused permanently before its first token: the daemon cannot do its job
/// until reconfigured (exit 78).
struct AllProfilesRejected: Error, CustomStringConvertible {
    let failures: [(profile: String, failure: FetchFailure)]

    var description: String {
        func text(_ failure: FetchFailure) -> String { "\(failure)" + (failure.remedy.map { "; \($0)" } ?? "") }
        if failures.count == 1 { return "Failed to obtain the first token: \(text(failures[0].failure))" }
        return "Failed to obtain the first token of every profile: "
            + failures.map { "\($0.profile): \(text($0.failure))" }.joined(separator: "; ")
    }

    var errorCode: String { failures.first?.failure.kind.rawValue ?? "rejected" }
}
