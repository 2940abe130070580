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
                return "systemd passed \(count) sockets; webhook-tokend expects exactly one (one ListenStream= in the .socket unit)"
            case .notAUnixStreamListener(let fd):
                return "the socket systemd passed (fd \(fd)) is not a listening Unix stream socket; use ListenStream=/path in the .socket unit"
            case .failed(let code):
                return "reading the sockets passed by systemd failed: \(String(cString: strerror(code)))"
            }
        }
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
