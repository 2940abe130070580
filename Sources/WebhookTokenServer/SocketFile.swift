#if canImport(Glibc)
    import Glibc
#endif

/// The Unix socket's file: made safe before binding, given its permissions after, removed at exit.
///
/// The daemon binds with a umask of 0177, so the socket exists with mode 0600 — reachable by the
/// daemon's own user only — until it is given its configured group and mode: there is no moment
/// at which a process outside the configured group can connect. The group and mode are set on
/// the file the daemon just bound, reached without following symbolic links, so that a link
/// planted in the directory cannot redirect them to another file. A lock file beside the socket
/// (``SocketLock``) keeps two instances started together from removing each other's socket.
public struct SocketFile: Sendable {
    public let path: String
    /// Device and inode of the socket file the daemon created, so that at exit it removes that
    /// file and not one a successor has created at the same path meanwhile.
    private let identity: (dev: UInt64, ino: UInt64)?
    /// Held from before the socket is prepared until after it is removed.
    private let lock: SocketLock?

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case live(path: String)
        case notASocket(path: String)
        case directoryMissing(path: String)
        case system(call: String, path: String, errno: Int32)
        case notOurSocket(path: String)
        case locked(path: String)

        public var description: String {
            switch self {
            case .live(let path):
                return
                    "another process is serving the socket \(path); refusing to take it over (stop the other instance, or set [socket] path)"
            case .notASocket(let path):
                return "\(path) exists and is not a socket; refusing to replace it"
            case .directoryMissing(let path):
                return
                    "the directory of the socket \(path) does not exist (under systemd, RuntimeDirectory= creates it)"
            case .system(let call, let path, let code):
                return "\(call) \(path) failed: \(String(cString: strerror(code)))"
            case .notOurSocket(let path):
                return
                    "\(path) is no longer the socket this daemon bound (replaced by a link or another file); refusing to change its permissions"
            case .locked(let path):
                return
                    "another webhook-tokend instance holds \(path).lock and serves (or is starting on) \(path); stop it, or set [socket] path"
            }
        }
    }

    init(path: String, identity: (dev: UInt64, ino: UInt64)?, lock: SocketLock?) {
        self.path = path
        self.identity = identity
        self.lock = lock
    }

    /// Checks that the socket's directory exists.
    public static func prepareDirectory(path: String) throws(Problem) {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        var directoryInfo = stat()
        if !directory.isEmpty, stat(directory, &directoryInfo) != 0 { throw .directoryMissing(path: path) }
    }

    /// Readies `path` for binding (under the ``SocketLock``): a stale socket left by a crashed run
    /// (nobody accepts on it) is removed; a socket some live process serves is not stolen;
    /// anything else is not touched.
    public static func prepare(path: String) throws(Problem) {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT { return }
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
    ///
    /// The file is opened with `O_PATH | O_NOFOLLOW` and checked to be a socket owned by the
    /// daemon's user before anything is changed; ownership and mode are then set through that
    /// descriptor, so whatever the path is made to point to meanwhile is never touched.
    public static func finishBinding(path: String, mode: UInt32, groupID: UInt32?, lock: SocketLock?) throws(Problem)
        -> SocketFile
    {
        let fd = open(path, openPathOnly | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ELOOP { throw .notOurSocket(path: path) }
            throw .system(call: "open", path: path, errno: errno)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system(call: "fstat", path: path, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFSOCK, info.st_uid == geteuid() else { throw .notOurSocket(path: path) }
        if let groupID {
            guard fchownat(fd, "", uid_t.max, gid_t(groupID), atEmptyPath) == 0 else {
                throw .system(call: "chown", path: path, errno: errno)
            }
        }
        // chmod(2) has no "this descriptor" form for an O_PATH descriptor; its /proc/self/fd link
        // names the very inode, not the path (this is what glibc's fchmodat does).
        guard chmod("/proc/self/fd/\(fd)", mode_t(mode)) == 0 else {
            throw .system(call: "chmod", path: path, errno: errno)
        }
        return SocketFile(path: path, identity: (UInt64(info.st_dev), UInt64(info.st_ino)), lock: lock)
    }

    /// Removes the socket file if it is still the one this daemon created, then the lock.
    public func remove() {
        defer { lock?.release() }
        guard let identity else { return }
        var info = stat()
        guard lstat(path, &info) == 0, UInt64(info.st_dev) == identity.dev, UInt64(info.st_ino) == identity.ino else {
            return
        }
        unlink(path)
    }
}

// <fcntl.h> declares these only under _GNU_SOURCE, which Swift's Glibc module does not define.
// Their values are the same on every Linux architecture.
/// `O_PATH`: a descriptor that names a file without opening it for reading or writing.
private let openPathOnly: Int32 = 0o10_000_000
/// `AT_EMPTY_PATH`: operate on the descriptor itself.
private let atEmptyPath: Int32 = 0x1000
