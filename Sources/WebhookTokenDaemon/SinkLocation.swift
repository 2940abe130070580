import CProcessControl
import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Where a sink may be written: the token is meant to stay in memory, and nobody but the daemon
/// (and root) may be able to swap the file.
///
/// - The file system must be tmpfs or ramfs (by `statfs`), unless the sink says
///   `allow_persistent_storage = true`.
/// - The directory must be owned by root or the daemon's user and not writable by others — so
///   not `/dev/shm` or `/tmp` themselves (sticky, world-writable), but a directory of the daemon's
///   under them, or `RuntimeDirectory=webhook-tokend/sinks` under systemd.
/// - An existing file at the path must not be a directory.
enum SinkLocation {
    static let tmpfsMagic: UInt = 0x0102_1994
    static let ramfsMagic: UInt = 0x8584_58F6

    /// The problem with `sink`'s location, in words; `nil` if it may be written.
    static func problem(with sink: Configuration.Sink) -> String? {
        let slash = sink.path.utf8.lastIndex(of: UInt8(ascii: "/")) ?? sink.path.utf8.startIndex
        let directory = String(sink.path[..<slash]).isEmpty ? "/" : String(sink.path[..<slash])
        var info = stat()
        guard stat(directory, &info) == 0 else {
            return
                "the directory \(directory) of the sink \(sink.path) cannot be used: \(String(cString: strerror(errno)))"
                + " (under systemd, RuntimeDirectory= creates it)"
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return "\(directory) is not a directory" }
        if info.st_uid != 0 && info.st_uid != geteuid() {
            return
                "the directory \(directory) of the sink \(sink.path) is owned by uid \(info.st_uid), neither root nor the daemon's user"
        }
        if info.st_mode & 0o002 != 0 {
            return
                "the directory \(directory) of the sink \(sink.path) is writable by others (mode \(String(info.st_mode & 0o7777, radix: 8))):"
                + " anyone could replace the token file; use a directory of the daemon's under it"
        }
        if !sink.allowPersistentStorage {
            let found = webhook_tokend_file_system_type(directory)
            guard found >= 0 else {
                return "cannot tell the file system of \(directory): \(String(cString: strerror(errno)))"
            }
            let type = UInt(found)
            if type != tmpfsMagic && type != ramfsMagic {
                return "the sink \(sink.path) is not on tmpfs or ramfs: the token would reach a disk;"
                    + " put it under /run (or set allow_persistent_storage = true to accept that)"
            }
        }
        var file = stat()
        if lstat(sink.path, &file) == 0, file.st_mode & S_IFMT == S_IFDIR {
            return "the sink \(sink.path) is a directory"
        }
        return nil
    }
}
