import Glibc

/// Looks at the socket path after a failed connect(2) to explain the failure better.
/// Only runs on error paths, so its cost (stat, group database) does not matter.
struct SocketPathInspector {
    enum Kind {
        case socket
        case notASocket
        /// stat(2) itself failed with this errno.
        case unknown(Int32)
    }

    let kind: Kind
    /// The name (or number) of the group owning the path, if stat(2) worked.
    let groupName: String?
    /// The permission bits of the path, if stat(2) worked.
    let permissions: UInt32?

    init(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            kind = .unknown(errno)
            groupName = nil
            permissions = nil
            return
        }
        permissions = UInt32(info.st_mode & 0o7777)
        kind = (info.st_mode & 0o170000) == 0o140000 ? .socket : .notASocket
        if let group = getgrgid(info.st_gid), let name = group.pointee.gr_name {
            groupName = String(cString: name)
        } else {
            groupName = String(info.st_gid)
        }
    }
}
