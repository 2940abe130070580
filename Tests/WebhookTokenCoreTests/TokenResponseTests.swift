import Testing
import WebhookTokenCore

private let requestedScope = "*:webhooks/**"

private func interpret(
    status: Int = 200, contentType: String? = "application/json", retryAfter: String? = nil, location: String? = nil,
    _ body: String
) -> Result<IssuedToken, FetchFailure> {
    TokenResponse.interpret(
        status: status, contentType: contentType, retryAfter: retryAfter, location: location, body: Array(body.utf8),
        requestedScope: requestedScope)
}

private func failureOf(_ result: Result<IssuedToken, FetchFailure>, sourceLocation: SourceLocation = #_sourceLocation)
    -> FetchFailure?
{
    switch result {
    case .success(let token):
        Issue.record("expected a failure, got \(token)", sourceLocation: sourceLocation)
        return nil
    case .failure(let failure):
        return failure
    }
}

@Suite struct TokenResponseTests {
    // MARK: - Tokens

    @Test(arguments: ["Bearer", "bearer", "BEARER"])
    func successWithABearerTokenIsIssued(tokenType: String) throws {
        let token = try interpret(
            #"{"access_token":"abc.DEF-123_~+/=","token_type":"\#(tokenType)","expires_in":3600}"#
        ).get()
        #expect(token.accessToken == "abc.DEF-123_~+/=")
        #expect(token.tokenType == "Bearer")
        #expect(token.lifetime == .seconds(3600))
        #expect(token.scope == requestedScope)
        #expect(token.fingerprint == String(SHA256.hexDigest(Array("abc.DEF-123_~+/=".utf8)).prefix(8)))
        #expect(!token.description.contains("abc.DEF"))
    }

    @Test func grantedScopeThatContainsTheRequestedOneIsKept() throws {
        let token = try interpret(
            #"{"access_token":"t","token_type":"Bearer","expires_in":60,"scope":"read:x *:webhooks/**"}"#
        ).get()
        #expect(token.scope == "read:x *:webhooks/**")
    }

    /// Identity Cloud answers a scope its token policy lacks with a token that has no scope.
    @Test(arguments: [#""""#, #""read:webhooks""#, #""*:webhooks""#])
    func grantedScopeWithoutEveryRequestedValueIsRefusedPermanently(granted: String) throws {
        let failure = try #require(
            failureOf(
                interpret(
                    #"{"access_token":"t","token_type":"Bearer","expires_in":60,"scope":\#(granted)}"#)))
        #expect(failure.kind == .insufficientScope)
        #expect(failure.kind.rawValue == "insufficient_scope")
        #expect(failure.isPermanent)
        #expect(failure.detail.contains(#"the requested scope "*:webhooks/**""#))
        #expect(failure.remedy?.contains("allowedScopes") == true)
        #expect(failure.remedy?.contains("*:webhooks/**") == true)
    }

    @Test func everyRequestedScopeValueMustBeGranted() {
        #expect(TokenResponse.missingScopeValues(requested: "a b c", granted: "c a") == ["b"])
        #expect(TokenResponse.missingScopeValues(requested: "a  b", granted: "b a extra") == [])
    }

    @Test func grantedScopeIsStoredAsBoundedPrintableText() throws {
        let long = String(repeating: "s", count: 3000)
        let token = try interpret(
            #"{"access_token":"t","token_type":"Bearer","expires_in":60,"scope":"*:webhooks/** \u001b[2J \#(long)"}"#
        ).get()
        #expect(token.scope.hasPrefix(#"*:webhooks/** \x1b[2J ss"#))
        #expect(token.scope.utf8.count <= TokenResponse.maximumScopeLength + 3)
        #expect(token.scope.hasSuffix("..."))
    }

    @Test(arguments: ["application/json; charset=utf-8", "Application/JSON", "application/problem+json", nil])
    func jsonContentTypesAndAMissingOneAreAccepted(contentType: String?) throws {
        let token = try interpret(
            contentType: contentType, #"{"access_token":"t","token_type":"Bearer","expires_in":60}"#
        ).get()
        #expect(token.accessToken == "t")
    }

    @Test(arguments: [
        ("86400", Duration.seconds(86400)), ("1", .seconds(1)), ("3600.0", .seconds(3600)),
        ("1.5", .seconds(1)),
    ])
    func numericExpiresInIsTheLifetimeInWholeSecondsRoundedDown(expiresIn: String, lifetime: Duration) throws {
        let token = try interpret(#"{"access_token":"t","token_type":"Bearer","expires_in":\#(expiresIn)}"#).get()
        #expect(token.lifetime == lifetime)
    }

    // MARK: - Unusable successes

    @Test(arguments: [
        (#"{"access_token":"t","token_type":"Bearer"}"#, "without expires_in"),
        (
            #"{"access_token":"t","token_type":"Bearer","expires_in":0}"#,
            "with expires_in 0.0, which is not a positive number of seconds"
        ),
        (
            #"{"access_token":"t","token_type":"Bearer","expires_in":-5}"#,
            "with expires_in -5.0, which is not a positive number of seconds"
        ),
        (
            #"{"access_token":"t","token_type":"Bearer","expires_in":0.5}"#,
            "with expires_in 0.5, which is not a positive number of seconds"
        ),
        (
            #"{"access_token":"t","token_type":"Bearer","expires_in":"3600"}"#,
            #"with expires_in as the string "3600" instead of a number"#
        ),
        (#"{"access_token":"t","token_type":"Bearer","expires_in":null}"#, "without expires_in"),
        (#"{"access_token":"t","token_type":"Bearer","expires_in":[3600]}"#, "with an expires_in that is not a number"),
        (
            #"{"access_token":"t","token_type":"Bearer","expires_in":1e12}"#,
            "with expires_in 1000000000000.0, which is not a positive number of seconds"
        ),
        (#"{"access_token":"t","token_type":"mac","expires_in":3600}"#, #"with token_type "mac" instead of Bearer"#),
        (#"{"access_token":"t","expires_in":3600}"#, "without token_type"),
        (#"{"access_token":"t","token_type":1,"expires_in":3600}"#, "with a token_type that is not a string"),
        (#"{"token_type":"Bearer","expires_in":3600}"#, "without access_token"),
        (#"{"access_token":42,"token_type":"Bearer","expires_in":3600}"#, "with an access_token that is not a string"),
        (
            #"{"access_token":"two words","token_type":"Bearer","expires_in":3600}"#,
            "with an access_token that is empty, too long, or not printable ASCII"
        ),
        (
            #"{"access_token":"","token_type":"Bearer","expires_in":3600}"#,
            "with an access_token that is empty, too long, or not printable ASCII"
        ),
        (
            #"{"access_token":"t\n","token_type":"Bearer","expires_in":3600}"#,
            "with an access_token that is empty, too long, or not printable ASCII"
        ),
        (
            #"{"access_token":"tö","token_type":"Bearer","expires_in":3600}"#,
            "with an access_token that is empty, too long, or not printable ASCII"
        ),
        ("<html>oops</html>", "with a body that is not a JSON object"),
        (#"["access_token"]"#, "with a body that is not a JSON object"),
        ("", "with an empty body"),
    ])
    func unusableSuccessIsATransientInvalidResponse(body: String, why: String) throws {
        let failure = try #require(failureOf(interpret(body)))
        #expect(failure.kind == .invalidResponse)
        #expect(failure.severity == .transient)
        #expect(failure.httpStatus == 200)
        #expect(failure.detail == "endpoint answered 200 but \(why)")
    }

    @Test func htmlContentTypeIsAnInvalidResponseEvenWithAJSONBody() throws {
        let failure = try #require(
            failureOf(
                interpret(
                    contentType: "text/html; charset=utf-8",
                    #"{"access_token":"t","token_type":"Bearer","expires_in":60}"#)))
        #expect(failure.kind == .invalidResponse)
        #expect(failure.severity == .transient)
        #expect(
            failure.detail == #"endpoint answered 200 but with content type "text/html" instead of application/json"#)
    }

    @Test func oversizedBodyIsRefusedAsTooLarge() throws {
        let padding = String(repeating: " ", count: TokenResponse.maximumBodySize)
        let failure = try #require(
            failureOf(interpret(#"{"access_token":"t","token_type":"Bearer","expires_in":60}"# + padding)))
        #expect(failure.kind == .responseTooLarge)
        #expect(failure.severity == .transient)
    }

    @Test func overlongTokenIsRefused() throws {
        let long = String(repeating: "a", count: TokenResponse.maximumTokenLength + 1)
        let failure = try #require(
            failureOf(interpret(#"{"access_token":"\#(long)","token_type":"Bearer","expires_in":60}"#)))
        #expect(failure.kind == .invalidResponse)
        let longest = String(repeating: "a", count: TokenResponse.maximumTokenLength)
        #expect(
            try interpret(#"{"access_token":"\#(longest)","token_type":"Bearer","expires_in":60}"#).get().accessToken
                == longest)
    }

    // MARK: - Errors

    @Test func invalidClientIsPermanentAndKeepsTheOAuthError() throws {
        let failure = try #require(
            failureOf(
                interpret(
                    status: 401, #"{"error":"invalid_client","error_description":"Client authentication failed"}"#)))
        #expect(failure.kind == .rejected)
        #expect(failure.severity == .permanent)
        #expect(failure.isPermanent)
        #expect(failure.httpStatus == 401)
        #expect(failure.oauthError == "invalid_client")
        #expect(failure.oauthErrorDescription == "Client authentication failed")
        #expect(failure.description == "endpoint answered 401 (invalid_client: Client authentication failed)")
        #expect(failure.remedy == "check client_id and the client secret")
    }

    @Test func invalidScopeIsPermanent() throws {
        let failure = try #require(failureOf(interpret(status: 400, #"{"error":"invalid_scope"}"#)))
        #expect(failure.severity == .permanent)
        #expect(failure.oauthError == "invalid_scope")
        #expect(failure.oauthErrorDescription == nil)
        #expect(failure.remedy == "check scope in [endpoint] and the token policy's allowedScopes")
    }

    /// Observed stopping the service for good: a proxy's or WAF's HTML 403, a 404 during a
    /// deploy, and `400 temporarily_unavailable`. None says the credentials are wrong.
    @Test(arguments: [
        (403, "text/html", "<html>Forbidden by policy</html>"), (404, "text/html", "<html>Not Found</html>"),
        (400, "application/json", #"{"error":"temporarily_unavailable"}"#),
        (400, "application/json", #"{"error":"some_vendor_code"}"#), (403, "application/json", "{}"),
        (400, "text/plain", "invalid_client"), (418, "application/json", "[]"),
    ])
    func errorsThatDoNotBlameTheCredentialsAreTransient(status: Int, contentType: String, body: String) throws {
        let failure = try #require(failureOf(interpret(status: status, contentType: contentType, body)))
        #expect(failure.severity == .transient, "\(failure)")
        #expect(failure.remedy == nil)
        #expect(failure.kind == (body.contains("temporarily_unavailable") ? .serverError : .unexpectedStatus))
    }

    @Test(arguments: [
        "invalid_client", "unauthorized_client", "invalid_grant", "unsupported_grant_type", "invalid_scope",
        "invalid_request",
    ])
    func theRFC6749CodesThatBlameTheRequestArePermanent(code: String) throws {
        let failure = try #require(failureOf(interpret(status: 400, #"{"error":"\#(code)"}"#)))
        #expect(failure.isPermanent)
        #expect(failure.kind == .rejected)
    }

    @Test func unauthorizedIsPermanentWithOrWithoutABody() throws {
        let failure = try #require(failureOf(interpret(status: 401, contentType: "text/html", "")))
        #expect(failure.isPermanent)
        #expect(failure.remedy == "check the [endpoint] and [credentials] configuration")
    }

    @Test func errorDescriptionIsBoundedAndItsControlCharactersVisible() throws {
        let failure = try #require(
            failureOf(
                interpret(status: 401, #"{"error":"invalid_client","error_description":"bad\nsecret\u001b[31m é"}"#)))
        #expect(failure.oauthErrorDescription == #"bad\x0asecret\x1b[31m \u{e9}"#)
        let long = try #require(
            failureOf(
                interpret(
                    status: 401,
                    #"{"error":"invalid_client","error_description":"\#(String(repeating: "x", count: 5000))"}"#)))
        #expect(long.oauthErrorDescription?.utf8.count == UntrustedText.defaultLimit + 3)
    }

    @Test func serverErrorIsTransient() throws {
        let failure = try #require(failureOf(interpret(status: 500, #"{"error":"server_error"}"#)))
        #expect(failure.kind == .serverError)
        #expect(failure.severity == .transient)
        #expect(failure.oauthError == "server_error")
        #expect(failure.retryAfter == nil)
        #expect(failure.remedy == nil)
    }

    @Test func serviceUnavailableHonoursRetryAfter() throws {
        let failure = try #require(failureOf(interpret(status: 503, retryAfter: "7", "")))
        #expect(failure.kind == .serverError)
        #expect(failure.severity == .transient)
        #expect(failure.retryAfter == .seconds(7))
        #expect(failure.description == "endpoint answered 503")
    }

    @Test func tooManyRequestsIsATransientRateLimit() throws {
        let failure = try #require(failureOf(interpret(status: 429, retryAfter: " 30 ", "slow down")))
        #expect(failure.kind == .rateLimited)
        #expect(failure.kind.rawValue == "rate_limited")
        #expect(failure.severity == .transient)
        #expect(failure.retryAfter == .seconds(30))
    }

    @Test func requestTimeoutIsATransientTimeout() throws {
        let failure = try #require(failureOf(interpret(status: 408, "")))
        #expect(failure.kind == .timeout)
        #expect(failure.severity == .transient)
    }

    @Test(arguments: ["Wed, 21 Oct 2026 07:28:00 GMT", "-1", "soon", ""])
    func retryAfterThatIsNotDeltaSecondsIsIgnored(value: String) throws {
        #expect(TokenResponse.parseRetryAfter(value) == nil)
        let failure = try #require(failureOf(interpret(status: 503, retryAfter: value, "")))
        #expect(failure.retryAfter == nil)
    }

    @Test func redirectIsTransientAndNotFollowed() throws {
        let failure = try #require(
            failureOf(
                interpret(status: 302, contentType: "text/html", location: "https://login.example.com/\u{1b}[2J", "")))
        #expect(failure.kind == .redirect)
        #expect(failure.severity == .transient)
        #expect(failure.httpStatus == 302)
        #expect(
            failure.detail
                == #"endpoint answered 302 with a redirect to https://login.example.com/\x1b[2J; redirects are not followed (set token_url to the final URL)"#
        )
    }
}
