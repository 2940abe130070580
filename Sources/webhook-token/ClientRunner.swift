import Glibc
import WebhookTokenProtocol

/// Carries out a parsed command against the daemon and produces what goes to standard output.
struct ClientRunner {
    let command: ClientCommand

    /// The bytes to print, or the failure to report.
    func run() throws(ClientFailure) -> [UInt8] {
        switch command.action {
        case .help:
            return Array(ClientCommand.usageText.utf8)
        case .version:
            return Array("webhook-token \(ClientCommand.version)\n".utf8)
        case .token:
            return try fetch(
                method: "GET", path: SocketProtocol.tokenPath(profile: command.profile), plainQuery: "format=raw")
        case .refresh:
            return try fetch(
                method: "POST", path: SocketProtocol.refreshPath(profile: command.profile), plainQuery: "format=raw")
        case .status where command.quiet:
            // "Servable" is exactly what GET /v1/token answers 200 to; the token itself is dropped.
            _ = try fetch(
                method: "GET", path: SocketProtocol.tokenPath(profile: command.profile), plainQuery: "format=raw")
            return []
        case .status:
            return try fetch(method: "GET", path: SocketProtocol.statusPath, plainQuery: "format=text")
        case .watch:
            try watch()
            return []
        }
    }

    private func fetch(method: String, path: String, plainQuery: String) throws(ClientFailure) -> [UInt8] {
        let client = UnixSocketHTTPClient(socketPath: command.socketPath, timeoutSeconds: command.timeoutSeconds)
        let target = command.output == .json ? path : "\(path)?\(plainQuery)"
        let response = try client.perform(method: method, target: target)
        guard response.status == 200 else {
            throw DaemonErrorResponse(response).failure(socketPath: command.socketPath)
        }

        if command.action == .refresh, let note = response.header(ProtocolHeader.refresh) {
            StandardStream.reportWarning("no new token: \(DisplayText.sanitized(note)); printing the current one")
        }
        switch (command.action, command.output) {
        case (.status, _), (_, .json):
            return withTrailingNewline(DisplayText.filteredOutput(response.body))
        case (_, .header):
            return Array("Authorization: Bearer ".utf8) + (try token(from: response.body)) + [0x0A]
        case (_, .plain):
            return (try token(from: response.body)) + [0x0A]
        }
    }

    /// `watch`: long-polls the daemon (`?after=FINGERPRINT&wait=300`) and prints each new token
    /// as one line the moment it is served. While the daemon is unreachable (restarting) or has
    /// no token, it retries with a doubling delay up to 5 s; a refusal (403, no such profile) ends
    /// it. Ends quietly when the reader of its output goes away.
    private func watch() throws(ClientFailure) {
        let path = SocketProtocol.tokenPath(profile: command.profile)
        let form = command.output == .json ? "format=json" : "format=raw"
        var fingerprint: String?
        var delay = 0.5
        while true {
            let query = fingerprint.map { "\(form)&after=\($0)&wait=\(Self.watchWaitSeconds)" } ?? form
            let timeout =
                fingerprint == nil ? command.timeoutSeconds : Double(Self.watchWaitSeconds) + command.timeoutSeconds
            let client = UnixSocketHTTPClient(socketPath: command.socketPath, timeoutSeconds: timeout)
            let response: HTTPResponse
            do {
                response = try client.perform(method: "GET", target: "\(path)?\(query)")
            } catch  where error.exitCode == .unavailable {
                Self.pause(&delay)
                continue
            }
            switch response.status {
            case 200:
                delay = 0.5
                let current = response.header(ProtocolHeader.fingerprint)
                guard current != fingerprint || current == nil else { continue }
                fingerprint = current
                let line: [UInt8]
                switch command.output {
                case .json: line = withTrailingNewline(response.body)
                case .header: line = Array("Authorization: Bearer ".utf8) + (try token(from: response.body)) + [0x0A]
                case .plain: line = (try token(from: response.body)) + [0x0A]
                }
                if let error = StandardStream.writeAll(line, to: STDOUT_FILENO) {
                    if error == EPIPE { return }
                    throw ClientFailure(
                        .ioError, "cannot write to standard output: \(String(cString: strerror(error)))")
                }
            case 503:
                Self.pause(&delay)
            default:
                throw DaemonErrorResponse(response).failure(socketPath: command.socketPath)
            }
        }
    }

    /// How long one long-poll of `watch` asks the daemon to hold it.
    static let watchWaitSeconds = 300

    private static func pause(_ delay: inout Double) {
        usleep(UInt32(delay * 1_000_000))
        delay = min(delay * 2, 5)
    }

    /// The bare token from a `format=raw` body. A trailing line end is tolerated; anything that
    /// would corrupt an HTTP header (whitespace, control characters) is refused, without echoing it.
    private func token(from body: [UInt8]) throws(ClientFailure) -> [UInt8] {
        var token = body[...]
        if token.last == 0x0A { token.removeLast() }
        if token.last == 0x0D { token.removeLast() }
        let malformed = "the token daemon at \(command.socketPath) sent a malformed response"
        guard !token.isEmpty else {
            throw ClientFailure(.unavailable, "\(malformed): the token is empty (see journalctl -u webhook-tokend)")
        }
        guard token.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw ClientFailure(
                .unavailable,
                "\(malformed): the token contains whitespace or control characters "
                    + "(is something other than webhook-tokend listening on that socket?)")
        }
        return Array(token)
    }

    private func withTrailingNewline(_ body: [UInt8]) -> [UInt8] {
        body.last == 0x0A || body.isEmpty ? body : body + [0x0A]
    }
}
