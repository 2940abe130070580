#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on `<socket>.lock`, held for as long as the daemon serves the socket.
///
/// Without it, two instances started together can each find the other's socket "stale" (bound
/// but not yet accepting) and remove it. With it, the second one stops with a clear error before
/// touching the socket. `flock` locks die with the process, so a crash leaves no stale lock; the
/// file is re-checked after locking so that a lock on a file another instance has just removed
/// and replaced is never taken for the real one.
public final class SocketLock: Sendable {
    public let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock beside `socketPath`, or throws ``SocketFile/Problem/locked(path:)``.
    public static func acquire(socketPath: String) throws(SocketFile.Problem) -> SocketLock {
        let lockPath = socketPath + ".lock"
        for _ in 0..<5 {
            let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .system(call: "open", path: lockPath, errno: errno) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                let code = errno
                close(fd)
                if code == EWOULDBLOCK { throw .locked(path: socketPath) }
                throw .system(call: "flock", path: lockPath, errno: code)
            }
            // Is the file we locked still the one at the path? (The previous holder may have
            // removed it between our open and our flock.)
            var locked = stat()
            var current = stat()
            if fstat(fd, &locked) == 0, lstat(lockPath, &current) == 0, locked.st_dev == current.st_dev,
                locked.st_ino == current.st_ino
            {
                return SocketLock(path: lockPath, descriptor: fd)
            }
            close(fd)
        }
        throw .locked(path: socketPath)
    }

    /// Removes the lock file and releases the lock (in that order, so that nobody can lock the
    /// old file and believe it current).
    func release() {
        unlink(path)
        close(descriptor)
    }
}
