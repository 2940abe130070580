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
    }
}
