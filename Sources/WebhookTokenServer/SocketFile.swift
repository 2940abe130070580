#if canImport(Glibc)
import Glibc
#endif

/// The Unix socket's file: made safe before binding, given its permissions after, removed at exit.
///
/// The daemon binds with a umask of 0177, so the socket exists with mode 0600 — reachable by the
/// daemon's own user only — until it is given its configured group and mode: there is no moment
/// at which a process outside the configured group can connect.
public struct SocketFile: Sendable {
    public let path: String
    /// Device and inode of the socket file the daemon created, so that at exit it removes that
    /// file and not one a successor has created at the same path meanwhile.
    private let identity: (dev: UInt64, ino: UInt64)?

    public enum Problem: Error, CustomStringConvertible {
        case live(path: String)
        case notASocket(path: String)
        case directoryMissing(path: String)
        case system(call: String, path: String, errno: Int32)
        case unknownGroup(String)

        public var description: String {
            switch self {
            case .live(let path):
                return "another process is serving the socket \(path); refusing to take it over (stop the other instance, or set [socket] path)"
            case .notASocket(let path):
                return "\(path) exists and is not a socket; refusing to replace it"
            case .directoryMissing(let path):
                return "the directory of the socket \(path) does not exist (under systemd, RuntimeDirectory= creates it)"
            case .system(let call, let path, let code):
                return "\(call) \(path) failed: \(String(cString: strerror(code)))"
            case .unknownGroup(let group):
                return "the socket group \"\(group)\" does not exist"
            }
        }
    }

    init(path: String, identity: (dev: UInt64, ino: UInt64)?) {
        self.path = path
        self.identity = identity
    }

    /// Readies `path` for binding: a stale socket left by a crashed run (nobody accepts on it) is
    /// removed; a socket some live process serves is not stolen; anything else is not touched.
    public static func prepare(path: String) throws(Problem) {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT {
                let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
                var directoryInfo = stat()
                if !directory.isEmpty, stat(directory, &directoryInfo) != 0 { throw .directoryMissing(path: path) }
                return
            }
            throw .system(call: "lstat", path: path, errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
        switch probe(path: path) {
        case 0:
            throw .live(path: path)
        case ECONNREFUSED:
            guard unlink(path) == 0 || errno == ENOENT else { throw .system(call: "unlink", path: path, errno: errno) }
        case let code:
            // EACCES and the like: we cannot tell whether it is live, so we do not touch it.
            throw .system(call: "connect to existing socket", path: path, errno: code)
        }
    }

    /// Tries to connect to the socket at `path`: 0 if something accepts, else the errno.
    static func probe(path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            let bytes = Array(path.utf8.prefix(buffer.count - 1))
            buffer.copyBytes(from: bytes + [0])
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0 ? 0 : errno
    }

    /// Runs `bind` with a umask that makes the new socket private to the daemon's user.
    public static func withPrivateUmask<T>(_ bind: () async throws -> T) async rethrows -> T {
        let previous = umask(0o177)
        defer { umask(previous) }
        return try await bind()
    }

    /// Gives the freshly bound socket its configured group and mode and remembers its identity.
    public static func finishBinding(path: String, mode: UInt32, group: String?) throws(Problem) -> SocketFile {
        if let group {
            let gid = try resolveGroup(group)
            guard chown(path, uid_t.max, gid_t(gid)) == 0 else { throw .system(call: "chown", path: path, errno: errno) }
        }
        guard chmod(path, mode_t(mode)) == 0 else { throw .system(call: "chmod", path: path, errno: errno) }
        var info = stat()
        guard lstat(path, &info) == 0 else { throw .system(call: "lstat", path: path, errno: errno) }
        return SocketFile(path: path, identity: (UInt64(info.st_dev), UInt64(info.st_ino)))
    }

    /// A group name or numeric id to a gid.
    public static func resolveGroup(_ group: String) throws(Problem) -> UInt32 {
        if let id = UInt32(group) { return id }
        guard let id = groupID(named: group) else { throw .unknownGroup(group) }
        return id
    }

    /// The gid of a group by name, from the system's group database (NSS).
    public static func groupID(named name: String) -> UInt32? {
        var entry = group_struct()
        var result: UnsafeMutablePointer<group_struct>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, let found = result else { return nil }
        return UInt32(found.pointee.gr_gid)
    }

    /// Removes the socket file if it is still the one this daemon created.
    public func remove() {
        guard let identity else { return }
        var info = stat()
        guard lstat(path, &info) == 0, UInt64(info.st_dev) == identity.dev, UInt64(info.st_ino) == identity.ino else {
            return
        }
        unlink(path)
    }
}

typealias group_struct = group
