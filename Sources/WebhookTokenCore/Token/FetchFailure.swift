/// Why a token request failed, and whether retrying can help before someone changes the configuration.
public struct FetchFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Transient failures heal by themselves (an outage, a rate limit); permanent ones need a
    /// person (a wrong secret, a revoked client, a wrong URL) and are reported loudly.
    public enum Severity: String, Sendable {
        case transient
        case permanent
    }

    /// Stable machine codes, used in status JSON, logs and journald's `ERROR_CODE=`.
    public enum Kind: String, Sendable {
        case connectionRefused = "connection_refused"
        case connectionReset = "connection_reset"
        case timeout
        case nameResolution = "name_resolution"
        case tls = "tls_error"
        case network = "network_error"
        case rateLimited = "rate_limited"
        case serverError = "server_error"
        case invalidResponse = "invalid_response"
        case responseTooLarge = "response_too_large"
        case redirect
        /// A 4xx answer without an OAuth error code that says the request or client is wrong
        /// (a proxy's HTML 403, a 404 during a deploy, `temporarily_unavailable`): transient.
        case unexpectedStatus = "unexpected_status"
        /// The endpoint refused the credentials or the request (RFC 6749 §5.2 code, or 401): permanent.
        case rejected = "rejected"
        /// The endpoint granted a token without every requested scope value: permanent.
        case insufficientScope = "insufficient_scope"
        case credentialsUnavailable = "credentials_unavailable"
    }

    public var kind: Kind
    public var severity: Severity
    /// The HTTP status, when the endpoint answered.
    public var httpStatus: Int?
    /// The endpoint's OAuth `error` code (`invalid_client`, …), when it gave one.
    public var oauthError: String?
    /// The endpoint's `error_description`, when it gave one.
    public var oauthErrorDescription: String?
    /// How long the endpoint asked us to wait (`Retry-After`), when it did.
    public var retryAfter: Duration?
    /// A sentence saying what happened, for people.
    public var detail: String
    /// What to do about it, when the classification alone cannot say (``remedy`` otherwise).
    private var specificRemedy: String?

    public init(
        kind: Kind, severity: Severity, httpStatus: Int? = nil, oauthError: String? = nil,
        oauthErrorDescription: String? = nil, retryAfter: Duration? = nil, detail: String, remedy: String? = nil
    ) {
        self.specificRemedy = remedy
        self.kind = kind
        self.severity = severity
        self.httpStatus = httpStatus
        self.oauthError = oauthError
        self.oauthErrorDescription = oauthErrorDescription
        self.retryAfter = retryAfter
        self.detail = detail
    }

    public var isPermanent: Bool { severity == .permanent }

    /// One line: what the endpoint said, or what went wrong on the way to it.
    public var description: String {
        var text = detail
        if let oauthError {
            text += " (\(oauthError)"
            if let oauthErrorDescription, !oauthErrorDescription.isEmpty { text += ": \(oauthErrorDescription)" }
            text += ")"
        }
        return text
    }

    /// What an operator should do about a permanent failure.
    public var remedy: String? {
        guard isPermanent else { return nil }
        if let specificRemedy { return specificRemedy }
        switch oauthError {
        case "invalid_client", "unauthorized_client":
            return "check client_id and the client secret"
        case "invalid_scope":
            return "check scope in [endpoint] and the token policy's allowedScopes"
        case "invalid_grant", "unsupported_grant_type":
            return "the endpoint does not grant client_credentials to this client; check the client's configuration"
        default:
            if httpStatus == 404 { return "check token_url (or base_url and customer_id)" }
            if kind == .redirect { return "set token_url to the final URL" }
            if kind == .credentialsUnavailable { return "check the client secret source" }
            return "check the [endpoint] and [credentials] configuration"
        }
    }
}
