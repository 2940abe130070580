import Foundation

/// A datagram socket standing in for systemd's notification socket: the daemon, given its name in
/// `NOTIFY_SOCKET`, sends `READY=1`, `STATUS=…` and the like to it, as it would to systemd.
final class NotifySocket: @unchecked Sendable {
    /// `-1` once closed: a throwing class initializer still runs `deinit` (no double close).
    private(set) var fd: Int32 = -1
    /// The value for `NOTIFY_SOCKET`: a path, or `@name` for the abstract namespace.
    let address: String
    private let lock = NSLock()
    private var received: [String] = []

    /// Binds at `path` (a file-system socket), or in the abstract namespace when it starts with `@`.
    init(address: String) throws {
        self.address = address
        fd = socket(
            AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract: a leading NUL, no terminator
        let length = withUnsafeMutableBytes(of: &storage.sun_path) { raw -> Int in
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
            return MemoryLayout<sa_family_t>.size + min(bytes.count, raw.count - 1)
        }
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            fd = -1
            throw TestFailure("bind(\(address)) failed: \(String(cString: strerror(code)))")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Every datagram received so far, in order.
    var messages: [String] {
        drain()
        return lock.withLock { received }
    }

    /// The messages that set `key` (e.g. `"READY"`), each as its `KEY=value` lines.
    func messages(with key: String) -> [[String: String]] {
        messages.map(Self.fields).filter { $0[key] != nil }
    }

    /// Waits for the first message (after `index`) that contains `key`; returns it and its index.
    func wait(for key: String, after index: Int = -1, timeout: Duration = .seconds(10)) async throws -> (
        index: Int, fields: [String: String]
    ) {
        var found: (Int, [String: String])?
        try await eventually(timeout: timeout, "\(key)= on \(address)") {
            for (position, message) in self.messages.enumerated() where position > index {
                let fields = Self.fields(message)
                if fields[key] != nil {
                    found = (position, fields)
                    return true
                }
            }
            return false
        }
        return found!
    }

    static func fields(_ message: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in message.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return fields
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            let message = String(decoding: buffer[..<count], as: UTF8.self)
            lock.withLock { received.append(message) }
        }
    }
}
