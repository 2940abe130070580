import Testing
import WebhookTokenCore

/// RFC 6749 §2.3.1: client id and secret are each form-urlencoded, *then* joined with `:` and base64ed.
@Suite struct BasicAuthorizationTests {
    // Fully hand-computed vectors, checked with `printf '%s' 'my-client:s3cr%2B%2F%3D' | base64`.
    @Test func encodesPlusSlashAndEqualsBeforeBase64() {
        #expect(
            TokenRequest.basicAuthorization(clientID: "my-client", secret: ClientSecret("s3cr+/="))
                == "Basic bXktY2xpZW50OnMzY3IlMkIlMkYlM0Q=")
    }

    // `printf '%s' 'client%3A1:p%C3%A9+x%26y' | base64`
    @Test func encodesColonInTheClientIDAndSpaceAndNonASCIIInTheSecret() {
        #expect(
            TokenRequest.basicAuthorization(clientID: "client:1", secret: ClientSecret("pé x&y"))
                == "Basic Y2xpZW50JTNBMTpwJUMzJUE5K3glMjZ5")
    }

    /// Secrets and their form-urlencoding per the WHATWG URL standard (§5.2): everything but
    /// `A–Z a–z 0–9 * - . _` is percent-encoded as UTF-8, and a space becomes `+`.
    @Test(arguments: [
        ("a+b", "a%2Bb"),
        ("a/b", "a%2Fb"),
        ("a=b", "a%3Db"),
        ("a:b", "a%3Ab"),
        ("100%", "100%25"),
        ("a&b", "a%26b"),
        ("why?", "why%3F"),
        ("#1", "%231"),
        ("two words", "two+words"),
        ("é", "%C3%A9"),
        ("€", "%E2%82%AC"),
        ("*-._", "*-._"),
        ("~", "%7E"),
        ("AZaz09", "AZaz09"),
        ("\"'<>", "%22%27%3C%3E"),
    ])
    func formEncodesTheSecretBeforeBase64(secret: String, formEncoded: String) throws {
        let header = TokenRequest.basicAuthorization(clientID: "client-1", secret: ClientSecret(secret))
        let encoded = try #require(header.hasPrefix("Basic ") ? header.dropFirst("Basic ".count) : nil)
        let decoded = try #require(Base64.decode(encoded))
        #expect(String(decoding: decoded, as: UTF8.self) == "client-1:" + formEncoded)
        #expect(FormURLEncoding.encode(secret) == formEncoded)
    }

    @Test func requestBodyAsksForClientCredentialsWithTheFormEncodedScope() throws {
        let endpoint = Configuration.Endpoint(
            tokenURL: try TokenURL(parsing: "https://v1.api.us.janrain.com/abc-123/login/token"))
        let request = TokenRequest(endpoint: endpoint, clientID: "client-1", secret: ClientSecret("hunter2"))
        // WHATWG keeps `*` as is; `:` and `/` are percent-encoded.
        #expect(request.body == "grant_type=client_credentials&scope=*%3Awebhooks%2F**")
        let fields = try #require(FormURLEncoding.decodeFields(request.body))
        #expect(fields.map(\.0) == ["grant_type", "scope"])
        #expect(fields.map(\.1) == ["client_credentials", "*:webhooks/**"])
        #expect(request.url.description == "https://v1.api.us.janrain.com/abc-123/login/token")
    }

    @Test func requestHeadersCarryBasicAuthFormContentAndJSONAccept() throws {
        let endpoint = Configuration.Endpoint(tokenURL: try TokenURL(parsing: "https://login.example.com/token"))
        let request = TokenRequest(endpoint: endpoint, clientID: "my-client", secret: ClientSecret("s3cr+/="))
        let headers = Dictionary(uniqueKeysWithValues: request.headers.map { ($0.name, $0.value) })
        #expect(headers["Authorization"] == "Basic bXktY2xpZW50OnMzY3IlMkIlMkYlM0Q=")
        #expect(headers["Content-Type"] == "application/x-www-form-urlencoded")
        #expect(headers["Accept"] == "application/json")
    }

    @Test func requestDescriptionNamesNeitherTheSecretNorTheHeader() throws {
        let endpoint = Configuration.Endpoint(tokenURL: try TokenURL(parsing: "https://login.example.com/token"))
        let request = TokenRequest(endpoint: endpoint, clientID: "my-client", secret: ClientSecret("hunter2"))
        #expect(!request.description.contains("hunter2"))
        #expect(!request.description.contains("Basic"))
        #expect(request.description.hasPrefix("POST https://login.example.com/token (credentials "))
        let other = TokenRequest(endpoint: endpoint, clientID: "my-client", secret: ClientSecret("hunter3"))
        #expect(other.credentialFingerprint != request.credentialFingerprint)
    }
}
