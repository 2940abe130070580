import Logging
import Synchronization
import WebhookTokenCore

/// Warns about peers the access rule refuses — at most once a minute per user, so that a
/// misconfigured consumer in a loop cannot flood the journal — and counts them.
public final class DeniedPeerLog: Sendable {
    private struct State {
        var lastWarning: [UInt32: ContinuousClock.Instant] = [:]
        var denied = 0
    }

    private let state = Mutex(State())
    private let interval: Duration

    public init(interval: Duration = .seconds(60)) {
        self.interval = interval
    }

    /// Requests refused since start-up.
    public var deniedCount: Int { state.withLock { $0.denied } }

    func record(peer: PeerCredentials?, logger: Logger) {
        let now = ContinuousClock.now
        let uid = peer?.uid ?? UInt32.max
        let warn = state.withLock { state -> Bool in
            state.denied += 1
            if let last = state.lastWarning[uid], last.duration(to: now) < interval { return false }
            state.lastWarning[uid] = now
            return true
        }
        guard warn else { return }
        logger.warning(
            "Refused a peer not allowed by [access]",
            metadata: [
                "message_id": "2a3b4c5d6e7f4a8b9c0d1e2f3a4b5c99",
                "peer.uid": "\(peer.map { String($0.uid) } ?? "?")",
                "peer.gid": "\(peer.map { String($0.gid) } ?? "?")",
                "peer.pid": "\(peer.map { String($0.pid) } ?? "?")",
                "peer.exe": "\(peer.map { PeerCredentialsReader.executable(of: $0.pid) } ?? "?")",
            ])
    }
}
