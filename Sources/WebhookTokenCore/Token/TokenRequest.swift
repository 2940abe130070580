/// The client-credentials token request (RFC 6749 §4.4), independent of any HTTP library.
///
/// `POST {token_url}` with `Authorization: Basic base64(urlencode(client_id) ":" urlencode(secret))`
/// — each part form-urlencoded *before* base64 as RFC 6749 §2.3.1 requires, which generic
/// `setBasicAuth` helpers skip — and the body `grant_type=client_credentials&scope=…`.
public struct TokenRequest: Sendable, CustomStringConvertible {
    public let url: TokenURL
    public let headers: [(name: String, value: String)]
    public let body: String
    /// A fingerprint of the credentials, to tell in logs whether a reload changed them.
    public let credentialFingerprint: String

    public init(endpoint: Configuration.Endpoint, clientID: String, secret: ClientSecret) {
        self.url = endpoint.tokenURL
        self.headers = [
            ("Authorization", Self.basicAuthorization(clientID: clientID, secret: secret)),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ]
        self.body = FormURLEncoding.encode([("grant_type", "client_credentials"), ("scope", endpoint.scope)])
        self.credentialFingerprint = TokenFingerprint.of(clientID + "\u{0}" + secret.revealed)
    }

    /// `Basic base64(urlencode(clientID) ":" urlencode(secret))` (RFC 6749 §2.3.1).
    public static func basicAuthorization(clientID: String, secret: ClientSecret) -> String {
        let credentials = FormURLEncoding.encode(clientID) + ":" + FormURLEncoding.encode(secret.revealed)
        return "Basic " + Base64.encode(Array(credentials.utf8))
    }

    public var description: String { "POST \(url) (credentials \(credentialFingerprint))" }
}

/// A short, non-reversible name for a token or credential in logs and status: the first 8 hex
/// digits of its SHA-256 (`printf %s "$TOKEN" | sha256sum | cut -c1-8` gives the same).
public enum TokenFingerprint {
    public static func of(_ secret: String) -> String {
        String(SHA256.hexDigest(Array(secret.utf8)).prefix(8))
    }
}
