import CProcessControl
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Process-level protection of the token held in memory.
enum ProcessHardening {
    /// Marks the process non-dumpable: no core dumps, and other processes of the same user can
    /// neither ptrace it nor read `/proc/<pid>/mem` — the token is in memory, and nowhere else.
    static func apply(logger: Logger) {
        if webhook_tokend_set_dumpable(0) != 0 {
            logger.warning("Failed to mark the process non-dumpable", metadata: ["errno": "\(errno)"])
        }
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        if setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore) != 0 {
            logger.warning("Failed to disable core dumps", metadata: ["errno": "\(errno)"])
        }
        raiseFileDescriptorLimit(logger: logger)
    }

    /// Raises the soft descriptor limit to the hard one (commonly 1024 → 524288): every consumer
    /// connection is a descriptor, and `max_connections` (1024 by default) must be reachable.
    static func raiseFileDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.warning("Failed to raise the file descriptor limit", metadata: ["errno": "\(errno)"])
        }
    }
}
