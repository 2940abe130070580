import Logging
import WebhookTokenCore
import WebhookTokenEndpoint
import WebhookTokenServer

/// Turns the names in the configuration — `[access]` users and groups, the socket's group — into
/// the numeric ids the kernel reports, at start-up, on reload and in `--check-config` alike.
struct AccessRuleResolver {
    /// What the names resolve to.
    struct Resolved: Equatable {
        /// Each profile's rule, by profile name.
        var rules: [String: PeerAccessRule]
        var socketGroupID: UInt32?
        /// Each sink's group, by path.
        var sinkGroupIDs: [String: UInt32] = [:]
    }

    static func resolve(_ configuration: Configuration) throws(AccountLookup.Problem) -> Resolved {
        var rules: [String: PeerAccessRule] = [:]
        for profile in configuration.profiles {
            rules[profile.name] = try rule(profile.access)
        }
        let socketGroupID = try configuration.socket.group.map { name throws(AccountLookup.Problem) in
            try AccountLookup.groupID(named: name)
        }
        var sinkGroupIDs: [String: UInt32] = [:]
        for sink in configuration.sinks {
            if let group = sink.group { sinkGroupIDs[sink.path] = try AccountLookup.groupID(named: group) }
        }
        return Resolved(rules: rules, socketGroupID: socketGroupID, sinkGroupIDs: sinkGroupIDs)
    }

    private static func rule(_ access: AccessPolicy) throws(AccountLookup.Problem) -> PeerAccessRule {
        var users = Set<UInt32>()
        var groups = Set<UInt32>()
        for principal in access.allowedUsers {
            switch principal {
            case .id(let id): users.insert(id)
            case .name(let name): users.insert(try AccountLookup.userID(named: name))
            }
        }
        for principal in access.allowedGroups {
            switch principal {
            case .id(let id): groups.insert(id)
            case .name(let name): groups.insert(try AccountLookup.groupID(named: name))
            }
        }
        return PeerAccessRule(allowedUserIDs: users, allowedGroupIDs: groups)
    }

    /// Resolves, retrying a failed lookup (not an unknown name) with a doubling delay — at boot
    /// the user database may be a network service that is not up yet. Throws the last problem.
    static func resolveRetrying(
        _ configuration: Configuration, attempts: Int = 6, firstDelay: Duration = .milliseconds(500), logger: Logger
    ) async throws(AccountLookup.Problem) -> Resolved {
        var delay = firstDelay
        var attempt = 1
        while true {
            do {
                return try resolve(configuration)
            } catch {
                guard error.isTransient, attempt < attempts else { throw error }
                logger.warning(
                    "User or group lookup failed; retrying",
                    metadata: [
                        "error": "\(error)", "retry_in_s": "\(delay.seconds)",
                    ])
                await sleepOnEventLoop(for: delay)
                delay *= 2
                attempt += 1
            }
        }
    }
}
