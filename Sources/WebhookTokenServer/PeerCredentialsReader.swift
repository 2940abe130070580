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

    /// The peer's credentials, `nil` when the channel is not a Unix socket. The supplementary
    /// groups (a second `getsockopt`) are read only when `withGroups` — when an access rule names
    /// groups. Called on the channel's event loop, where NIO reads a socket option at once: the
    /// values are taken from the completed futures rather than through a chain of futures, which
    /// cost more than the rest of the admission of a connection.
    static func read(from channel: any Channel, withGroups: Bool) -> PeerCredentials? {
        channel.eventLoop.assertInEventLoop()
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        guard
            let ucred: UCred = valueNow(
                provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: peerCredentialsOption))
        else { return nil }
        let primary = PeerCredentials(pid: ucred.pid, uid: ucred.uid, gid: ucred.gid)
        guard withGroups else { return primary }
        // More than 64 groups (ERANGE) or an old kernel: the primary group only.
        guard
            let list: GroupList = valueNow(
                provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: peerGroupsOption))
        else { return primary }
        // Trailing zeros are unused room, not group 0; a real group 0 beyond the primary one is
        // rare and only ever matters if group 0 is explicitly allowed.
        return PeerCredentials(
            pid: ucred.pid, uid: ucred.uid, gid: ucred.gid, supplementaryGroups: list.array.filter { $0 != 0 })
    }

    /// The value of a future its event loop has completed (`nil` if it failed, or is pending).
    private static func valueNow<Value>(_ future: EventLoopFuture<Value>) -> Value? {
        var value: Value?
        future.assumeIsolated().whenSuccess { value = $0 }  // runs at once: the future is complete
        return value
    }

    /// The peer's executable, for the warning about a denied peer (best effort).
    static func executable(of pid: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "?" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
