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
            return try fetch(method: "GET", path: SocketProtocol.tokenPath(profile: command.profile), plainQuery: "format=raw")
        case .refresh:
            return try fetch(
                method: "POST", path: SocketProtocol.refreshPath(profile: command.profile), plainQuery: "format=raw")
        case .status:
            return try fetch(method: "GET", path: SocketProtocol.statusPath, plainQuery: "format=text")
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
