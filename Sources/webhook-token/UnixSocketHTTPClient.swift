import Glibc

/// One HTTP/1.1 exchange with the daemon over its Unix domain socket, with blocking system calls
/// bounded by a single overall deadline (SO_SNDTIMEO for connect and send, SO_RCVTIMEO for receive).
struct UnixSocketHTTPClient {
    let socketPath: String
    let timeoutSeconds: Double

    /// The most the client will buffer; the daemon's answers are a few hundred bytes.
    static let maximumResponseBytes = 1 << 20

    private var daemon: String { "the token daemon at \(socketPath)" }

    /// Sends `method target` with `Connection: close` and returns the complete response.
    func perform(method: String, target: String) throws(ClientFailure) -> HTTPResponse {
        let deadline = Deadline(secondsFromNow: timeoutSeconds)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw ClientFailure(.unavailable, "cannot create a Unix socket: \(describe(errno))")
        }
        defer { close(descriptor) }

        try connect(descriptor, deadline: deadline)
        var request = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n"
        request += "User-Agent: webhook-token/\(ClientCommand.version)\r\nAccept: */*\r\n"
        if method == "POST" { request += "Content-Length: 0\r\n" }
        request += "Connection: close\r\n\r\n"
        try send(Array(request.utf8), on: descriptor, deadline: deadline)
        return try receiveResponse(on: descriptor, deadline: deadline)
    }

    // MARK: - Connect

    private func connect(_ descriptor: Int32, deadline: Deadline) throws(ClientFailure) {
        try setTimeout(SO_SNDTIMEO, on: descriptor, deadline: deadline)

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)  // the parser guarantees it fits with its NUL
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }

        var result: Int32
        repeat {
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        } while result != 0 && errno == EINTR
        if result != 0 {
            throw connectFailure(errno)
        }
    }

    private func connectFailure(_ error: Int32) -> ClientFailure {
        let unreachable = "cannot reach the token daemon at \(socketPath)"
        let checkDaemon = "is webhook-tokend running? see systemctl status webhook-tokend"
        let checkPath = "check --socket and \(ClientCommand.socketEnvironmentVariable)"
        switch error {
        case ENOENT:
            return ClientFailure(.unavailable, "\(unreachable): no such file (\(checkDaemon))")
        case ENOTDIR:
            return ClientFailure(.unavailable, "\(unreachable): a parent of the path is not a directory (\(checkPath))")
        case ECONNREFUSED, ENOTSOCK:
            if case .notASocket = SocketPathInspector(path: socketPath).kind {
                return ClientFailure(.unavailable, "\(unreachable): the path is not a socket (\(checkPath))")
            }
            return ClientFailure(
                .unavailable,
                "\(unreachable): connection refused; nothing is listening on the socket (\(checkDaemon))")
        case EACCES, EPERM:
            return permissionFailure(error)
        case EAGAIN, EINPROGRESS, ETIMEDOUT:
            return ClientFailure(
                .unavailable,
                "\(daemon) did not accept the connection within \(DisplayText.seconds(timeoutSeconds)) s "
                    + "(it may be overloaded or hung; see systemctl status webhook-tokend, or raise --timeout)")
        default:
            return ClientFailure(.unavailable, "\(unreachable): \(describe(error)) (\(checkDaemon))")
        }
    }

    private func permissionFailure(_ error: Int32) -> ClientFailure {
        let denied = "permission denied connecting to the token daemon at \(socketPath)"
        let inspector = SocketPathInspector(path: socketPath)
        if case .unknown(let statError) = inspector.kind, statError == EACCES {
            return ClientFailure(
                .permissionDenied,
                "\(denied): a directory on the path is not accessible to this user "
                    + "(ask the administrator for access, or check --socket)")
        }
        if let permissions = inspector.permissions, permissions & 0o020 == 0 {
            let octal = String(permissions, radix: 8)
            let mode = String(repeating: "0", count: max(0, 4 - octal.count)) + octal
            return ClientFailure(
                .permissionDenied,
                "\(denied): the socket's mode \(mode) does not let its group connect "
                    + "(ask the administrator to check webhook-tokend's socket settings)")
        }
        if let group = inspector.groupName {
            return ClientFailure(
                .permissionDenied,
                "\(denied) (the socket belongs to group '\(group)': add this user to it, "
                    + "e.g. sudo usermod -aG \(group) \"$USER\", then log in again)")
        }
        return ClientFailure(
            .permissionDenied,
            "\(denied): \(describe(error)) (ask the administrator to add this user to the socket's group)")
    }

    // MARK: - Send and receive

    private func send(_ bytes: [UInt8], on descriptor: Int32, deadline: Deadline) throws(ClientFailure) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            let error = errno
            switch error {
            case EINTR:
                try setTimeout(SO_SNDTIMEO, on: descriptor, deadline: deadline)
            case EAGAIN, EWOULDBLOCK:
                throw timeoutFailure()
            case EPIPE, ECONNRESET:
                throw ClientFailure(
                    .unavailable,
                    "\(daemon) closed the connection before the request was sent "
                        + "(see journalctl -u webhook-tokend)")
            default:
                throw ClientFailure(.unavailable, "cannot send the request to \(daemon): \(describe(error))")
            }
        }
    }

    private func receiveResponse(on descriptor: Int32, deadline: Deadline) throws(ClientFailure) -> HTTPResponse {
        var buffer: [UInt8] = []
        var head: HTTPResponseHead?
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)

        while true {
            // Parse as much as has arrived: a head (skipping any 1xx interim responses), then the body.
            while head == nil {
                do {
                    guard let parsed = try HTTPResponseParser.parseHead(buffer) else { break }
                    if (100..<200).contains(parsed.status) {
                        buffer.removeFirst(parsed.byteCount)
                        continue
                    }
                    head = parsed
                } catch {
                    throw malformedFailure(error.reason)
                }
            }
            if let head, let length = head.contentLength, buffer.count - head.byteCount >= length {
                return response(head, body: Array(buffer[head.byteCount..<(head.byteCount + length)]))
            }
            if buffer.count > Self.maximumResponseBytes {
                throw malformedFailure("the response is larger than \(Self.maximumResponseBytes) bytes")
            }

            try setTimeout(SO_RCVTIMEO, on: descriptor, deadline: deadline)
            let received = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress!, $0.count, 0) }
            if received > 0 {
                buffer.append(contentsOf: chunk[0..<received])
                continue
            }
            if received < 0 {
                let error = errno
                switch error {
                case EINTR:
                    continue
                case EAGAIN, EWOULDBLOCK:
                    throw timeoutFailure()
                case ECONNRESET where buffer.isEmpty:
                    throw closedWithoutResponse()
                default:
                    throw ClientFailure(.unavailable, "cannot read the answer from \(daemon): \(describe(error))")
                }
            }

            // End of stream.
            guard let head else {
                if buffer.isEmpty { throw closedWithoutResponse() }
                throw malformedFailure("the connection closed in the middle of the response headers")
            }
            let bodyCount = buffer.count - head.byteCount
            if let length = head.contentLength {
                throw malformedFailure("the connection closed after \(bodyCount) of \(length) body bytes")
            }
            return response(head, body: Array(buffer[head.byteCount...]))
        }
    }

    private func response(_ head: HTTPResponseHead, body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: head.status, reason: head.reason, headers: head.headers, body: body)
    }

    // MARK: - Helpers

    private func setTimeout(_ option: Int32, on descriptor: Int32, deadline: Deadline) throws(ClientFailure) {
        guard var time = deadline.remainingTimeval() else { throw timeoutFailure() }
        _ = setsockopt(descriptor, SOL_SOCKET, option, &time, socklen_t(MemoryLayout<timeval>.size))
    }

    private func timeoutFailure() -> ClientFailure {
        ClientFailure(
            .unavailable,
            "\(daemon) did not answer within \(DisplayText.seconds(timeoutSeconds)) s "
                + "(it may be hung; see systemctl status webhook-tokend, or raise --timeout)")
    }

    private func closedWithoutResponse() -> ClientFailure {
        ClientFailure(
            .unavailable,
            "\(daemon) closed the connection without a response (see journalctl -u webhook-tokend)")
    }

    private func malformedFailure(_ reason: String) -> ClientFailure {
        ClientFailure(
            .unavailable,
            "\(daemon) sent a malformed response: \(reason) "
                + "(is something other than webhook-tokend listening on that socket?)")
    }

    private func describe(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
