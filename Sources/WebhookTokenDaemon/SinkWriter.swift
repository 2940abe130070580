import Logging
import Synchronization
import WebhookTokenCore

#if canImport(Glibc)
    import Glibc
#endif

/// Writes one `[[sink]]` file: the token, in its format, whenever the served token changes.
///
/// A reader never sees a partial or empty file, nor a token that is no longer servable: the
/// file is written under a temporary name in the same directory — created exclusively, without
/// following links, with its final group and mode before any byte of the token — synced, and
/// renamed over the sink (which replaces a link planted there instead of following it). A
/// renewal that brings the same token does not touch the file (inode and mtime stay), so that
/// watchers reload only for a new token. The file is removed when the token stops being
/// servable and when the daemon stops.
final class SinkWriter: Sendable {
    let sink: Configuration.Sink
    private let groupID: UInt32?
    private let logger: Logger
    /// The fingerprint of the token in the file, `nil` when there is no file.
    private let written = Mutex<String?>(nil)

    init(sink: Configuration.Sink, groupID: UInt32?, logger: Logger) {
        self.sink = sink
        self.groupID = groupID
        self.logger = logger
    }

    /// Writes `token` unless the file already holds it.
    func write(_ token: PresentedToken, epochSeconds: Int64) {
        guard written.withLock({ $0 }) != token.fingerprint else { return }
        guard let contents = Self.contents(of: token, format: sink.format, epochSeconds: epochSeconds) else {
            logger.error(
                "Cannot write the token in the env format: it contains a single quote; use another format",
                metadata: ["sink.path": "\(sink.path)", "token.fingerprint": "\(token.fingerprint)"])
            remove()
            return
        }
        do {
            try replaceAtomically(with: contents)
            written.withLock { $0 = token.fingerprint }
            logger.debug(
                "Wrote the token sink",
                metadata: ["sink.path": "\(sink.path)", "token.fingerprint": "\(token.fingerprint)"])
        } catch {
            logger.error("Failed to write the token sink: \(error)", metadata: ["sink.path": "\(sink.path)"])
        }
    }

    /// Removes the file (the token is no longer servable, or the daemon stops).
    func remove() {
        written.withLock { $0 = nil }
        if unlink(sink.path) == 0 {
            logger.debug("Removed the token sink", metadata: ["sink.path": "\(sink.path)"])
        } else if errno != ENOENT {
            logger.error(
                "Failed to remove the token sink: \(String(cString: strerror(errno)))",
                metadata: ["sink.path": "\(sink.path)"])
        }
    }

    /// The bytes of the file. `env` quotes the token for `sh`'s `.` and systemd's
    /// `EnvironmentFile=` (single quotes, which neither expands); a token with a single quote
    /// in it cannot be written so (`nil`).
    static func contents(of token: PresentedToken, format: Configuration.Sink.Format, epochSeconds: Int64) -> [UInt8]? {
        switch format {
        case .raw:
            return token.raw + [0x0A]
        case .header:
            return Array("Authorization: Bearer ".utf8) + token.raw + [0x0A]
        case .json:
            return Array(token.json(secondsLeft: max(0, token.expiresAtEpochSeconds - epochSeconds)).utf8)
        case .env:
            guard !token.raw.contains(UInt8(ascii: "'")) else { return nil }
            return Array("WEBHOOK_TOKEN='".utf8) + token.raw
                + Array(
                    "'\nWEBHOOK_TOKEN_EXPIRES_AT='\(RFC3339.format(epochSeconds: token.expiresAtEpochSeconds))'\n".utf8)
        }
    }

    struct WriteError: Error, CustomStringConvertible {
        let call: String
        let path: String
        let code: Int32
        var description: String { "\(call) \(path): \(String(cString: strerror(code)))" }
    }

    private func replaceAtomically(with contents: [UInt8]) throws(WriteError) {
        let path = sink.path
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) ?? path.utf8.startIndex
        let directory = String(path[..<slash]).isEmpty ? "/" : String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        let temporary = "\(directory)/.\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WriteError(call: "open", path: temporary, code: errno) }
        func fail(_ call: String) -> WriteError {
            let error = WriteError(call: call, path: temporary, code: errno)
            close(fd)
            unlink(temporary)
            return error
        }
        if let groupID, fchown(fd, uid_t.max, gid_t(groupID)) != 0 { throw fail("fchown") }
        guard fchmod(fd, mode_t(sink.mode)) == 0 else { throw fail("fchmod") }
        var offset = 0
        while offset < contents.count {
            let count = contents[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw fail("write") }
            offset += count
        }
        guard fsync(fd) == 0 else { throw fail("fsync") }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = WriteError(call: "rename", path: path, code: errno)
            unlink(temporary)
            throw error
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}
