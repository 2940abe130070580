#if canImport(Glibc)
    import Glibc
#endif

/// User and group names to ids, through the system's databases (NSS: files, and LDAP, SSSD or
/// systemd-userdb where configured).
///
/// "No such name" and "the lookup failed" are different answers: at boot, before the network or
/// an LDAP server is up, a lookup can fail for a name that exists. That must be retried, never
/// reported as a missing user or group (which is a configuration error, exit 78, no restart).
public enum AccountLookup {
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case unknownUser(String)
        case unknownGroup(String)
        /// The database could not be asked: NSS down, out of descriptors, …
        case lookupFailed(kind: String, name: String, errno: Int32)

        public var description: String {
            switch self {
            case .unknownUser(let name): return "the user \"\(name)\" does not exist on this host"
            case .unknownGroup(let name): return "the group \"\(name)\" does not exist on this host"
            case .lookupFailed(let kind, let name, let code):
                return "looking up the \(kind) \"\(name)\" failed: \(String(cString: strerror(code))) (will be retried)"
            }
        }

        /// Whether retrying later can help.
        public var isTransient: Bool {
            if case .lookupFailed = self { return true }
            return false
        }
    }

    public static func userID(named name: String) throws(Problem) -> UInt32 {
        if let id = UInt32(name) { return id }
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var size = 16_384
        while true {
            var buffer = [CChar](repeating: 0, count: size)
            let code = getpwnam_r(name, &entry, &buffer, buffer.count, &found)
            if code == ERANGE, size < 1 << 20 {
                size *= 4
                continue
            }
            if let found { return UInt32(found.pointee.pw_uid) }
            if isNotFound(code) { throw .unknownUser(name) }
            throw .lookupFailed(kind: "user", name: name, errno: code)
        }
    }

    public static func groupID(named name: String) throws(Problem) -> UInt32 {
        if let id = UInt32(name) { return id }
        var entry = group()
        var found: UnsafeMutablePointer<group>?
        var size = 16_384
        while true {
            var buffer = [CChar](repeating: 0, count: size)
            let code = getgrnam_r(name, &entry, &buffer, buffer.count, &found)
            if code == ERANGE, size < 1 << 20 {
                size *= 4
                continue
            }
            if let found { return UInt32(found.pointee.gr_gid) }
            if isNotFound(code) { throw .unknownGroup(name) }
            throw .lookupFailed(kind: "group", name: name, errno: code)
        }
    }

    /// getpwnam_r(3): "0 or ENOENT or ESRCH or EBADF or EPERM or ..." all mean the name was not
    /// found; anything else is a failure to look.
    private static func isNotFound(_ code: Int32) -> Bool {
        code == 0 || code == ENOENT || code == ESRCH || code == EBADF || code == EPERM
    }
}
