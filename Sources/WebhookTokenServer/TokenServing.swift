public import WebhookTokenCore
public import WebhookTokenProtocol

/// What the socket server asks of the token broker. The server knows HTTP; the broker knows tokens.
public protocol TokenServing: Sendable {
    /// The token to hand out now, or why there is none. Called on the event loop for every
    /// `GET /v1/token`: must not block, must not wait for I/O.
    func currentToken() -> TokenAnswer

    /// Whether the very first token request is in flight: a consumer asking now will have a token
    /// in moments (this is the socket-activation case, where the first consumer starts the daemon).
    var isAwaitingFirstToken: Bool { get }

    /// Waits for the outcome of the first token request, then answers like ``currentToken()``.
    func firstToken() async -> TokenAnswer

    /// Fetches a new token now (rate-limited globally and per peer user, single-flight), for a
    /// consumer whose API call was rejected, and answers with the result.
    func refreshToken(peerUID: UInt32?) async -> TokenAnswer

    /// The broker's status as JSON (`/v1/status`).
    func statusJSON() -> String

    /// The broker's status for people (`/v1/status?format=text`).
    func statusText() -> String

    /// Prometheus text exposition (`/metrics`).
    func metricsText() -> String

    /// The server is stopping: answer every consumer still waiting for a token (`shutting_down`)
    /// so that their connections can finish, and answer later waits at once.
    func shutdown()
}

/// The answer to "give me the token".
public enum TokenAnswer: Sendable {
    /// The token, and — for a refresh that brought no new one — why not.
    case token(PresentedToken, secondsLeft: Int64, refresh: RefreshNote? = nil)
    /// No token (`no_valid_token`, or `shutting_down`): a sentence saying why, and when to ask again.
    case unavailable(code: ErrorCode, detail: String, retryAfterSeconds: Int)

    /// Why a refresh answered the current token rather than a new one, sent in the
    /// `X-Webhook-Tokend-Refresh` header: `rate_limited`, `backing_off`, or the failed fetch's
    /// error code with its (sanitised) detail.
    public struct RefreshNote: Sendable, Equatable {
        public var code: String
        public var detail: String?

        public init(code: String, detail: String?) {
            self.code = code
            self.detail = detail
        }

        var headerValue: String {
            guard let detail else { return code }
            return "\(code); \(UntrustedText.sanitize(detail))"
        }
    }
}
