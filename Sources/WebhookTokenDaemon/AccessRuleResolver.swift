import WebhookTokenCore
import WebhookTokenServer

#if canImport(Glibc)
import Glibc
#endif

/// Turns `[access]` user and group names into the numeric ids the kernel reports for peers.
enum AccessRuleResolver {
    struct UnknownPrincipal: Error, CustomStringConvertible {
        let kind: String
        let name: String
        var description: String { "[access]: the \(kind) \"\(name)\" does not exist on this host" }
    }

    static func resolve(_ policy: AccessPolicy) throws -> PeerAccessRule {
        var users = Set<UInt32>(), groups = Set<UInt32>()
        for principal in policy.allowedUsers {
            switch principal {
            case .id(let id): users.insert(id)
            case .name(let name): users.insert(try userID(name))
            }
        }
        for principal in policy.allowedGroups {
            switch principal {
            case .id(let id): groups.insert(id)
            case .name(let name): groups.insert(try groupID(name))
            }
        }
        return PeerAccessRule(allowedUserIDs: users, allowedGroupIDs: groups)
    }

    static func userID(_ name: String) throws -> UInt32 {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, let found = result else {
            throw UnknownPrincipal(kind: "user", name: name)
        }
        return UInt32(found.pointee.pw_uid)
    }

    static func groupID(_ name: String) throws -> UInt32 {
        guard let id = SocketFile.groupID(named: name) else { throw UnknownPrincipal(kind: "group", name: name) }
        return id
    }
}
