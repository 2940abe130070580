import NIOCore
import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a Unix-socket peer's kernel-verified credentials: `SO_PEERCRED` (pid, uid, gid, as of
/// `connect()`) and `SO_PEERGROUPS` (supplementary groups).
enum PeerCredentialsReader {
    /// A Swift mirror of `struct ucred` (`<sys/socket.h>` declares it only under `_GNU_SOURCE`).
    struct UCred: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Room for 64 supplementary groups; the kernel fills the front and leaves the rest zero.
    struct GroupList: Sendable {
        var ids:
            (
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                UInt32, UInt32, UInt32
            ) = (
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            )

        var array: [UInt32] {
            withUnsafeBytes(of: ids) { Array($0.bindMemory(to: UInt32.self)) }
        }
    }

    static let peerCredentialsOption = SocketOptionName(17)  // SO_PEERCRED
    static let peerGroupsOption = SocketOptionName(59)  // SO_PEERGROUPS (Linux 4.13+)

    /// The peer's credentials; fails when the channel is not a Unix socket. The supplementary
    /// groups (a second `getsockopt`) are read only when `withGroups` — when an access rule names
    /// groups. On the channel's event loop both calls run at once and the future is complete.
    static func read(from channel: any Channel, withGroups: Bool) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let credentials: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: peerCredentialsOption)
        guard withGroups else {
            return credentials.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
        }
        return credentials.flatMap { ucred in
            let groups: EventLoopFuture<GroupList> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: peerGroupsOption)
            return groups.map { list in
                // Trailing zeros are unused room, not group 0; a real group 0 beyond the primary
                // one is rare and only ever matters if group 0 is explicitly allowed.
                let supplementary = list.array.filter { $0 != 0 }
                return PeerCredentials(
                    pid: ucred.pid, uid: ucred.uid, gid: ucred.gid, supplementaryGroups: supplementary)
            }.flatMapErrorThrowing { _ in
                // More than 64 groups (ERANGE) or an old kernel: fall back to the primary group.
                PeerCredentials(pid: ucred.pid, uid: ucred.uid, gid: ucred.gid, supplementaryGroups: [])
            }
        }
    }

    /// The peer's executable, for the warning about a denied peer (best effort).
    static func executable(of pid: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "?" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
