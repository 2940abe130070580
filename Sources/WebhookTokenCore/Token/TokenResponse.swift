#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Reads the token endpoint's answer: a token, or a classified ``FetchFailure``.
///
/// The endpoint is trusted to say how long its token lives, and for nothing else: the body must be
/// a JSON object of bounded size with a usable `access_token`, a positive numeric `expires_in` and
/// a `Bearer` `token_type`; anything else is `invalid_response`, never a token.
public enum TokenResponse {
    /// Bodies larger than this are refused (and the I/O layer stops reading at this size).
    public static let maximumBodySize = 64 * 1024
    /// Tokens longer than this are refused: they end up in consumers' HTTP headers.
    public static let maximumTokenLength = 16 * 1024

    /// OAuth error codes that say the credentials or the request are wrong (RFC 6749 §5.2): no
    /// retry can fix them, and they are the only answers besides a 401 that count as permanent.
    public static let permanentOAuthErrors: Set<String> = [
        "invalid_client", "invalid_scope", "invalid_request", "unauthorized_client", "unsupported_grant_type",
        "invalid_grant",
    ]

    /// The longest scope kept from an answer; longer ones are cut (visibly) before they are stored.
    public static let maximumScopeLength = 1024

    /// Classifies the endpoint's answer.
    ///
    /// Permanent means "the credentials or the request are wrong", and nothing else: a 401 (with
    /// or without a body), or a 4xx whose JSON body carries one of ``permanentOAuthErrors``.
    /// Everything else — a proxy's HTML 403, a 404 during a deploy, `temporarily_unavailable`,
    /// redirects, 5xx — is transient and retried with backoff, because the endpoint may heal
    /// without anyone touching the configuration, and a permanent failure on the first fetch stops
    /// the daemon for good.
    public static func interpret(
        status: Int, contentType: String?, retryAfter: String?, location: String? = nil, body: [UInt8],
        requestedScope: String
    ) -> Result<IssuedToken, FetchFailure> {
        let retryAfterDuration = retryAfter.flatMap(parseRetryAfter)
        switch status {
        case 200..<300:
            return parseSuccess(contentType: contentType, body: body, requestedScope: requestedScope, status: status)
        case 300..<400:
            let target = location.map { " to \(UntrustedText.sanitize($0))" } ?? ""
            return .failure(
                FetchFailure(
                    kind: .redirect, severity: .transient, httpStatus: status, retryAfter: retryAfterDuration,
                    detail: "endpoint answered \(status) with a redirect\(target); redirects are not followed "
                        + "(set token_url to the final URL)"))
        case 429:
            return .failure(
                FetchFailure(
                    kind: .rateLimited, severity: .transient, httpStatus: status, retryAfter: retryAfterDuration,
                    detail: "endpoint answered 429 Too Many Requests"))
        case 408, 500..<600:
            let (error, description) = oauthError(in: body)
            return .failure(
                FetchFailure(
                    kind: status == 408 ? .timeout : .serverError, severity: .transient, httpStatus: status,
                    oauthError: error, oauthErrorDescription: description, retryAfter: retryAfterDuration,
                    detail: "endpoint answered \(status)"))
        default:
            let (error, description) = oauthError(in: body)
            let permanent =
                status == 401 || (status >= 400 && status < 500 && error.map(permanentOAuthErrors.contains) == true)
            let kind: FetchFailure.Kind
            if permanent {
                kind = .rejected
            } else if error == "temporarily_unavailable" || error == "server_error" {
                kind = .serverError
            } else {
                kind = .unexpectedStatus
            }
            return .failure(
                FetchFailure(
                    kind: kind, severity: permanent ? .permanent : .transient, httpStatus: status, oauthError: error,
                    oauthErrorDescription: description, retryAfter: retryAfterDuration,
                    detail: "endpoint answered \(status)"))
        }
    }

    /// `Retry-After` in delta-seconds (the HTTP-date form is not used by token endpoints and is ignored).
    public static func parseRetryAfter(_ value: String) -> Duration? {
        let trimmed = value.trimmingSpaces
        guard let seconds = Int64(trimmed), seconds >= 0 else { return nil }
        return .seconds(seconds)
    }

    private struct SuccessBody: Decodable {
        let accessToken: Field<String>?
        let tokenType: Field<String>?
        let expiresIn: Lifetime?
        let scope: Field<String>?

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case tokenType = "token_type"
            case expiresIn = "expires_in"
            case scope
        }
    }

    /// A field that records a wrong type instead of failing the whole decode.
    private enum Field<Value: Decodable>: Decodable {
        case value(Value)
        case wrongType

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Value.self) {
                self = .value(value)
            } else {
                self = .wrongType
            }
        }
    }

    /// `expires_in`, which must be a JSON number: `"3600"` (a string) is what a broken proxy or a
    /// careless endpoint sends, and is refused rather than guessed at.
    private enum Lifetime: Decodable {
        case seconds(Double)
        case string(String)
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                self = .seconds(number)
            } else if let text = try? container.decode(String.self) {
                self = .string(text)
            } else {
                self = .other
            }
        }
    }

    private static func parseSuccess(contentType: String?, body: [UInt8], requestedScope: String, status: Int)
        -> Result<IssuedToken, FetchFailure>
    {
        func invalid(_ why: String) -> Result<IssuedToken, FetchFailure> {
            .failure(
                FetchFailure(
                    kind: .invalidResponse, severity: .transient, httpStatus: status,
                    detail: "endpoint answered \(status) but \(why)"))
        }
        if let contentType {
            let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters().lowercased() } ?? ""
            if mediaType != "application/json" && !mediaType.hasSuffix("+json") {
                return invalid(
                    "with content type \"\(UntrustedText.sanitize(mediaType, limit: 80))\" instead of application/json")
            }
        }
        guard body.count <= maximumBodySize else {
            return .failure(
                FetchFailure(
                    kind: .responseTooLarge, severity: .transient, httpStatus: status,
                    detail: "endpoint answered \(status) with a body over \(maximumBodySize) bytes"))
        }
        let decoded: SuccessBody
        do {
            decoded = try JSONDecoder().decode(SuccessBody.self, from: Data(body))
        } catch {
            return invalid(body.isEmpty ? "with an empty body" : "with a body that is not a JSON object")
        }
        guard case .value(let accessToken)? = decoded.accessToken else {
            return invalid(
                decoded.accessToken == nil ? "without access_token" : "with an access_token that is not a string")
        }
        guard !accessToken.isEmpty, accessToken.utf8.count <= maximumTokenLength,
            accessToken.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else {
            return invalid("with an access_token that is empty, too long, or not printable ASCII")
        }
        switch decoded.tokenType {
        case .value(let type)? where type.lowercased() == "bearer":
            break
        case .value(let type)?:
            return invalid("with token_type \"\(UntrustedText.sanitize(type, limit: 40))\" instead of Bearer")
        case .wrongType?:
            return invalid("with a token_type that is not a string")
        case nil:
            return invalid("without token_type")
        }
        let lifetime: Duration
        switch decoded.expiresIn {
        case .seconds(let seconds)?:
            guard seconds.isFinite, seconds >= 1, seconds <= 10 * 365 * 86_400 else {
                return invalid("with expires_in \(seconds), which is not a positive number of seconds")
            }
            lifetime = .seconds(Int64(seconds))
        case .string(let text)?:
            return invalid(
                "with expires_in as the string \"\(UntrustedText.sanitize(text, limit: 40))\" instead of a number")
        case .other?:
            return invalid("with an expires_in that is not a number")
        case nil:
            return invalid("without expires_in")
        }
        var scope = requestedScope
        if case .value(let granted)? = decoded.scope {
            // RFC 6749 §5.1: present means "this is what was granted" — even when it is empty,
            // which is how Identity Cloud answers a scope its token policy lacks: a token that can
            // do nothing. Absent means "what you asked for".
            let missing = missingScopeValues(requested: requestedScope, granted: granted)
            if !missing.isEmpty {
                return .failure(insufficientScope(requested: requestedScope, granted: granted, status: status))
            }
            scope = UntrustedText.sanitize(granted, limit: maximumScopeLength)
        }
        return .success(IssuedToken(accessToken: accessToken, lifetime: lifetime, scope: scope))
    }

    /// The requested scope values (space-separated, RFC 6749 §3.3) that `granted` lacks.
    public static func missingScopeValues(requested: String, granted: String) -> [Substring] {
        let grantedValues = Set(granted.split(separator: " "))
        return requested.split(separator: " ").filter { !grantedValues.contains($0) }
    }

    private static func insufficientScope(requested: String, granted: String, status: Int) -> FetchFailure {
        let shownGranted = granted.isEmpty ? "no scope" : "\"\(UntrustedText.sanitize(granted))\""
        return FetchFailure(
            kind: .insufficientScope, severity: .permanent, httpStatus: status,
            detail: "endpoint granted \(shownGranted) for the requested scope \"\(requested)\"; the token is refused",
            remedy: "add \"\(requested)\" to the allowedScopes of this client's token policy, "
                + "or set scope in [endpoint] to what the policy allows")
    }

    private struct ErrorBody: Decodable {
        let error: String?
        let errorDescription: String?
        enum CodingKeys: String, CodingKey {
            case error
            case errorDescription = "error_description"
        }
    }

    /// The OAuth `error` and `error_description` of an error body, when it is the usual JSON object.
    static func oauthError(in body: [UInt8]) -> (String?, String?) {
        guard !body.isEmpty, body.count <= maximumBodySize,
            let decoded = try? JSONDecoder().decode(ErrorBody.self, from: Data(body))
        else { return (nil, nil) }
        func clean(_ text: String?, limit: Int) -> String? {
            guard let text, !text.isEmpty else { return nil }
            return UntrustedText.sanitize(text, limit: limit)
        }
        return (clean(decoded.error, limit: 64), clean(decoded.errorDescription, limit: UntrustedText.defaultLimit))
    }
}
