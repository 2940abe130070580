import Synchronization
public import WebhookTokenCore

/// The `[access]` rule in force, replaceable at once by a reload.
///
/// Connections are admitted against the rule when accepted; a connection that outlives a reload
/// sees the change on its next request (it compares the rule's generation, one atomic load), so
/// revoking a user takes effect for kept-alive connections too, without a restart.
public final class SharedAccessRule: Sendable {
    private let rule: Mutex<PeerAccessRule>
    private let generationCounter = Atomic<Int>(0)

    public init(_ rule: PeerAccessRule) {
        self.rule = Mutex(rule)
    }

    public var current: PeerAccessRule { rule.withLock { $0 } }

    /// Changes whenever the rule is replaced.
    public var generation: Int { generationCounter.load(ordering: .acquiring) }

    public func replace(with newRule: PeerAccessRule) {
        rule.withLock { $0 = newRule }
        generationCounter.wrappingAdd(1, ordering: .releasing)
    }
}
