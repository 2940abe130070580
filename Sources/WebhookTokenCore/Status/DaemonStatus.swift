/// The status of every profile, for `/v1/status`, `webhook-token status` and systemd's `STATUS=`.
///
/// With one profile everything reads exactly as that profile's ``BrokerStatus`` (plus a
/// `profiles` object in the JSON), so the single-token form looks as it always did. With several,
/// the top-level `state` is the worst of them and the summary counts them:
///
///     2/3 profiles valid; hosted-login: endpoint answered 503, retrying in 8 s
public struct DaemonStatus: Sendable, Equatable {
    public struct Profile: Sendable, Equatable {
        public var name: String
        public var status: BrokerStatus

        public init(name: String, status: BrokerStatus) {
            self.name = name
            self.status = status
        }
    }

    /// In configuration order.
    public var profiles: [Profile]

    public init(profiles: [Profile]) {
        self.profiles = profiles
    }

    /// The worst state of any profile: a person looking at one word must see the trouble.
    public var state: BrokerState {
        profiles.map(\.status.state).max { Self.severity($0) < Self.severity($1) } ?? .starting
    }

    /// How bad a state is, for ``state``.
    static func severity(_ state: BrokerState) -> Int {
        switch state {
        case .valid: return 0
        case .renewing: return 1
        case .degraded: return 2
        case .starting: return 3
        case .expired: return 4
        case .failed: return 5
        }
    }

    /// One line, for `STATUS=` and the first line of `webhook-token status`.
    public func summary() -> String {
        if profiles.count == 1 { return profiles[0].status.summary() }
        let servable: Set<BrokerState> = [.valid, .renewing, .degraded]
        let valid = profiles.filter { servable.contains($0.status.state) && $0.status.consecutiveFailures == 0 }
        let troubled = profiles.filter { !(servable.contains($0.status.state) && $0.status.consecutiveFailures == 0) }
        var text = "\(valid.count)/\(profiles.count) profiles valid"
        for profile in troubled { text += "; \(profile.name): \(profile.status.summary())" }
        return text
    }

    /// `/v1/status`.
    public func json() -> String {
        let byName = JSONText.object(profiles.map { ($0.name, JSONText.object($0.status.jsonFields())) })
        if profiles.count == 1 {
            return JSONText.object(profiles[0].status.jsonFields() + [("profiles", byName)]) + "\n"
        }
        return JSONText.object([
            ("state", JSONText.string(state.rawValue)),
            ("summary", JSONText.string(summary())),
            ("profiles", byName),
        ]) + "\n"
    }

    /// `/v1/status?format=text`.
    public func humanText() -> String {
        if profiles.count == 1 { return profiles[0].status.humanText() }
        var text = "state:          \(state.rawValue) — \(summary())\n"
        for profile in profiles {
            text += "\nprofile \(profile.name):\n"
            for line in profile.status.humanText().split(separator: "\n") { text += "  \(line)\n" }
        }
        return text
    }
}
