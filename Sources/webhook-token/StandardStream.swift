import Glibc

/// Writes whole buffers to a file descriptor with write(2), retrying after EINTR and partial writes.
enum StandardStream {
    /// Writes all of `bytes` to `descriptor`; returns the errno of the failure, or nil on success.
    static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Int32? {
        bytes.withUnsafeBytes { buffer -> Int32? in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return written < 0 ? errno : EIO
                }
            }
            return nil
        }
    }

    /// Prints `webhook-token: <message>` on standard error, best effort.
    static func reportError(_ message: String) {
        _ = writeAll(Array("webhook-token: \(message)\n".utf8), to: STDERR_FILENO)
    }

    /// A message on standard error that does not change the outcome.
    static func reportWarning(_ message: String) {
        _ = writeAll(Array("webhook-token: warning: \(message)\n".utf8), to: STDERR_FILENO)
    }
}
