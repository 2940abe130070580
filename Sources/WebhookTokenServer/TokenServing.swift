public import WebhookTokenCore
public import WebhookTokenProtocol

/// What the socket server asks of the daemon: the profiles, their status and metrics. The server
/// knows HTTP; the daemon knows tokens.
public protocol TokenServing: Sendable {
    /// The profile a request names, or — for `nil`, the `/v1/token` routes — the profile
    /// "default", or the only one. Called on the event loop for every token request: cheap.
    func profile(named name: Substring?) -> ProfileLookup

    /// The status of every profile as JSON (`/v1/status`).
    func statusJSON() -> String

    /// The same for people (`/v1/status?format=text`).
    func statusText() -> String

    /// Prometheus text exposition (`/metrics`).
    func metricsText() -> String

    /// The server is stopping: answer every consumer still waiting for a token (`shutting_down`)
    /// so that their connections can finish, and answer later waits at once.
    func shutdown()
}

/// The outcome of looking up a profile.
public enum ProfileLookup: Sendable {
    case found(any ProfileServing)
    /// No profile of that name; the names there are.
    case unknown(available: [String])
    /// `/v1/token` with several profiles and none named "default"; the names there are.
    case unnamed(available: [String])
}

/// One profile's token, as the socket serves it.
public protocol ProfileServing: Sendable {
    var name: String { get }

    /// The token to hand out now, or why there is none. Called on the event loop: must not block.
    func currentToken() -> TokenAnswer

    /// Whether the very first token request is in flight: a consumer asking now will have a token
    /// in moments (this is the socket-activation case, where the first consumer starts the daemon).
    var isAwaitingFirstToken: Bool { get }

    /// Waits for the outcome of the first token request, then answers like ``currentToken()``.
    func firstToken() async -> TokenAnswer

    /// Fetches a new token now (rate-limited globally and per peer user, single-flight), for a
    /// consumer whose API call was rejected, and answers with the result.
    func refreshToken(peerUID: UInt32?) async -> TokenAnswer

    /// Answers when the served token's fingerprint is not `fingerprint` — at once if it already
    /// is not — or after `maxWait` with whatever is current (`?after=FP&wait=S`).
    func waitForChange(after fingerprint: Substring, maxWait: Duration) async -> TokenAnswer
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
