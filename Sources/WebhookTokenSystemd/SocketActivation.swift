import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// systemd socket activation: the listening socket passed in `LISTEN_FDS`.
public enum SocketActivation {
    public enum Problem: Error, CustomStringConvertible {
        case tooManyDescriptors(Int)
        case notAUnixStreamListener(fd: CInt)
        case failed(errno: Int32)

        public var description: String {
            switch self {
            case .tooManyDescriptors(let count):
                return "systemd passed \(count) sockets and none is bound to [socket] path; with [proxy] sockets, each "
                    + "ListenStream= must name the path of the token socket or of a proxy"
            case .notAUnixStreamListener(let fd):
                return
                    "the socket systemd passed (fd \(fd)) is not a listening Unix stream socket; use ListenStream=/path in the .socket unit"
            case .failed(let code):
                return "reading the sockets passed by systemd failed: \(String(cString: strerror(code)))"
            }
        }
    }

    /// Every passed listening socket, in the order of the `.socket` unit's `ListenStream=` lines;
    /// empty when not socket-activated. The token socket and each `[proxy]` socket are told apart
    /// by the path they are bound to (``descriptor(boundTo:among:)``). The environment variables
    /// are removed, so that child processes do not inherit them.
    public static func listeningSockets() throws(Problem) -> [CInt] {
        let count = sd_listen_fds(1)
        if count < 0 { throw .failed(errno: -count) }
        let descriptors = (0..<count).map { SD_LISTEN_FDS_START + $0 }
        for fd in descriptors where sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) <= 0 {
            throw .notAUnixStreamListener(fd: fd)
        }
        return descriptors
    }

    /// The one of `descriptors` that is a listening Unix stream socket bound to `path`.
    public static func descriptor(boundTo path: String, among descriptors: [CInt]) -> CInt? {
        descriptors.first { sd_is_socket_unix($0, Int32(SOCK_STREAM.rawValue), 1, path, 0) > 0 }
    }

    /// The passed listening socket, `nil` when not socket-activated (no `LISTEN_FDS` for our PID).
    /// The environment variables are removed, so that child processes do not inherit them.
    public static func listeningSocket() throws(Problem) -> CInt? {
        let count = sd_listen_fds(1)
        if count < 0 { throw .failed(errno: -count) }
        if count == 0 { return nil }
        if count > 1 { throw .tooManyDescriptors(Int(count)) }
        let fd = SD_LISTEN_FDS_START
        guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw .notAUnixStreamListener(fd: fd)
        }
        return fd
    }
}
