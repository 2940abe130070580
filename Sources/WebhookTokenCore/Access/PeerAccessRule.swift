/// Who, by kernel-verified credentials, may ask for the token (`[access]`, with names resolved).
///
/// The socket's mode and group are the first gate; this is the second, applied to every
/// connection's `SO_PEERCRED` / `SO_PEERGROUPS`. Root is not special: it is let in only when
/// listed (it can read the daemon's memory anyway, but an unlisted root caller is a mistake worth
/// refusing and logging).
public struct PeerAccessRule: Sendable, Equatable {
    public let allowedUserIDs: Set<UInt32>
    public let allowedGroupIDs: Set<UInt32>

    public init(allowedUserIDs: Set<UInt32>, allowedGroupIDs: Set<UInt32>) {
        self.allowedUserIDs = allowedUserIDs
        self.allowedGroupIDs = allowedGroupIDs
    }

    /// Anyone who can open the socket.
    public static let everyone = PeerAccessRule(allowedUserIDs: [], allowedGroupIDs: [])

    public var allowsEveryone: Bool { allowedUserIDs.isEmpty && allowedGroupIDs.isEmpty }

    /// Whether a peer with this user, primary group and supplementary groups may connect.
    public func permits(_ peer: PeerCredentials) -> Bool {
        if allowsEveryone { return true }
        if allowedUserIDs.contains(peer.uid) { return true }
        if allowedGroupIDs.contains(peer.gid) { return true }
        return !allowedGroupIDs.isDisjoint(with: peer.supplementaryGroups)
    }
}

/// A socket peer as the kernel vouches for it at `connect()` time.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32
    public let supplementaryGroups: [UInt32]

    public init(pid: Int32, uid: UInt32, gid: UInt32, supplementaryGroups: [UInt32] = []) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.supplementaryGroups = supplementaryGroups
    }

    public var description: String { "uid \(uid) gid \(gid) pid \(pid)" }
}
