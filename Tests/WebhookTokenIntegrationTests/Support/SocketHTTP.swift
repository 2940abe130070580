import Foundation

/// A deliberately simple blocking HTTP/1.1 client over a Unix socket, for the tests: it speaks
/// exactly what consumers send, lets a test hold many connections or send broken requests, and
/// shares no code with the daemon or the `webhook-token` client it checks.
///
/// Used by one thread at a time; a test hands it to a thread of its own (``onOwnThread(_:)``) for
/// a read that waits on the daemon, so that the wait holds no thread of the cooperative pool.
final class SocketConnection: @unchecked Sendable {
    /// The socket; `-1` once closed. (A throwing class initializer still runs `deinit`, so the
    /// error path must not close it too: a double close can close another thread's new socket.)
    private(set) var fd: Int32 = -1
    private var buffer: [UInt8] = []

    struct Response {
        let status: Int
        let headers: [String: String]
        let body: String

        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    init(path: String, timeout: Duration = .seconds(10)) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1)) + [0]
            raw.copyBytes(from: bytes)
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            fd = -1
            throw TestFailure("connect(\(path)) failed: \(String(cString: strerror(code)))")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestFailure("send failed: \(String(cString: strerror(errno)))") }
            bytes = bytes.dropFirst(written)
        }
    }

    func request(_ method: String, _ target: String, headers: [String: String] = [:], keepAlive: Bool = true) throws
        -> Response
    {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if method == "POST" && headers["Content-Length"] == nil { text += "Content-Length: 0\r\n" }
        if !keepAlive { text += "Connection: close\r\n" }
        text += "\r\n"
        try send(text)
        return try readResponse()
    }

    /// Reads one response (Content-Length framed, as the daemon always sends).
    func readResponse() throws -> Response {
        while true {
            if let end = headerEnd() {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
                    throw TestFailure("bad status line in \(head)")
                }
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                        in: .whitespaces)
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                while buffer.count < end + 4 + length {
                    guard try fill() else { throw TestFailure("connection closed mid-body") }
                }
                let body = String(decoding: buffer[(end + 4)..<(end + 4 + length)], as: UTF8.self)
                buffer.removeFirst(end + 4 + length)
                return Response(status: status, headers: headers, body: body)
            }
            guard try fill() else { throw TestFailure("connection closed before a response") }
        }
    }

    /// Whether the peer has closed the connection (reads EOF within `timeout`).
    func isClosedByPeer() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 1024)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count == 0 || (count < 0 && errno == ECONNRESET)
    }

    private func headerEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 { throw TestFailure("recv failed: \(String(cString: strerror(errno)))") }
        if count == 0 { return false }
        buffer += chunk[..<count]
        return true
    }
}

/// One request on a fresh connection. It blocks until the daemon answers, which is at once for
/// most requests; for one the daemon holds open, use ``socketRequestOnOwnThread(_:_:_:headers:)``.
func socketRequest(_ path: String, _ method: String = "GET", _ target: String, headers: [String: String] = [:]) throws
    -> SocketConnection.Response
{
    try SocketConnection(path: path).request(method, target, headers: headers, keepAlive: false)
}

/// ``socketRequest(_:_:_:headers:)`` on a thread of its own, for a request the daemon holds open
/// for a fetch or longer — a token before the first fetch has ended, a refresh, a long-poll, a
/// proxied request to a hanging upstream — so that the wait holds no thread of Swift's
/// cooperative pool.
func socketRequestOnOwnThread(
    _ path: String, _ method: String = "GET", _ target: String, headers: [String: String] = [:]
) async throws -> SocketConnection.Response {
    try await onOwnThread { try socketRequest(path, method, target, headers: headers) }
}

/// The `access_token` of a token JSON body.
func accessToken(in json: String) -> String? {
    guard let data = json.data(using: .utf8),
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return nil }
    return object["access_token"] as? String
}

func jsonObject(_ text: String) -> [String: Any]? {
    guard let data = text.data(using: .utf8) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}
