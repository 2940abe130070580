/// The stable machine codes of the socket API's errors: the `error` field of every error body and
/// the `X-Webhook-Tokend-Error` header. Shared by the daemon and the client, so that the client's
/// messages and exit codes cannot drift from what the daemon sends.
public enum ErrorCode: String, Sendable, CaseIterable {
    /// No token with enough life left (503, with `Retry-After`).
    case noValidToken = "no_valid_token"
    /// The daemon is stopping (503).
    case shuttingDown = "shutting_down"
    /// The connecting user is not allowed by `[access]` (403).
    case peerNotAllowed = "peer_not_allowed"
    /// Too many open connections, in all or from this user (503, with `Retry-After`).
    case tooManyConnections = "too_many_connections"
    case notFound = "not_found"
    /// `/v1/tokens/NAME` for a profile the daemon does not have (404).
    case unknownProfile = "unknown_profile"
    /// `/v1/token` on a daemon with several profiles and none named "default" (404): the detail
    /// lists the names.
    case profileRequired = "profile_required"
    case methodNotAllowed = "method_not_allowed"
    case bodyNotAccepted = "body_not_accepted"
    case requestHeadTooLarge = "request_head_too_large"
    case requestTimeout = "request_timeout"
    case badRequest = "bad_request"

    // The authenticating proxy's own answers, so that a consumer can tell them from the API's.

    /// A path outside the proxy's `allowed_path_prefixes` (403).
    case pathNotAllowed = "path_not_allowed"
    /// An absolute-form or authority-form request target: the proxy goes to its upstream only (400).
    case targetNotAllowed = "target_not_allowed"
    /// The upstream could not be reached: refused, reset, TLS or name resolution (502).
    case upstreamUnreachable = "upstream_unreachable"
    /// The upstream did not answer within the proxy's `timeout` (504).
    case upstreamTimeout = "upstream_timeout"
}

/// Response headers of the socket API beyond HTTP's own.
public enum ProtocolHeader {
    /// On every error answer: its ``ErrorCode``, so a client need not parse the body.
    public static let error = "X-Webhook-Tokend-Error"
    /// On a `POST /v1/token/refresh` answered with the current token rather than a new one: why
    /// (`rate_limited`, `backing_off`, or the failed fetch's error code and detail).
    public static let refresh = "X-Webhook-Tokend-Refresh"
    /// On every token answer: the token's fingerprint (the first 8 hex digits of its SHA-256), to
    /// long-poll against with `?after=` and to tell tokens apart without comparing them.
    public static let fingerprint = "X-Webhook-Tokend-Fingerprint"
}
