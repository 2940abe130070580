import Foundation
import Testing
import TokenEndpointEmulator
import WebhookTokenCore
import WebhookTokenEndpoint

/// The token request against a real HTTPS endpoint on loopback, verified with a throwaway CA.
@Suite("Token endpoint client over HTTPS")
struct TokenEndpointClientTests {
    static let clientID = "client:one"
    static let secret = "p@ss+w/rd=&?#% ü"

    /// Runs `body` with a fresh HTTPS emulator and a client trusting `caFile` (the test CA if nil).
    func withEndpoint(
        expiresIn: Int = 3600, timeout: Duration = .seconds(2), caFile: String? = nil,
        _ body: (TokenEndpointEmulator, TokenEndpointClient, Configuration.Endpoint) async throws -> Void
    ) async throws {
        let certificates = await TestCertificates.shared
        let emulator = TokenEndpointEmulator(
            options: .init(
                clientID: Self.clientID, clientSecret: Self.secret, expiresIn: expiresIn,
                tls: (certificates.serverCertificate, certificates.serverKey)))
        let port = try await emulator.start()
        let client = try TokenEndpointClient(caFile: caFile ?? certificates.caCertificate, timeout: timeout)
        let endpoint = Configuration.Endpoint(
            tokenURL: try TokenURL(baseURL: "https://127.0.0.1:\(port)", customerID: "tenant"), timeout: timeout)
        do {
            try await body(emulator, client, endpoint)
        } catch {
            await emulator.shutdown()
            throw error
        }
        await emulator.shutdown()
    }

    func fetch(_ client: TokenEndpointClient, _ endpoint: Configuration.Endpoint, secret: String = secret) async
        -> Result<IssuedToken, FetchFailure>
    {
        await client.fetch(
            TokenRequest(endpoint: endpoint, clientID: Self.clientID, secret: ClientSecret(secret)),
            scope: endpoint.scope)
    }

    @Test func obtainsATokenWithFormEncodedBasicCredentials() async throws {
        try await withEndpoint { emulator, client, endpoint in
            let result = await fetch(client, endpoint)
            let token = try result.get()
            #expect(emulator.issuedTokens.map(\.token) == [token.accessToken])
            #expect(token.lifetime == .seconds(3600))
            #expect(token.scope == "*:webhooks/**")
            #expect(emulator.lastRequestedScope == "*:webhooks/**")
        }
    }

    @Test func wrongSecretIsPermanentInvalidClient() async throws {
        try await withEndpoint { _, client, endpoint in
            let failure = try #require(await fetch(client, endpoint, secret: "wrong").failureValue)
            #expect(failure.severity == .permanent)
            #expect(failure.httpStatus == 401)
            #expect(failure.oauthError == "invalid_client")
            #expect(failure.oauthErrorDescription == "Client authentication failed")
            #expect(failure.remedy == "check client_id and the client secret")
        }
    }

    @Test func forbiddenScopeIsPermanentInvalidScope() async throws {
        try await withEndpoint { _, client, endpoint in
            var scoped = endpoint
            scoped.scope = "forbidden:scope"
            let failure = try #require(await fetch(client, scoped).failureValue)
            #expect(failure.severity == .permanent)
            #expect(failure.httpStatus == 400)
            #expect(failure.oauthError == "invalid_scope")
        }
    }

    @Test func serverErrorIsTransient() async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(.respond(status: 500, headers: [], body: "{}"))
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.severity == .transient)
            #expect(failure.kind == .serverError, "\(failure)")
            #expect(failure.httpStatus == 500)
        }
    }

    @Test func tooManyRequestsHonoursRetryAfter() async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(.respond(status: 429, headers: [.init("Retry-After", "17")], body: ""))
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .rateLimited, "\(failure)")
            #expect(failure.severity == .transient)
            #expect(failure.retryAfter == .seconds(17))
        }
    }

    @Test func hangingEndpointTimesOut() async throws {
        try await withEndpoint(timeout: .milliseconds(500)) { emulator, client, endpoint in
            emulator.setBehavior(.hang)
            let started = ContinuousClock.now
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .timeout, "\(failure)")
            #expect(failure.severity == .transient)
            // A hang never ends by itself: returning at all proves the timeout; the bound is a
            // sanity check that no much longer limit ended it. The time includes this task's wait
            // for a thread of the cooperative pool: ≈ 0.7 s alone, 0.7–1.7 s in the whole suite on
            // two busy cores (8–16 s when tests blocked the pool's threads on process waits).
            #expect(started.duration(to: .now) < .seconds(8))
            // The abandoned request's connection is closed when the fetch returns: the endpoint
            // sees it go (allowing for a loaded machine's scheduling).
            try await eventually(timeout: .seconds(1), "the abandoned connection to close") {
                emulator.concurrentRequests == 0
            }
        }
    }

    @Test func dripFeedingEndpointTimesOut() async throws {
        try await withEndpoint(timeout: .milliseconds(500)) { emulator, client, endpoint in
            emulator.setBehavior(.drip(interval: .milliseconds(100)))
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .timeout, "\(failure)")
        }
    }

    @Test func refusedConnectionIsTransient() async throws {
        // A port that was just free: bind, note, close.
        let emulator = TokenEndpointEmulator(options: .init(clientID: "x", clientSecret: "y"))
        let port = try await emulator.start()
        await emulator.shutdown()
        let client = try TokenEndpointClient(caFile: await TestCertificates.shared.caCertificate, timeout: .seconds(2))
        let endpoint = Configuration.Endpoint(tokenURL: try TokenURL(parsing: "https://127.0.0.1:\(port)/t"))
        let failure = try #require(await fetch(client, endpoint).failureValue)
        #expect(failure.kind == .connectionRefused, "\(failure)")
        #expect(failure.severity == .transient)
    }

    @Test func resetMidResponseIsTransient() async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(.resetMidResponse)
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.severity == .transient)
            #expect([.connectionReset, .network].contains(failure.kind), "\(failure)")
        }
    }

    @Test func garbageSuccessIsInvalidResponse() async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(.respond(status: 200, headers: [], body: "<html>hello</html>"))
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .invalidResponse, "\(failure)")
            #expect(failure.severity == .transient)
        }
    }

    @Test func oversizedBodyIsRefused() async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(.oversized)
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .responseTooLarge, "\(failure)")
        }
    }

    @Test(arguments: [nil, "0", "-5", "\"3600\"", "\"soon\"", "null"])
    func unusableExpiresInIsRefused(raw: String?) async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(.issueWithExpiresIn(raw))
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .invalidResponse, "\(failure)")
            #expect(failure.detail.contains("expires_in"))
        }
    }

    @Test func nonBearerTokenTypeIsRefused() async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(
                .respond(status: 200, headers: [], body: #"{"access_token":"abc","token_type":"mac","expires_in":60}"#))
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .invalidResponse, "\(failure)")
            #expect(failure.detail.contains("mac"))
        }
    }

    @Test func redirectIsNotFollowed() async throws {
        try await withEndpoint { emulator, client, endpoint in
            emulator.setBehavior(
                .respond(status: 302, headers: [.init("Location", "https://elsewhere.example/token")], body: ""))
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .redirect, "\(failure)")
            #expect(failure.severity == .transient, "a redirect can be a deploy in progress: retried, not fatal")
            #expect(emulator.requestCount == 1)
        }
    }

    @Test func untrustedCertificateFailsTheHandshake() async throws {
        let unrelated = await TestCertificates.shared.unrelatedCACertificate
        try await withEndpoint(caFile: unrelated) { emulator, client, endpoint in
            let failure = try #require(await fetch(client, endpoint).failureValue)
            #expect(failure.kind == .tls, "\(failure)")
            #expect(emulator.requestCount == 0)
        }
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
