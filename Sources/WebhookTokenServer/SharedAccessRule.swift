import Synchronization
public import WebhookTokenCore

/// The `[access]` rules in force, one per profile, replaceable at once by a reload.
///
/// A connection is admitted when any profile's rule lets its peer in; each token request is then
/// checked against its profile's rule. A connection that outlives a reload sees the change on its
/// next request (it compares the rules' generation, one atomic load), so revoking a user takes
/// effect for kept-alive connections too, without a restart.
public final class SharedAccessRules: Sendable {
    private let rules: Mutex<[String: PeerAccessRule]>
    private let generationCounter = Atomic<Int>(0)

    /// - Parameter rules: by profile name.
    public init(_ rules: [String: PeerAccessRule]) {
        self.rules = Mutex(rules)
    }

    /// Everyone, for every profile (tests, and a daemon without `[access]`).
    public static func everyone(profiles: [String] = [Configuration.Profile.defaultName]) -> SharedAccessRules {
        SharedAccessRules(Dictionary(uniqueKeysWithValues: profiles.map { ($0, PeerAccessRule.everyone) }))
    }

    /// Changes whenever the rules are replaced.
    public var generation: Int { generationCounter.load(ordering: .acquiring) }

    public func replace(with newRules: [String: PeerAccessRule]) {
        rules.withLock { $0 = newRules }
        generationCounter.wrappingAdd(1, ordering: .releasing)
    }

    /// Whether the peer may use at least one profile (`nil`: a socket without credentials, let in
    /// only where a rule lets everyone in).
    public func admits(_ peer: PeerCredentials?) -> Bool {
        rules.withLock { rules in rules.values.contains { Self.permits($0, peer) } }
    }

    /// Whether the peer may use `profile` (an unknown profile admits nobody).
    public func permits(_ peer: PeerCredentials?, profile: String) -> Bool {
        rules.withLock { rules in rules[profile].map { Self.permits($0, peer) } ?? false }
    }

    /// Whether any rule names groups, so that a peer's supplementary groups must be read.
    public var namesGroups: Bool {
        rules.withLock { rules in rules.values.contains { !$0.allowedGroupIDs.isEmpty } }
    }

    private static func permits(_ rule: PeerAccessRule, _ peer: PeerCredentials?) -> Bool {
        peer.map(rule.permits) ?? rule.allowsEveryone
    }
}
