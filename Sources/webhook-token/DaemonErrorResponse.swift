import WebhookTokenProtocol

/// A non-200 answer from the daemon, turned into an exit status and an actionable message.
///
/// The daemon's error documents are `{"error":"<stable_code>","detail":"<sentence>"}`, and the
/// code is also in the `X-Webhook-Tokend-Error` header, which is where it is read from (the body's
/// `error` only for an older daemon); only the code and the detail are shown (sanitised), never
/// the raw body.
struct DaemonErrorResponse {
    let status: Int
    let reason: String
    let code: String?
    let detail: String?
    let retryAfter: String?

    init(_ response: HTTPResponse) {
        status = response.status
        reason = DisplayText.sanitized(response.reason, limit: 60)
        code = (response.header(ProtocolHeader.error) ?? JSONStringField.value(of: "error", in: response.body))
            .map { DisplayText.sanitized($0, limit: 60) }
        detail = JSONStringField.value(of: "detail", in: response.body).map { DisplayText.sanitized($0) }
        retryAfter = response.header("Retry-After").map { DisplayText.sanitized($0, limit: 40) }
    }

    func failure(socketPath: String) -> ClientFailure {
        var explanation = ""
        if let detail, !detail.isEmpty { explanation += ": \(detail)" }
        if let code, !code.isEmpty { explanation += " [\(code)]" }
        let retry = retryAfter.map { " in \($0) s" } ?? " later"

        switch (status, code.flatMap(ErrorCode.init(rawValue:))) {
        case (503, .tooManyConnections):
            return ClientFailure(
                .temporaryFailure,
                "the token daemon is serving too many connections\(explanation) "
                    + "(retry\(retry); if this user keeps many connections open, close idle ones)")
        case (503, .shuttingDown):
            return ClientFailure(
                .temporaryFailure, "the token daemon is stopping\(explanation) (retry\(retry), once it is back)")
        case (503, _):
            return ClientFailure(
                .temporaryFailure,
                "no valid token is available right now\(explanation) "
                    + "(retry\(retry); see webhook-token status)")
        case (404, .unknownProfile), (404, .profileRequired):
            return ClientFailure(
                .usage,
                "the token daemon has no such profile\(explanation) (use --profile NAME or $WEBHOOK_TOKEN_PROFILE)")
        case (403, _):
            return ClientFailure(
                .permissionDenied,
                "the token daemon refused this process\(explanation) "
                    + "(ask the administrator to allow this user or group in webhook-tokend's configuration)")
        case (404, _), (405, _):
            return ClientFailure(
                .unavailable,
                "the token daemon at \(socketPath) answered HTTP \(status) \(reason)\(explanation) "
                    + "(webhook-token \(ClientCommand.version) and the daemon may be incompatible versions)")
        case (429, _):
            return ClientFailure(
                .unavailable,
                "the token daemon at \(socketPath) answered HTTP 429 \(reason)\(explanation) (retry\(retry))")
        default:
            return ClientFailure(
                .unavailable,
                "the token daemon at \(socketPath) answered unexpected HTTP \(status) \(reason)\(explanation) "
                    + "(see journalctl -u webhook-tokend)")
        }
    }
}
